"""Avalanche streams over the tensor store, and the fast batches derived from them."""

import torch

from clbench.benchmarks.store import TensorBatches
from clbench.benchmarks.streams import attribute_tensor, tensor_batches
from clbench.config import resolve
from clbench.registry import BENCHMARKS


def digits(benchmark="split_digits", scenario=None):
    cfg = resolve(benchmark, "naive", scenario=scenario)
    return BENCHMARKS.get(benchmark).load_builder()(cfg)


def test_streams_expose_avalanche_experiences():
    bench = digits(scenario="task")
    train = list(bench.train_stream)
    assert len(train) == 5 and len(list(bench.test_stream)) == 5
    exp = train[3]
    assert exp.current_experience == 3 and exp.task_label == 3
    assert exp.classes_in_this_experience == {0, 1}
    x, y, t = exp.dataset[0]
    assert x.shape == (1, 8, 8) and y in (0, 1) and t == 3


def test_samples_match_the_store():
    bench = digits("permuted_digits")
    exp = list(bench.train_stream)[2]
    x, y, _ = exp.dataset[7]
    data = bench.train[2]
    assert torch.equal(x, bench.store.fetch(data.rows[7:8], 2)[0]) and y == int(data.targets[7])


def test_attributes_survive_concat_and_subset():
    bench = digits("permuted_digits")
    a, b = (e.dataset for e in list(bench.train_stream)[:2])
    mixed = a.concat(b).subset(list(range(0, 2 * len(a), 7)))
    for name in ("sample_row", "sample_permutation", "targets", "targets_task_labels"):
        column = mixed._data_attributes[name]
        assert attribute_tensor(column).tolist() == list(column)


def test_tensor_batches_equal_per_sample_access():
    bench = digits("permuted_digits")
    a, b = (e.dataset for e in list(bench.train_stream)[:2])
    mixed = a.concat(b).subset(list(range(3, 2 * len(a), 5)))
    loader = tensor_batches(mixed, bench.store, batch_size=16, shuffle=False)
    assert isinstance(loader, TensorBatches) and len(loader) == -(-len(mixed) // 16)
    xs, ys, ts = (torch.cat(parts) for parts in zip(*loader))
    for i in (0, 5, len(mixed) - 1):
        x, y, t = mixed[i]
        assert torch.equal(xs[i], x) and int(ys[i]) == y and int(ts[i]) == t


def test_shuffled_batches_follow_the_generator():
    bench = digits()
    dataset = list(bench.train_stream)[0].dataset

    def first_targets(seed):
        loader = tensor_batches(dataset, bench.store, 8, True, torch.Generator().manual_seed(seed))
        return next(iter(loader))[1].tolist()

    assert first_targets(1) == first_targets(1)
    assert sorted(torch.cat([b[1] for b in tensor_batches(dataset, bench.store, 8, True)]).tolist()) == \
        sorted(bench.train[0].targets.tolist())


def test_foreign_datasets_fall_back_to_avalanche_loading():
    from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset

    foreign = _make_taskaware_tensor_classification_dataset(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))
    assert tensor_batches(foreign, digits().store, 2, False) is None


def test_permuted_streams_share_their_label_and_row_lists():
    bench = digits("permuted_digits")
    datasets = [exp.dataset for exp in bench.train_stream]
    columns = [d._data_attributes["sample_row"].data._datasets[0] for d in datasets]
    targets = [d._data_attributes["targets"].data._datasets[0] for d in datasets]
    assert all(c is columns[0] for c in columns) and all(t is targets[0] for t in targets)
