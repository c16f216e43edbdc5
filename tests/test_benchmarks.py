"""Benchmarks: shapes, class splits, permutations, determinism, file formats, missing data."""

import gzip

import numpy as np
import pytest
import torch

from clbench.benchmarks import sources
from clbench.benchmarks.builders import permutations
from clbench.config import resolve
from clbench.errors import DataError
from clbench.registry import BENCHMARKS


def build(benchmark, scenario=None, seed=0, data_root=None, **keys):
    cfg = resolve(benchmark, "naive", scenario=scenario, seed=seed, cli_values=keys, data_root=data_root,
                  download=False)
    return BENCHMARKS.get(benchmark).load_builder()(cfg)


def test_split_digits_class_incremental():
    bench = build("split_digits")
    assert bench.input_shape == (1, 8, 8)
    assert [exp.classes for exp in bench.train] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    assert bench.n_heads == 1 and bench.head_size == 10
    assert bench.n_classes == 10 and bench.classes_per_experience == [2] * 5 and bench.n_experiences == 5
    for exp in bench.train + bench.test:
        assert set(exp.targets.tolist()) == set(exp.classes) and exp.task_label == 0
    train_rows = torch.cat([e.rows for e in bench.train])
    test_rows = torch.cat([e.rows for e in bench.test])
    assert len(set(train_rows.tolist()) & set(test_rows.tolist())) == 0
    assert len(train_rows) + len(test_rows) == 1797


def test_images_are_normalised_once():
    images = build("split_digits").store.images
    assert images.dtype == torch.float32
    assert abs(float(images.mean())) < 0.05 and abs(float(images.std()) - 1) < 0.05


def test_pixels_can_stay_in_the_unit_interval():
    images = build("split_digits", normalize="false").store.images
    assert float(images.min()) == 0.0 and float(images.max()) == 1.0
    assert torch.equal(images, build("permuted_digits", normalize="false").store.images)


def test_padding_adds_zero_pixels_that_are_permuted_too():
    plain = build("permuted_digits", normalize="false")
    padded = build("permuted_digits", normalize="false", pad="2")
    assert padded.input_shape == (1, 12, 12) and padded.store.images.shape[1:] == (1, 12, 12)
    assert torch.equal(padded.store.images[:, :, 2:10, 2:10], plain.store.images)
    border = padded.store.images.clone()
    border[:, :, 2:10, 2:10] = 0
    assert not border.any()
    assert [len(p) for p in padded.store.permutations[1:]] == [144] * 4
    standardised = build("permuted_digits", pad="2").store.images  # the padding is a raw 0, then standardised
    assert torch.allclose(standardised[:, :, 0, 0], standardised.new_full((1,), -0.3053 / 0.3760))


def test_split_task_incremental_remaps_labels_per_head():
    bench = build("split_digits", scenario="task")
    assert bench.n_heads == 5 and bench.head_size == 2
    assert [exp.task_label for exp in bench.train] == [0, 1, 2, 3, 4]
    for exp in bench.train:
        assert set(exp.targets.tolist()) == {0, 1}


def test_class_order_can_be_drawn_from_the_seed():
    fixed = [e.classes for e in build("split_digits").train]
    drawn = [e.classes for e in build("split_digits", seed=3, shuffle_classes="true").train]
    again = [e.classes for e in build("split_digits", seed=3, shuffle_classes="true").train]
    assert drawn == again and drawn != fixed
    assert sorted(c for group in drawn for c in group) == list(range(10))


def test_permuted_digits_share_one_image_copy():
    bench = build("permuted_digits")
    assert len(bench.train) == 5 and bench.scenario == "domain"
    assert bench.store.permutations[0] is None  # experience 0: identity
    assert all(exp.rows is bench.train[0].rows for exp in bench.train)
    assert [exp.permutation for exp in bench.train] == [0, 1, 2, 3, 4]
    assert bench.store.images.shape[0] == 1797


def test_permutation_is_applied_per_batch():
    bench = build("permuted_digits")
    rows = bench.train[2].rows[:4]
    plain = bench.store.fetch(rows, 0).reshape(4, -1)
    permuted = bench.store.fetch(rows, 2).reshape(4, -1)
    perm = bench.store.permutations[2]
    assert torch.equal(permuted, plain[:, perm])
    mixed = bench.store.fetch_mixed(torch.cat([rows, rows]), torch.tensor([0] * 4 + [2] * 4))
    assert torch.equal(mixed.reshape(8, -1), torch.cat([plain, permuted]))


def test_permutations_are_seeded():
    a, b = permutations(64, 3, True, seed=0), permutations(64, 3, True, seed=0)
    assert a[0] is None and all(torch.equal(x, y) for x, y in zip(a[1:], b[1:]))
    c = permutations(64, 3, False, seed=1)
    assert c[0] is not None and not torch.equal(c[1], a[1])


def test_hundred_permuted_experiences_cost_no_extra_images():
    bench = build("permuted_digits", n_experiences="100")
    assert len(bench.train) == 100 and bench.store.images.shape[0] == 1797
    assert len({id(exp.rows) for exp in bench.train}) == 1


def test_split_mnist_on_generated_gzip_files(mnist_root):
    bench = build("split_mnist", data_root=str(mnist_root))
    assert bench.input_shape == (1, 28, 28)
    assert [len(e) for e in bench.train] == [60] * 5 and [len(e) for e in bench.test] == [20] * 5
    raw = sources.read_idx(mnist_root / "MNIST/raw/train-images-idx3-ubyte.gz")
    first = int(bench.train[0].rows[0])
    expected = (torch.from_numpy(raw[first].astype(np.float32)) / 255 - 0.1307) / 0.3081
    assert torch.allclose(bench.store.images[first, 0], expected)


def test_permuted_mnist_task_scenario(mnist_root):
    bench = build("permuted_mnist", scenario="task", data_root=str(mnist_root), n_experiences="3")
    assert bench.n_heads == 3 and bench.head_size == 10
    assert [e.task_label for e in bench.test] == [0, 1, 2]


def test_split_fmnist_reads_uncompressed_files(fmnist_root):
    bench = build("split_fmnist", data_root=str(fmnist_root))
    assert sum(len(e) for e in bench.train) == 300


def test_split_cifar10_on_generated_files(cifar_root):
    bench = build("split_cifar10", data_root=str(cifar_root))
    assert bench.input_shape == (3, 32, 32)
    assert sum(len(e) for e in bench.train) == 500 and sum(len(e) for e in bench.test) == 50
    assert [e.classes for e in bench.test] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]


def test_cifar_pickles_may_only_hold_arrays(tmp_path):
    import pickle

    root = tmp_path / "evil"
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps({"data": __import__("os").getcwd, "labels": [0]}))
    with pytest.raises(DataError, match="cannot read CIFAR-10"):
        build("split_cifar10", data_root=str(root))


@pytest.mark.parametrize("benchmark,folder", [("split_mnist", "MNIST/raw"), ("split_fmnist", "FashionMNIST/raw"),
                                              ("split_cifar10", "cifar-10-batches-py")])
def test_missing_data_offline_is_one_clear_line(tmp_path, no_network, benchmark, folder):
    cfg = resolve(benchmark, "naive", data_root=str(tmp_path), download=True)
    with pytest.raises(DataError) as err:
        BENCHMARKS.get(benchmark).load_builder()(cfg)
    message = str(err.value)
    assert "\n" not in message and benchmark in message and str(tmp_path) in message
    assert "--data-root" in message and "network" in message and "download failed" in message
    assert folder.split("/")[0] in message
    assert list(tmp_path.rglob("*.part")) == []  # nothing half-written


def test_download_checks_the_md5(tmp_path, monkeypatch):
    import io
    import urllib.request

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"not the file"))
    with pytest.raises(OSError, match="checksum mismatch"):
        sources.download(("http://mirror/x.gz",), tmp_path / "x.gz", md5="0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_download_writes_the_verified_file(tmp_path, monkeypatch):
    import hashlib
    import io
    import urllib.request

    payload = gzip.compress(b"payload")
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(payload))
    dest = tmp_path / "sub" / "x.gz"
    sources.download(("http://mirror/x.gz",), dest, hashlib.md5(payload).hexdigest())
    assert dest.read_bytes() == payload


def test_truncated_idx_file_is_a_data_error(tmp_path):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 1]) + (100).to_bytes(4, "big") + b"\x00" * 10)
    with pytest.raises(DataError, match="truncated"):
        sources.read_idx(path)


@pytest.mark.parametrize("benchmark", ["split_digits", "permuted_digits"])
def test_benchmarks_are_deterministic(benchmark):
    a, b = build(benchmark, seed=5), build(benchmark, seed=5)
    for x, y in zip(a.train + a.test, b.train + b.test):
        assert torch.equal(x.rows, y.rows) and torch.equal(x.targets, y.targets)
    for p, q in zip(a.store.permutations, b.store.permutations):
        assert (p is None and q is None) or torch.equal(p, q)
