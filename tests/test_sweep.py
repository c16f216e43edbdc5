"""`clbench sweep` on Ray: records written by the driver, resumed sweeps, failed cells, clusters."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clbench import runner
from clbench.config import config_from_dict


def records(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(out.rglob("*.json"))}


def test_a_sweep_runs_every_cell_once_and_the_same_command_continues_it(cli, tmp_path):
    out = tmp_path / "out"
    args = ("sweep", "-b", "split_digits", "-s", "naive,sparse_syn", "--seeds", "0-1", "--set", "iterations=5",
            "--out", out, "--cpus", "2", "--device", "cpu", "-q")
    first = cli(*args)
    assert first.code == 0, first.err
    assert "4 cell(s) run, 0 skipped" in first.out and "sparse_syn" in first.out.splitlines()[-1]
    written = records(out)
    assert len(written) == 4 and all(r["status"] == "ok" and "/" in r["env"]["node"] for r in written.values())
    assert not list(out.rglob("*.ckpt"))
    for record in written.values():  # the same cell run alone gives the same matrix, bit for bit
        alone = runner.run(config_from_dict(record["config"], device="cpu"))
        assert alone.accuracy_matrix == record["accuracy_matrix"] and alone.extras == record["extras"]
    again = cli(*args)
    assert again.code == 0 and "0 cell(s) run, 4 skipped (record exists)" in again.out
    assert records(out) == written


def test_a_failing_cell_is_retried_then_recorded_and_never_stops_the_sweep(cli, tmp_path):
    out = tmp_path / "out"
    result = cli("sweep", "-b", "split_mnist,split_digits", "-s", "naive", "--set", "iterations=3", "--out", out,
                 "--data-root", tmp_path / "no-data", "--no-download", "--cpus", "2", "--device", "cpu", "-q")
    retried, last = result.err.splitlines()
    assert result.code == 1 and "1 cell(s) failed (their records" in last and "--retry-failed" in last
    assert retried.startswith("clbench: warning: split_mnist/naive/class/seed 0 failed (")
    assert "MNIST" in retried and retried.endswith("; retrying")
    by_benchmark = {r["benchmark"]: r for r in records(out).values()}
    assert by_benchmark["split_digits"]["status"] == "ok"
    failed = by_benchmark["split_mnist"]
    assert failed["status"] == "failed" and "MNIST" in failed["error"]["message"]
    dry = cli("sweep", "-b", "split_mnist,split_digits", "-s", "naive", "--set", "iterations=3", "--out", out,
              "--dry-run")
    assert "exists (failed)" in dry.out and "exists (ok)" in dry.out


def test_the_sweep_names_diverged_and_failed_cells_apart(cli, tmp_path):
    out = tmp_path / "out"
    result = cli("sweep", "-b", "split_mnist,split_digits", "-s", "naive", "--set", "optimizer=sgd", "--set",
                 "lr=1e9", "--set", "iterations=5", "--out", out, "--data-root", tmp_path / "no-data", "--no-download",
                 "--retries", "0", "--cpus", "2", "--device", "cpu", "-q")
    assert result.code == 1 and result.err.count("\n") == 1
    assert "1 cell(s) diverged and 1 cell(s) failed (their records say why and where)" in result.err
    assert sorted(r["status"] for r in records(out).values()) == ["diverged", "failed"]


def test_a_failed_cluster_stops_the_sweep_and_records_no_cell(cli, tmp_path, monkeypatch):
    """The driver's raylet dying (seen when another Ray on the machine was stopped) must not turn every
    pending cell into a `failed` record: the sweep stops, and the same command later runs them."""
    import ray
    from ray.exceptions import LocalRayletDiedError

    real_get = ray.get

    def get(refs, *args, **kwargs):
        if isinstance(refs, list):  # the workers' warm-up
            return real_get(refs, *args, **kwargs)
        raise LocalRayletDiedError()

    monkeypatch.setattr(ray, "get", get)
    out = tmp_path / "out"
    result = cli("sweep", "-b", "split_digits", "-s", "naive,ewc", "--set", "iterations=3", "--out", out,
                 "--cpus", "1", "--device", "cpu", "-q")
    assert result.code == 1 and result.err.count("\n") == 1
    assert "the Ray cluster failed (LocalRayletDiedError)" in result.err and "2 not run" in result.err
    assert records(out) == {}


@pytest.mark.parametrize("args, message", [
    (("-b", "split_digits", "-s", "naiv"), "unknown strategy 'naiv'"),
    (("-b", "split_digits", "-s", "naive,ewc", "--seeds", "0-5000"), "more than 10,000 cells"),
    (("-b", "split_digits", "-s", "naive", "--cpus-per-run", "64", "--cpus", "2"), "--cpus-per-run 64 is more"),
])
def test_bad_sweeps_are_one_line_usage_errors_that_write_nothing(cli, tmp_path, args, message):
    out = tmp_path / "out"
    result = cli("sweep", *args, "--out", out, "--device", "cpu")
    assert result.code == 2 and result.err.count("\n") == 1 and message in result.err
    assert not out.exists() or not list(out.rglob("*.json"))


def test_an_unreachable_cluster_is_one_line_and_exit_1(cli, tmp_path):
    result = cli("sweep", "-b", "split_digits", "-s", "naive", "--out", tmp_path, "--address", "127.0.0.1:1")
    assert result.code == 1 and result.err.count("\n") == 1 and "cannot reach a Ray cluster" in result.err


SWEEP = [sys.executable, "-m", "clbench.cli", "sweep", "-b", "split_digits", "-s", "naive,sparse_syn,hebbian",
         "--seeds", "0-1", "--set", "iterations=400", "--cpus", "2", "--device", "cpu"]
CELLS = 6


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_sigterm_and_an_ignored_sigint_stop_a_sweep_as_ctrl_c_does(number):
    from clbench.sweep import stop_signals_interrupt

    saved = {n: signal.signal(n, signal.SIG_IGN) for n in (signal.SIGINT, signal.SIGTERM)}  # as `cmd &` leaves
    try:
        with pytest.raises(KeyboardInterrupt), stop_signals_interrupt():
            os.kill(os.getpid(), number)
            time.sleep(1)  # the handler runs at the next bytecode; never reached
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        for n, handler in saved.items():
            signal.signal(n, handler)


@pytest.mark.slow
def test_ctrl_c_keeps_finished_records_and_the_rerun_completes_the_sweep(tmp_path):
    stopped, whole = tmp_path / "stopped", tmp_path / "whole"
    process = subprocess.Popen([*SWEEP, "--out", str(stopped)], stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # SIGINT stops it even where a background shell ignores it
    deadline = time.time() + 240
    while not list(stopped.rglob("*.json")) and time.time() < deadline:
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGINT)
    err = process.communicate(timeout=120)[1]
    assert process.returncode == 130 and "run the same command again to continue" in err
    kept = records(stopped)
    assert 1 <= len(kept) < CELLS and not list(stopped.rglob("*.tmp"))
    rerun = subprocess.run([*SWEEP, "--out", str(stopped)], capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0 and f"{CELLS - len(kept)} cell(s) run, {len(kept)} skipped" in rerun.stdout
    subprocess.run([*SWEEP, "--out", str(whole)], capture_output=True, text=True, timeout=600, check=True)
    matrices = {k: r["accuracy_matrix"] for k, r in records(stopped).items()}
    assert matrices == {k: r["accuracy_matrix"] for k, r in records(whole).items()}


TWO_NODES = r'''
set -u
ip link set lo up  # a network namespace of its own: Ray's nodes live on 127.0.0.1 and nowhere else
export RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0
RAY="$(dirname "$PYTHON")/ray"
"$RAY" start --head --port 26379 --num-cpus 1 --temp-dir "$CLUSTER/head" --include-dashboard false >/dev/null 2>&1
"$RAY" start --address 127.0.0.1:26379 --num-cpus 1 --temp-dir "$CLUSTER/worker" >/dev/null 2>&1
timeout 400 "$PYTHON" -m clbench.cli sweep -b split_digits -s naive,sparse_syn,hebbian,kwinners --seeds 0-1 \
    --set iterations=300 --device cpu --address 127.0.0.1:26379 --out "$OUT" -q > "$CLUSTER/sweep.out" 2>&1 &
sweep=$!
"$PYTHON" - "$OUT" <<'PY'  # until each node has finished a cell
import json, pathlib, sys, time
deadline = time.time() + 200
while time.time() < deadline:
    nodes = {json.loads(p.read_text())["env"]["node"] for p in pathlib.Path(sys.argv[1]).rglob("*.json")}
    if len(nodes) >= 2:
        break
    time.sleep(0.2)
PY
pkill -9 -f "raylet.*$CLUSTER/worker"  # the worker node's raylet dies mid-sweep
wait $sweep; code=$?
# this cluster's processes only (their command lines name its temp dir): `ray stop` would stop every Ray
# on the machine, a user's sweep included
pkill -TERM -f "$CLUSTER/" 2>/dev/null; sleep 2; pkill -9 -f "$CLUSTER/" 2>/dev/null
cat "$CLUSTER/sweep.out"
exit $code
'''


@pytest.mark.cluster
def test_a_two_node_cluster_runs_cells_on_both_and_survives_losing_the_worker_node(tmp_path):
    if subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode != 0:
        pytest.fail("this test needs 'unshare --net' (root) to keep its Ray nodes on a loopback of their own")
    import tempfile

    out = tmp_path / "out"
    cluster = tempfile.mkdtemp(prefix="clb", dir="/tmp")  # short: Ray's socket paths must stay under 108 bytes
    env = {**os.environ, "PYTHON": sys.executable, "CLUSTER": cluster, "OUT": str(out)}
    log = tmp_path / "cluster.log"  # a file, not a pipe: Ray's daemons must not hold the test's output open
    with log.open("w") as handle:
        code = subprocess.run(["unshare", "--net", "bash", "-c", TWO_NODES], env=env, stdout=handle,
                              stderr=subprocess.STDOUT, timeout=600).returncode
    output = log.read_text()
    shutil.rmtree(cluster, ignore_errors=True)
    assert code == 0, output[-3000:]
    written = records(out)
    assert len(written) == 8 and all(r["status"] == "ok" for r in written.values())
    assert len({r["env"]["node"] for r in written.values()}) == 2
    assert "8 cell(s) run" in output and not list(out.rglob("*.tmp"))


def test_no_resume_starts_a_cell_over_past_its_checkpoint(cli, tmp_path):
    from clbench.config import resolve

    out = tmp_path / "out"
    cfg = resolve("split_digits", "naive", cli_values={"iterations": "4"}, device="cpu")
    stale = out / "split_digits" / "naive" / f"{cfg.run_id()}.ckpt"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"not a checkpoint: resuming from it would fail the cell")
    result = cli("sweep", "-b", "split_digits", "-s", "naive", "--set", "iterations=4", "--out", out, "--cpus", "1",
                 "--device", "cpu", "--retries", "0", "--no-resume", "-q")
    assert result.code == 0, result.err
    (record,) = records(out).values()
    assert record["status"] == "ok" and "resumed_at_experience" not in record["timing"] and not stale.exists()
