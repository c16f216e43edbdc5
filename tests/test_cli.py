"""The command line: every strategy on the digits benchmarks, output, and bad input."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import clbench
from clbench.records import write_json_atomic
from clbench.registry import STRATEGIES


@pytest.mark.parametrize("benchmark", ["split_digits", "permuted_digits"])
@pytest.mark.parametrize("strategy", STRATEGIES.names())
def test_every_strategy_runs_on_the_digits_benchmarks(cli, read_records, tmp_path, benchmark, strategy):
    result = cli("run", "--benchmark", benchmark, "--strategy", strategy, "--epochs", "1", "-q", "--out", tmp_path)
    assert result.code == 0, result.err
    assert "accuracy matrix" in result.out and "ACC" in result.out
    (record,) = read_records(tmp_path)
    assert record["status"] == "ok" and record["strategy"] == strategy and record["benchmark"] == benchmark
    rows = 1 if strategy == "joint" else 5
    assert len(record["accuracy_matrix"]) == rows and len(record["accuracy_matrix"][0]) == 5
    assert 0 <= record["metrics"]["acc"] <= 1


def test_task_scenario_through_the_cli(cli, read_records, tmp_path):
    result = cli("run", "-b", "split_digits", "-s", "naive", "--scenario", "task", "--epochs", "2", "-q",
                 "--out", tmp_path)
    assert result.code == 0
    (record,) = read_records(tmp_path)
    assert record["scenario"] == "task" and record["metrics"]["acc"] > 0.8
    assert [e["task_label"] for e in record["experiences"]] == [0, 1, 2, 3, 4]


def test_record_layout_and_fields(cli, tmp_path):
    assert cli("run", "-b", "split-digits", "-s", "naive", "--epochs", "1", "-q", "--out", tmp_path).code == 0
    (path,) = (tmp_path / "split_digits" / "naive").glob("*.json")
    record = json.loads(path.read_text())
    assert path.stem == record["run_id"]
    for key in ("schema", "run_id", "created", "status", "benchmark", "strategy", "scenario", "seed", "config",
                "experiences", "initial_accuracy", "accuracy_matrix", "metrics", "timing", "model", "extras",
                "env"):
        assert key in record
    assert record["config"]["epochs"] == 1 and record["config"]["hidden"] == [100, 100]
    assert not list(tmp_path.rglob("*.tmp"))


def test_json_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_json_atomic({"a": 1}, tmp_path / "x.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's private 0600


def test_same_command_twice_gives_identical_matrices(cli, read_records, tmp_path):
    for out in ("a", "b"):
        assert cli("run", "-b", "permuted_digits", "-s", "ewc", "--epochs", "1", "--seed", "3", "-q",
                   "--out", tmp_path / out).code == 0
    (a,), (b,) = read_records(tmp_path / "a"), read_records(tmp_path / "b")
    assert a["accuracy_matrix"] == b["accuracy_matrix"] and a["run_id"] == b["run_id"]


def test_several_seeds_and_json_output(cli, tmp_path):
    result = cli("run", "-b", "split_digits", "-s", "naive", "--seeds", "0-1", "--seed", "4", "--epochs", "1",
                 "--json", "-q", "--out", tmp_path)
    assert result.code == 0
    records = json.loads(result.out)
    assert [r["seed"] for r in records] == [0, 1, 4]
    assert len(list(tmp_path.rglob("*.json"))) == 3


def test_config_file_with_cli_precedence(cli, read_records, tmp_path):
    config = tmp_path / "ewc.toml"
    config.write_text('benchmark = "split_digits"\nstrategy = "ewc"\nseeds = "0-1"\n'
                      'ewc_lambda = 10.0\nepochs = 3\nhidden = [20]\n')
    result = cli("run", "--config", config, "--epochs", "1", "--set", "ewc_lambda=2", "-q", "--out", tmp_path / "o")
    assert result.code == 0, result.err
    records = read_records(tmp_path / "o")
    assert [r["seed"] for r in records] == [0, 1]
    assert records[0]["config"]["epochs"] == 1 and records[0]["config"]["ewc_lambda"] == 2.0
    assert records[0]["config"]["hidden"] == [20]


def test_divergence_writes_the_record_and_exits_non_zero(cli, read_records, tmp_path):
    result = cli("run", "-b", "split_digits", "-s", "naive", "--epochs", "1", "--optimizer", "sgd", "--lr", "1e30",
                 "-q", "--out", tmp_path)
    assert result.code == 1 and "diverged" in result.err
    (record,) = read_records(tmp_path)
    assert record["status"] == "diverged" and record["error"]["experience"] == 0


BAD_INPUTS = [
    (["-b", "split_digits", "-s", "naiv"], 2, "Did you mean 'naive'?"),
    (["-b", "split_mnits", "-s", "naive"], 2, "Did you mean 'split_mnist'?"),
    (["-b", "split_digits", "-s", "ewc", "--set", "lambda=3"], 2, "unknown key 'lambda'"),
    (["-b", "split_digits", "-s", "naive", "--set", "lr"], 2, "expected key=value"),
    (["-b", "split_digits", "-s", "naive", "--epochs", "many"], 2, "expected an integer"),
    (["-b", "split_digits", "-s", "naive", "--lr", "-0.1"], 2, "expected a value > 0"),
    (["-b", "split_digits", "-s", "naive", "--n-experiences", "4"], 2, "divisor of the 10 classes"),
    (["-b", "split_digits", "-s", "naive", "--scenario", "domain"], 2, "does not support scenario 'domain'"),
    (["-b", "split_digits", "-s", "naive", "--seeds", "x"], 2, "bad --seeds"),
    (["-b", "split_digits", "-s", "naive", "--config", "missing.toml"], 2, "cannot read --config"),
    (["-s", "naive"], 2, "missing --benchmark"),
]


@pytest.mark.parametrize("args,code,fragment", BAD_INPUTS, ids=lambda v: str(v)[:40])
def test_bad_input_is_one_line_and_writes_nothing(cli, tmp_path, args, code, fragment):
    result = cli("run", *args, "--out", tmp_path / "out")
    assert result.code == code
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in result.err
    assert not (tmp_path / "out").exists()


def test_out_pointing_at_a_file(cli, tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    result = cli("run", "-b", "split_digits", "-s", "naive", "--out", target)
    assert result.code == 2 and "is a file, not a folder" in result.err
    assert target.read_text() == "keep me"


def test_missing_data_offline(cli, tmp_path, no_network):
    result = cli("run", "-b", "split_mnist", "-s", "naive", "--data-root", tmp_path / "empty", "--out", tmp_path / "o")
    assert result.code == 1
    (line,) = result.err.strip().splitlines()
    assert "split_mnist: data not found in" in line and "--data-root" in line
    assert not (tmp_path / "o").exists()


def test_unparsable_config_file(cli, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("epochs = [")
    result = cli("run", "-b", "split_digits", "-s", "naive", "--config", config)
    assert result.code == 2 and "cannot parse --config" in result.err


def test_list_and_details(cli):
    result = cli("list")
    assert result.code == 0
    for name in STRATEGIES.names() + ["split_mnist", "permuted_digits"]:
        assert name in result.out
    details = cli("list", "benchmarks", "split_mnist")
    assert "iterations         2000" in details.out and "van de Ven" in details.out
    assert "ewc_lambda" in cli("list", "strategies", "ewc").out
    unknown = cli("list", "strategies", "ewcc")
    assert unknown.code == 2 and "Did you mean 'ewc'?" in unknown.err


@pytest.mark.parametrize("args", [["--help"], ["list"], ["run", "--help"]])
def test_help_and_list_do_not_import_torch(args):
    code = ("import sys; from clbench.cli import main; main(%r); "
            "heavy = [m for m in ('torch', 'avalanche', 'numpy') if m in sys.modules]; "
            "assert not heavy, heavy" % (args,))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_package_never_imports_top_level_strategies_or_benchmarks(tmp_path):
    code = ("import sys; import clbench, clbench.strategies, clbench.benchmarks, clbench.runner; "
            "from clbench.strategies import SparseSynapses; "
            "stray = [m for m in ('strategies', 'benchmarks') if m in sys.modules]; assert not stray, stray")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_the_nn_layer_is_pure_torch():
    """clbench.nn holds the modules; Avalanche belongs to the strategies (the layout in docs/development.md)."""
    modules = sorted(p.stem for p in (Path(clbench.__file__).parent / "nn").glob("*.py"))
    code = ("import sys, importlib; [importlib.import_module('clbench.nn.' + m) for m in %r]; "
            "assert 'avalanche' not in sys.modules" % (modules,))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert {"kwinners", "hebbian", "paths", "sparse"} <= set(modules) and result.returncode == 0, result.stderr


def test_cuda_without_a_gpu_is_a_usage_error(cli, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = cli("run", "-b", "split_digits", "-s", "naive", "--device", "cuda", "--out", tmp_path / "o")
    assert result.code == 2 and "no CUDA device is available" in result.err
    assert not (tmp_path / "o").exists()


def test_config_file_with_a_mistyped_run_key(cli, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('benchmark = "split_digits"\nstrategy = "naive"\nseed = "zero"\n')
    result = cli("run", "--config", config, "--out", tmp_path / "o")
    assert result.code == 2 and "bad value for 'seed'" in result.err and "'zero'" in result.err


@pytest.mark.parametrize("benchmark", ["split_mnist", "permuted_mnist", "split_cifar10"])
def test_real_benchmarks_run_end_to_end_on_generated_files(cli, read_records, tmp_path, generated_root, benchmark):
    result = cli("run", "-b", benchmark, "-s", "naive", "--iterations", "3", "--n-experiences", "2",
                 "--data-root", generated_root, "--no-download", "-q", "--out", tmp_path / "o")
    assert result.code == 0, result.err
    (record,) = read_records(tmp_path / "o")
    assert len(record["accuracy_matrix"]) == 2 and record["status"] == "ok"
    backbone = "resnet18_reduced" if benchmark == "split_cifar10" else "mlp"
    assert record["config"]["backbone"] == backbone


def test_run_says_what_it_starts_before_loading_torch(tmp_path):
    """On a terminal the first line comes before the heavy imports (`-X importtime` reports each import on
    stderr, in order); in a pipe stderr carries only progress and errors."""
    import os
    import pty
    import subprocess
    import sys

    command = [sys.executable, "-X", "importtime", "-m", "clbench", "run", "-b", "split_digits", "-s", "naive",
               "--iterations", "1", "--out", str(tmp_path)]
    master, terminal = pty.openpty()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=terminal)
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # the terminal closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert process.wait(timeout=300) == 0
    lines = b"".join(chunks).decode(errors="replace").splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("clbench: split_digits / naive"))
    torch = next(i for i, line in enumerate(lines)
                 if line.startswith("import time:") and line.split("|")[-1].strip().split(".")[0] == "torch")
    assert first < torch
    piped = subprocess.run(command[:1] + command[3:], capture_output=True, text=True, timeout=300)
    assert "loading PyTorch" not in piped.stderr
    assert "QP solver" not in piped.stderr  # qpsolvers' warning on importing Avalanche: nothing a user can do
    assert "QP solver" not in "\n".join(lines)
