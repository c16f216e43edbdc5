"""Builders: raw arrays -> `Benchmark` (split by classes, or permuted pixels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from clbench.benchmarks import sources
from clbench.benchmarks.store import Benchmark, ExperienceData, TensorStore
from clbench.config import RunConfig

# (mean, std, scale): images are uint8 (0..scale) normalised once as ((x / scale) - mean) / std.
MNIST_STATS = ((0.1307,), (0.3081,), 255.0)
FASHION_STATS = ((0.2860,), (0.3530,), 255.0)
CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), 255.0)
DIGITS_STATS = ((0.3053,), (0.3760,), 16.0)  # mean/std of all 1797 digits scaled to [0, 1]


def normalised_images(train_x: np.ndarray, test_x: np.ndarray, stats, normalize: bool = True) -> torch.Tensor:
    """Train rows then test rows, float32, scaled to [0, 1] and (by default) normalised per channel."""
    mean, std, scale = stats
    x = torch.from_numpy(np.concatenate([train_x, test_x])).float().div_(scale)
    if not normalize:
        return x
    channels = x.shape[1]
    if channels == 1:
        return x.sub_(mean[0]).div_(std[0])
    return x.sub_(torch.tensor(mean).view(1, channels, 1, 1)).div_(torch.tensor(std).view(1, channels, 1, 1))


def class_groups(classes: list[int], n_experiences: int, shuffle: bool, seed: int) -> list[list[int]]:
    """Classes per experience, in order (0/1, 2/3, ...) or in a seeded random order."""
    order = list(classes)
    if shuffle:
        perm = torch.randperm(len(order), generator=torch.Generator().manual_seed(seed))
        order = [order[i] for i in perm.tolist()]
    size = len(order) // n_experiences
    return [order[i * size:(i + 1) * size] for i in range(n_experiences)]


def _class_view(labels: torch.Tensor, offset: int, group: list[int], task: int | None) -> ExperienceData:
    mask = torch.isin(labels, torch.tensor(group))
    rows = torch.nonzero(mask).flatten() + offset
    targets = labels[mask]
    if task is not None:  # task-incremental: labels within the task's head
        lookup = torch.full((int(labels.max()) + 1,), -1, dtype=torch.long)
        lookup[torch.tensor(group)] = torch.arange(len(group))
        targets = lookup[targets]
    return ExperienceData(rows, targets, task or 0, tuple(group))


def build_split(cfg: RunConfig, arrays: sources.Arrays, stats) -> Benchmark:
    """Class-split benchmark: experience i holds the i-th group of classes."""
    train_x, train_y, test_x, test_y = arrays
    store = TensorStore(normalised_images(train_x, test_x, stats, cfg.bench.normalize))
    y_train, y_test = torch.from_numpy(train_y), torch.from_numpy(test_y)
    classes = sorted(np.unique(train_y).tolist())
    groups = class_groups(classes, cfg.bench.n_experiences, cfg.bench.shuffle_classes, cfg.seed)
    task_mode = cfg.scenario == "task"
    train, test = [], []
    for t, group in enumerate(groups):
        task = t if task_mode else None
        train.append(_class_view(y_train, 0, group, task))
        test.append(_class_view(y_test, len(y_train), group, task))
    n_heads, head_size = (len(groups), len(groups[0])) if task_mode else (1, max(classes) + 1)
    return Benchmark(cfg.benchmark, cfg.scenario, store, train, test, n_heads, head_size)


def permutations(n_pixels: int, n_experiences: int, identity_first: bool, seed: int) -> list:
    """One pixel permutation per experience (None = identity), drawn from the seed."""
    gen = torch.Generator().manual_seed(seed)
    return [None if (i == 0 and identity_first) else torch.randperm(n_pixels, generator=gen)
            for i in range(n_experiences)]


def build_permuted(cfg: RunConfig, arrays: sources.Arrays, stats) -> Benchmark:
    """Permuted benchmark: every experience sees all classes under its own pixel permutation."""
    train_x, train_y, test_x, test_y = arrays
    if cfg.bench.pad:  # zero (raw) pixels around the images, permuted with the rest
        border = ((0, 0), (0, 0), (cfg.bench.pad, cfg.bench.pad), (cfg.bench.pad, cfg.bench.pad))
        train_x, test_x = np.pad(train_x, border), np.pad(test_x, border)
    images = normalised_images(train_x, test_x, stats, cfg.bench.normalize)
    n_pixels = int(np.prod(images.shape[1:]))
    store = TensorStore(images, permutations(n_pixels, cfg.bench.n_experiences, cfg.bench.identity_first, cfg.seed))
    y_train, y_test = torch.from_numpy(train_y), torch.from_numpy(test_y)
    rows_train = torch.arange(len(y_train))
    rows_test = torch.arange(len(y_train), len(y_train) + len(y_test))
    classes = tuple(sorted(np.unique(train_y).tolist()))
    task_mode = cfg.scenario == "task"
    train, test = [], []
    for t in range(cfg.bench.n_experiences):
        task = t if task_mode else 0
        train.append(ExperienceData(rows_train, y_train, task, classes, permutation=t))
        test.append(ExperienceData(rows_test, y_test, task, classes, permutation=t))
    n_heads = cfg.bench.n_experiences if task_mode else 1
    return Benchmark(cfg.benchmark, cfg.scenario, store, train, test, n_heads, len(classes))


def data_root(cfg: RunConfig) -> Path:
    return Path(cfg.data_root).expanduser() if cfg.data_root else sources.default_data_root()


def split_mnist(cfg: RunConfig) -> Benchmark:
    images = sources.load_idx_set(sources.MNIST, data_root(cfg), cfg.benchmark, cfg.download)
    return build_split(cfg, images, MNIST_STATS)


def permuted_mnist(cfg: RunConfig) -> Benchmark:
    arrays = sources.load_idx_set(sources.MNIST, data_root(cfg), cfg.benchmark, cfg.download)
    return build_permuted(cfg, arrays, MNIST_STATS)


def split_fmnist(cfg: RunConfig) -> Benchmark:
    arrays = sources.load_idx_set(sources.FASHION_MNIST, data_root(cfg), cfg.benchmark, cfg.download)
    return build_split(cfg, arrays, FASHION_STATS)


def split_cifar10(cfg: RunConfig) -> Benchmark:
    return build_split(cfg, sources.load_cifar10(data_root(cfg), cfg.benchmark, cfg.download), CIFAR10_STATS)


def split_digits(cfg: RunConfig) -> Benchmark:
    return build_split(cfg, sources.load_digits(), DIGITS_STATS)


def permuted_digits(cfg: RunConfig) -> Benchmark:
    return build_permuted(cfg, sources.load_digits(), DIGITS_STATS)
