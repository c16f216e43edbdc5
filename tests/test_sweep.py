"""`clbench sweep` on Ray: records written by the driver, resumed sweeps, failed cells, clusters."""

import json
import os
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
    assert result.code == 1 and result.err.count("\n") == 1 and "1 cell(s) failed" in result.err
    assert "--retry-failed" in result.err
    by_benchmark = {r["benchmark"]: r for r in records(out).values()}
    assert by_benchmark["split_digits"]["status"] == "ok"
    failed = by_benchmark["split_mnist"]
    assert failed["status"] == "failed" and "MNIST" in failed["error"]["message"]
    dry = cli("sweep", "-b", "split_mnist,split_digits", "-s", "naive", "--set", "iterations=3", "--out", out,
              "--dry-run")
    assert "exists (failed)" in dry.out and "exists (ok)" in dry.out


@pytest.mark.parametrize("args, message", [
    (("-b", "split_digits", "-s", "naiv"), "unknown strategy 'naiv'"),
    (("-b", "split_digits", "-s", "naive", "--seeds", "0-10000"), "more than 10,000 cells"),
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


@pytest.mark.slow
def test_ctrl_c_keeps_finished_records_and_the_rerun_completes_the_sweep(tmp_path):
    stopped, whole = tmp_path / "stopped", tmp_path / "whole"
    process = subprocess.Popen([*SWEEP, "--out", str(stopped)], stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    deadline = time.time() + 240
    while not list(stopped.rglob("*.json")) and time.time() < deadline:
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGINT)
    err = process.communicate(timeout=120)[1]
    assert process.returncode == 130 and "run the same command again to continue" in err
    kept = records(stopped)
    assert 1 <= len(kept) < 6 and not list(stopped.rglob("*.tmp"))
    rerun = subprocess.run([*SWEEP, "--out", str(stopped)], capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0 and f"{6 - len(kept)} cell(s) run, {len(kept)} skipped" in rerun.stdout
    subprocess.run([*SWEEP, "--out", str(whole)], capture_output=True, text=True, timeout=600, check=True)
    matrices = {k: r["accuracy_matrix"] for k, r in records(stopped).items()}
    assert matrices == {k: r["accuracy_matrix"] for k, r in records(whole).items()}
