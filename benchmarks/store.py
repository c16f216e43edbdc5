"""In-memory data: one tensor of images, index views per experience, fast batches.

A `TensorStore` holds every image of a data set (train rows first, then test
rows) normalised once, plus the pixel permutations of a permuted benchmark.
An experience is a view on it: row indices, a permutation id and targets.
Permutations are applied per batch, so memory does not grow with the number
of experiences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Iterator, Sequence

import torch
from torch import Tensor


class TensorStore:
    """Images [N, C, H, W] (float32, normalised) and permutations (id 0 = identity)."""

    def __init__(self, images: Tensor, permutations: Sequence[Tensor | None] = (None,)):
        self.images = images
        self.permutations = list(permutations)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    def fetch(self, rows: Tensor, permutation: int = 0) -> Tensor:
        """The images at `rows`, with permutation `permutation` applied."""
        x = self.images[rows]
        perm = self.permutations[permutation]
        if perm is None:
            return x
        return x.reshape(len(x), -1)[:, perm].reshape(x.shape)

    def fetch_mixed(self, rows: Tensor, permutations: Tensor) -> Tensor:
        """Like `fetch`, with one permutation id per row."""
        ids = permutations.unique()
        if len(ids) == 1:
            return self.fetch(rows, int(ids[0]))
        out = torch.empty((len(rows), *self.input_shape), dtype=self.images.dtype)
        for pid in ids.tolist():
            mask = permutations == pid
            out[mask] = self.fetch(rows[mask], pid)
        return out


@dataclass(frozen=True)
class ExperienceData:
    """One experience of one split: a view on the store."""

    rows: Tensor  # int64 row indices into the store
    targets: Tensor  # int64 labels as the model sees them (within-task in task-IL)
    task_label: int
    classes: tuple[int, ...]  # original class ids present
    permutation: int = 0  # index into store.permutations

    def __len__(self) -> int:
        return len(self.rows)

    def batches(self, store: TensorStore, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        """Ordered (x, y) batches by slicing: the lean evaluation loop."""
        for start in range(0, len(self.rows), batch_size):
            rows = self.rows[start:start + batch_size]
            yield store.fetch(rows, self.permutation), self.targets[start:start + batch_size]


@dataclass
class Benchmark:
    """A built benchmark: data in memory plus the layout the model needs."""

    name: str
    scenario: str
    store: TensorStore
    train: list[ExperienceData]
    test: list[ExperienceData]
    n_heads: int  # 1, or one head per experience in task-incremental mode
    head_size: int  # outputs per head

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.store.input_shape

    @property
    def n_experiences(self) -> int:
        return len(self.train)

    @property
    def n_classes(self) -> int:
        return len({c for exp in self.train for c in exp.classes})

    @property
    def classes_per_experience(self) -> list[int]:
        return [len(exp.classes) for exp in self.train]

    def describe(self) -> list[dict]:
        """Per-experience facts for the result record."""
        out = []
        for i, (tr, te) in enumerate(zip(self.train, self.test)):
            out.append({
                "id": i,
                "classes": list(tr.classes),
                "task_label": tr.task_label,
                "permutation": tr.permutation if len(self.store.permutations) > 1 else None,
                "train_size": len(tr),
                "test_size": len(te),
            })
        return out

    @cached_property
    def streams(self):
        """(train_stream, test_stream) as Avalanche experiences."""
        from clbench.benchmarks.streams import make_streams

        return make_streams(self)

    @property
    def train_stream(self):
        return self.streams[0]

    @property
    def test_stream(self):
        return self.streams[1]


class TensorBatches:
    """Mini-batches `[x, y, task]` cut from in-memory tensors (a DataLoader stand-in)."""

    def __init__(self, store: TensorStore, rows: Tensor, permutations: Tensor, targets: Tensor,
                 tasks: Tensor, batch_size: int, shuffle: bool, generator: torch.Generator | None = None):
        self.store, self.rows, self.permutations = store, rows, permutations
        self.targets, self.tasks = targets, tasks
        self.batch_size, self.shuffle, self.generator = batch_size, shuffle, generator
        self._single_permutation = int(permutations[0]) if len(permutations) and bool(
            (permutations == permutations[0]).all()) else None

    def __len__(self) -> int:
        return math.ceil(len(self.rows) / self.batch_size)

    def __iter__(self) -> Iterator[list[Tensor]]:
        n = len(self.rows)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size] if order is not None else slice(start, start + self.batch_size)
            rows = self.rows[idx]
            if self._single_permutation is not None:
                x = self.store.fetch(rows, self._single_permutation)
            else:
                x = self.store.fetch_mixed(rows, self.permutations[idx])
            yield [x, self.targets[idx], self.tasks[idx]]
