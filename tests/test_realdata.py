"""Tests on the real MNIST files under $CLBENCH_DATA_ROOT (`make test-real`)."""

import os
from pathlib import Path

import pytest

from clbench import runner
from clbench.benchmarks import sources
from clbench.config import resolve
from clbench.registry import BENCHMARKS

ROOT = os.environ.get("CLBENCH_DATA_ROOT")
pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not ROOT or not (Path(ROOT) / "MNIST" / "raw").is_dir(),
                       reason="needs CLBENCH_DATA_ROOT with MNIST/raw (see docs/cli.md, 'Data')"),
]


@pytest.fixture(autouse=True)
def verified_data(monkeypatch):
    """The real files are checked against their official MD5s, as in any user's run."""
    monkeypatch.setenv("CLBENCH_VERIFY_DATA", "1")


def test_mnist_files_are_the_official_ones():
    for name, md5 in sources.MNIST.md5.items():
        assert sources.md5sum(Path(ROOT) / "MNIST" / "raw" / name) == md5


def test_split_mnist_sizes():
    cfg = resolve("split_mnist", "naive", data_root=ROOT, download=False)
    bench = BENCHMARKS.get("split_mnist").load_builder()(cfg)
    assert bench.store.images.shape == (70000, 1, 28, 28)
    assert [len(e) for e in bench.train] == [12665, 12089, 11263, 12183, 11800]
    assert [len(e) for e in bench.test] == [2115, 2042, 1874, 1986, 1983]


def test_short_split_mnist_run_forgets_in_class_il():
    cfg = resolve("split_mnist", "naive", cli_values={"iterations": "100"}, data_root=ROOT, download=False)
    record = runner.run(cfg)
    assert record.metrics["learning_acc"] > 0.95
    assert record.metrics["acc"] < 0.3 and record.metrics["forgetting"] > 0.8


def test_short_permuted_mnist_run():
    cfg = resolve("permuted_mnist", "naive", cli_values={"iterations": "100", "n_experiences": "3"},
                  data_root=ROOT, download=False)
    record = runner.run(cfg)
    assert record.status == "ok" and len(record.accuracy_matrix) == 3
    assert record.metrics["learning_acc"] > 0.8


@pytest.mark.slow
def test_split_mnist_naive_default_protocol_reproduces_its_reference_record():
    """The reference cell split_mnist / naive / class / seed 0: in its band, and its committed matrix again.

    Bit-identical where torch's CPU kernels use the record's vector instructions; with other ones
    floats are summed in another order, and each entry may move by at most 0.01.
    """
    import json

    import torch

    record = runner.run(resolve("split_mnist", "naive", data_root=ROOT, download=False, threads=1))
    assert 0.17 <= record.metrics["acc"] <= 0.23
    reference = Path(__file__).resolve().parents[1] / "results" / "reference" / "split_mnist" / "naive"
    committed = json.loads((reference / f"{record.run_id}.json").read_text())
    if committed["env"].get("cpu_capability") == torch.backends.cpu.get_cpu_capability():
        assert record.accuracy_matrix == committed["accuracy_matrix"]
    else:
        assert record.accuracy_matrix == [pytest.approx(row, abs=0.01) for row in committed["accuracy_matrix"]]


@pytest.mark.slow
def test_harness_overhead_against_the_bare_pytorch_loop():
    """Same training and evaluation as shared/perf/plain_split_mnist.py: at most 1.1x its time (the spec's bound).

    Five rounds, each timing the bare loop and then clbench back to back; the
    median of the five ratios has to stay within the bound, so one lucky or
    unlucky run on a shared machine does not decide the outcome.
    """
    import re
    import statistics
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1].parent / "shared" / "perf" / "plain_split_mnist.py"
    if not script.is_file():
        pytest.skip("needs the shared perf script beside the repository")
    cfg = resolve("split_mnist", "naive", data_root=ROOT, download=False, device="cpu",
                  cli_values={"epochs": "1", "iterations": "0", "batch_size": "128", "lr": "1e-3"})
    ratios = []
    for _ in range(5):
        out = subprocess.run([sys.executable, str(script), ROOT, "--epochs", "1"], capture_output=True,
                             text=True, check=True).stdout
        plain = float(re.search(r"seconds ([\d.]+)", out).group(1))
        timing = runner.run(cfg).timing
        ratios.append((timing["train_total"] + timing["eval_total"]) / plain)
    assert statistics.median(ratios) <= 1.1, ratios
