"""Avalanche views of a `Benchmark`: experiences whose datasets are tensor-backed.

Each sample carries its store row and permutation id as data attributes
(`sample_row`, `sample_permutation`). Avalanche keeps data attributes aligned
through every concat and subset (cumulative training, joint training, replay
buffers), so `tensor_batches` can rebuild fast tensor batches for any dataset
derived from these experiences.
"""

from __future__ import annotations

import torch
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.scenarios.supervised import with_classes_timeline
from avalanche.benchmarks.scenarios.task_aware import with_task_labels
from avalanche.benchmarks.utils import (
    ConstantSequence,
    DataAttribute,
    TaskAwareSupervisedClassificationDataset,
)
from avalanche.benchmarks.utils.flat_data import FlatData
from torch.utils.data import Dataset

from clbench.benchmarks.store import Benchmark, ExperienceData, TensorBatches, TensorStore


class StoreSamples(Dataset):
    """Per-sample access to one experience (for code that indexes samples)."""

    def __init__(self, store: TensorStore, exp: ExperienceData):
        self.store, self.exp = store, exp

    def __len__(self) -> int:
        return len(self.exp)

    def __getitem__(self, index: int):
        rows = self.exp.rows[index].reshape(1)
        return self.store.fetch(rows, self.exp.permutation)[0], int(self.exp.targets[index])


def experience_dataset(store: TensorStore, exp: ExperienceData, as_list=lambda t: t.tolist()):
    """An Avalanche classification dataset (x, y, task) for one experience.

    `as_list` turns the row and target tensors into the lists Avalanche stores;
    `make_streams` passes one that converts each shared tensor only once.
    """
    n = len(exp)
    attributes = [
        DataAttribute(as_list(exp.targets), "targets"),
        DataAttribute(ConstantSequence(exp.task_label, n), "targets_task_labels", use_in_getitem=True),
        DataAttribute(as_list(exp.rows), "sample_row"),
        DataAttribute(ConstantSequence(exp.permutation, n), "sample_permutation"),
    ]
    return TaskAwareSupervisedClassificationDataset([StoreSamples(store, exp)], data_attributes=attributes)


def make_streams(benchmark: Benchmark):
    """(train_stream, test_stream) with classes timeline and task labels.

    Permuted experiences share their row and target tensors; their lists are
    shared too, so the streams do not grow with the number of permutations.
    """
    lists: dict[int, list] = {}

    def as_list(tensor: torch.Tensor) -> list:
        if id(tensor) not in lists:
            lists[id(tensor)] = tensor.tolist()
        return lists[id(tensor)]

    scenario = benchmark_from_datasets(
        train=[experience_dataset(benchmark.store, e, as_list) for e in benchmark.train],
        test=[experience_dataset(benchmark.store, e, as_list) for e in benchmark.test],
    )
    scenario = with_task_labels(with_classes_timeline(scenario))
    return scenario.streams["train"], scenario.streams["test"]


def _sequence_tensor(seq) -> torch.Tensor:
    """Values of an Avalanche flat sequence as an int64 tensor, without per-item Python."""
    if isinstance(seq, ConstantSequence):
        return torch.full((len(seq),), int(seq[0]) if len(seq) else 0, dtype=torch.long)
    if isinstance(seq, (list, range)):
        return torch.as_tensor(seq, dtype=torch.long)
    if isinstance(seq, FlatData):
        parts = [_sequence_tensor(d) for d in seq._datasets]
        values = torch.cat(parts) if parts else torch.empty(0, dtype=torch.long)
        return values if seq._indices is None else values[torch.as_tensor(seq._indices, dtype=torch.long)]
    return torch.as_tensor(list(seq), dtype=torch.long)


def attribute_tensor(attribute: DataAttribute) -> torch.Tensor:
    """A data attribute as an int64 tensor (vectorised over Avalanche's flat storage)."""
    return _sequence_tensor(attribute.data)


def tensor_batches(dataset, store: TensorStore, batch_size: int, shuffle: bool,
                   generator: torch.Generator | None = None) -> TensorBatches | None:
    """Fast batches for an Avalanche dataset derived from `store`, else None."""
    attributes = getattr(dataset, "_data_attributes", {})
    if not {"sample_row", "sample_permutation", "targets", "targets_task_labels"} <= set(attributes):
        return None
    if len(dataset) == 0:
        return None

    def column(name: str) -> torch.Tensor:
        return attribute_tensor(attributes[name])

    return TensorBatches(store, column("sample_row"), column("sample_permutation"), column("targets"),
                         column("targets_task_labels"), batch_size, shuffle, generator)
