"""Shared fixtures: in-process CLI calls and small data sets in the official formats.

`tests/` is not a package (Avalanche installs a top-level `tests`); helpers
live here and reach test modules as fixtures.
"""

from __future__ import annotations

import os

# Small models train fastest on one thread, and the suite must not oversubscribe
# the cores when other jobs run beside it (set before torch is imported).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import gzip
import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from clbench.cli import main


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def cli(capsys):
    """Run `clbench ARGS...` in-process; returns exit code, stdout and stderr."""

    def call(*args: str) -> CliResult:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return call


@pytest.fixture
def read_records():
    def read(folder: Path) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(Path(folder).rglob("*.json"))]

    return read


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)


def fake_images(n_per_class: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class-dependent random images: labels 0..9, `n_per_class` of each."""
    rng = np.random.RandomState(seed)
    labels = np.repeat(np.arange(10), n_per_class)
    rng.shuffle(labels)
    images = rng.randint(0, 60, size=(len(labels), *shape)).astype(np.uint8)
    flat = images.reshape(len(labels), -1)
    for c in range(10):  # a bright stripe whose place tells the class
        flat[labels == c, c * (flat.shape[1] // 10):(c + 1) * (flat.shape[1] // 10)] += 150
    return images, labels


def make_idx_set(root: Path, folder: str, compress: bool = True, n_train: int = 30, n_test: int = 10) -> Path:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    suffix = ".gz" if compress else ""
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = fake_images(n, (28, 28), seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte{suffix}", images, compress)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress)
    return root


@pytest.fixture(autouse=True)
def generated_data_are_trusted(monkeypatch, tmp_path_factory):
    """The generated idx files carry the official names but not the official MD5s; the checksum tests and the
    real-data tests switch verification back on. The verdict cache (and whatever else a library caches, such as
    matplotlib's font list) lives in a folder of the test's own, apart from the folders its runs write to."""
    monkeypatch.setenv("CLBENCH_VERIFY_DATA", "0")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def idx_files():
    """The generators of MNIST-format files, for tests that damage or rewrite them."""
    from types import SimpleNamespace

    return SimpleNamespace(make_set=make_idx_set, write=write_idx)


@pytest.fixture
def mnist_root(tmp_path) -> Path:
    """A data root with a small MNIST in torchvision's layout (gzip files)."""
    return make_idx_set(tmp_path / "data", "MNIST")


@pytest.fixture
def fmnist_root(tmp_path) -> Path:
    return make_idx_set(tmp_path / "data", "FashionMNIST", compress=False)


def make_cifar(root: Path, binary: bool, n_train: int = 10, n_test: int = 5) -> Path:
    """CIFAR-10 in the official python (pickled dicts) or binary record layout."""
    folder = root / ("cifar-10-batches-bin" if binary else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    batches = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(batches):
        images, labels = fake_images(n_test if name == "test_batch" else n_train, (3, 32, 32), seed=10 + i)
        if binary:
            records = np.concatenate([labels[:, None].astype(np.uint8), images.reshape(len(labels), -1)], axis=1)
            (folder / f"{name}.bin").write_bytes(records.tobytes())
        else:
            batch = {"batch_label": name, "labels": labels.tolist(), "data": images.reshape(len(labels), -1),
                     "filenames": [f"{j}.png" for j in range(len(labels))]}
            with (folder / name).open("wb") as handle:
                pickle.dump(batch, handle, protocol=2)
    return root


@pytest.fixture
def generated_root(tmp_path) -> Path:
    """A data root holding generated MNIST and CIFAR-10 (python version) files."""
    return make_cifar(make_idx_set(tmp_path / "all", "MNIST"), binary=False)


@pytest.fixture(params=["python", "binary"])
def cifar_root(request, tmp_path) -> Path:
    return make_cifar(tmp_path / "data", binary=request.param == "binary")


@pytest.fixture
def no_network(monkeypatch):
    """Downloads fail at once, as on a machine without network."""
    import urllib.error
    import urllib.request

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def fake_record(strategy: str = "naive", seed: int = 0, matrix=None, initial=None, benchmark: str = "split_digits",
                scenario: str = "class", status: str = "ok", **config) -> dict:
    """A hand-made run record with the metrics of `matrix` (schema 1)."""
    from clbench.metrics import summarize

    matrix = matrix or [[0.9, 0.1], [0.3, 0.8]]
    initial = initial or [0.1] * len(matrix[0])
    return {
        "schema": 1, "run_id": f"{scenario}-s{seed}-{strategy}-{abs(hash(json.dumps(config, sort_keys=True))) % 10**6}",
        "created": "2026-01-01T00:00:00+00:00", "status": status, "benchmark": benchmark, "strategy": strategy,
        "scenario": scenario, "seed": seed,
        "config": {"benchmark": benchmark, "strategy": strategy, "scenario": scenario, "seed": seed, "lr": 0.001,
                   **config},
        "experiences": [], "initial_accuracy": initial, "accuracy_matrix": matrix,
        "metrics": summarize(matrix, initial), "timing": {"train_total": 10.0 + seed}, "model": {
            "parameters": 1000, "nonzero_parameters": 500, "density": 0.5}, "extras": {}, "env": {},
    }


@pytest.fixture
def save_records():
    """Write records as `clbench run` lays them out under a folder."""

    def save(folder: Path, records: list[dict]) -> Path:
        for r in records:
            path = Path(folder) / r["benchmark"] / r["strategy"] / f"{r['run_id']}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(r))
        return Path(folder)

    return save


@pytest.fixture
def make_record():
    return fake_record


@pytest.fixture(scope="session")
def avalanche_digits():
    """Class-incremental digits (5 experiences) built by Avalanche's own generators, no clbench data code."""
    from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark
    from avalanche.benchmarks.scenarios.task_aware import with_task_labels
    from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset as tensor_dataset
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16
    y = torch.tensor(digits.target)
    data = {"train": tensor_dataset(x[:1400], y[:1400]), "test": tensor_dataset(x[1400:], y[1400:])}
    return with_task_labels(class_incremental_benchmark(data, class_order=list(range(10)), num_experiences=5))


@pytest.fixture
def avalanche_pipeline(avalanche_digits):
    """Train on two experiences of `avalanche_digits` in a plain Avalanche pipeline; the accuracy on the second.

    `form="strategy"`: the method's own strategy class with `plugin` as keyword `plugin_arg` (Avalanche
    checks keywords against the signature, so each strategy names it); `form="plugin"`: Avalanche's
    `Naive` with `plugin` in its plugin list. Evaluation by Avalanche's `EvaluationPlugin`.
    """
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.training import Naive
    from avalanche.training.plugins import EvaluationPlugin
    from torch import nn

    def run(form, strategy_class, plugin_arg, plugin, model, optimizer, epochs: int) -> float:
        evaluator = EvaluationPlugin(accuracy_metrics(experience=True), loggers=[])
        common = dict(model=model, optimizer=optimizer, criterion=nn.CrossEntropyLoss(), train_mb_size=32,
                      train_epochs=epochs, eval_mb_size=256, evaluator=evaluator)
        if form == "strategy":
            strategy = strategy_class(**{plugin_arg: plugin}, **common)
            assert getattr(strategy, plugin_arg) is plugin and plugin in strategy.plugins
        else:
            strategy = Naive(plugins=[plugin], **common)
        for exp in avalanche_digits.train_stream[:2]:
            strategy.train(exp)
        metrics = strategy.eval(avalanche_digits.test_stream[:2])
        return metrics["Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp001"]

    return run
