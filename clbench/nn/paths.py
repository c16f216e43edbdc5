"""Path-plastic residual network: gated residual paths that can be pruned, regrown and frozen.

The backbone ("identity path") is a stem, a chain of positions that are
identities except at stage transitions (strided 3x3 conv + BN that widens the
channels), global average pooling. A `GatedPath` a -> b is a bottleneck
branch (1x1 -> 3x3 -> 1x1 convs with BN, ReLU between, ReLU after) times a
learnable scalar gate, added into position b from the output of position a.
A path crosses at most one stage transition (its 3x3 conv then has stride 2).

With `route_by_task` (task-incremental), a path frozen for task s runs only
for inputs of tasks t >= s and a free (still training) path only for tasks at
or after the one being trained: an old task never sees a later task's paths.

Source: PlasticNet (J. McCarroll), RigL-style plasticity of residual blocks.
"""

from __future__ import annotations

import random
from typing import Iterable

import torch
from torch import Tensor, nn

from clbench.nn.networks import Classifier

PATH_MODES = ("adjacent", "any")
PRUNE_CRITERIA = ("signed", "lowest", "gradient", "threshold")
Path = tuple[int, int]


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(c_out)]


class GatedPath(nn.Module):
    """Bottleneck residual branch from a position with `c_in` channels to one with `c_out`, times a gate."""

    def __init__(self, c_in: int, c_out: int, stride: int, generator: torch.Generator | None = None):
        super().__init__()
        mid = max(4, c_out // 4)
        self.branch = nn.Sequential(*conv_bn(c_in, mid, 1), nn.ReLU(), *conv_bn(mid, mid, 3, stride), nn.ReLU(),
                                    *conv_bn(mid, c_out, 1), nn.ReLU())
        self.gate = nn.Parameter(torch.rand((), generator=generator))
        self.stride, self.frozen = stride, False
        self.task: int | None = None  # the task it was frozen for

    def forward(self, x: Tensor) -> Tensor:
        return self.gate * self.branch(x)

    def freeze(self, task: int | None = None) -> None:
        """No more training: parameters fixed, BN statistics fixed; `task` is the task it is kept for."""
        self.frozen, self.task = True, task
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(mode and not self.frozen)

    def grad_magnitude(self) -> float:
        """Summed |grad| of the branch's conv and BN weights (the `gradient` prune score)."""
        return float(sum(p.grad.abs().sum() for p in self.branch.parameters() if p.grad is not None))


def stage_of_positions(stage_lengths: Iterable[int]) -> list[int]:
    """Stage index of every position, e.g. (2, 3) -> [0, 0, 1, 1, 1]."""
    return [stage for stage, length in enumerate(stage_lengths) for _ in range(length)]


def candidate_paths(stages: list[int], mode: str) -> list[Path]:
    """Every (a, b) a path may join: b = a + 1 (`adjacent`) or any a < b (`any`), crossing <= 1 transition."""
    if mode not in PATH_MODES:
        raise ValueError(f"unknown path mode {mode!r}; valid: {', '.join(PATH_MODES)}")
    n = len(stages)
    spans = [(a, a + 1) for a in range(n - 1)] if mode == "adjacent" else \
        [(a, b) for a in range(n) for b in range(a + 1, n)]
    return [(a, b) for a, b in spans if stages[b] - stages[a] <= 1]


def paths_to_prune(gates: dict[Path, float], grads: dict[Path, float], criterion: str,
                   threshold: float = 0.1) -> list[Path]:
    """Which of the (prunable) paths go: the lowest signed gate (PlasticNet), the lowest |gate|, the smallest
    gradient, or every |gate| < threshold."""
    if not gates:
        return []
    if criterion == "signed":
        return [min(gates, key=gates.__getitem__)]
    if criterion == "lowest":
        return [min(gates, key=lambda p: abs(gates[p]))]
    if criterion == "gradient":
        return [min(grads, key=grads.__getitem__)] if grads else []
    if criterion == "threshold":
        return [p for p, g in gates.items() if abs(g) < threshold]
    raise ValueError(f"unknown prune criterion {criterion!r}; valid: {', '.join(PRUNE_CRITERIA)}")


def paths_to_grow(candidates: list[Path], existing: Iterable[Path], n: int, mode: str,
                  rng: random.Random) -> list[Path]:
    """Up to `n` random free candidates; in `adjacent` mode one path per output position."""
    taken = set(existing)
    free = [p for p in candidates if p not in taken]
    rng.shuffle(free)
    chosen: list[Path] = []
    for path in free:
        if len(chosen) == n:
            break
        if mode == "adjacent" and any(b == path[1] for _, b in (*taken, *chosen)):
            continue
        chosen.append(path)
    return chosen


def routed_to(module: GatedPath, task_labels: Tensor, current_task: int) -> Tensor:
    """Which samples a path runs for: tasks >= the one it was frozen for, or >= the current one while free."""
    first = current_task if module.task is None else module.task
    return task_labels >= first


def path_key(path: Path) -> str:
    return f"{path[0]}_{path[1]}"


class PathPlasticTrunk(nn.Module):
    """Stem, positions with stage transitions, gated paths between positions, global average pooling.

    `stem_stride` s > 1 downsamples in the stem's conv (kernel max(3, 2s - 1)) so a CPU run takes
    minutes; the stem's max-pool keeps stride 1.
    """

    def __init__(self, in_channels: int, widths: tuple[int, ...] = (16, 32, 64, 128),
                 stage_lengths: tuple[int, ...] = (3, 3, 3, 3), mode: str = "adjacent", max_paths: int = 15,
                 seed: int = 0, stem_stride: int = 1):
        super().__init__()
        if len(widths) != len(stage_lengths):
            raise ValueError("one width per stage")
        self.stages = stage_of_positions(stage_lengths)
        self.widths, self.mode, self.max_paths = tuple(widths), mode, max_paths
        self.candidates = candidate_paths(self.stages, mode)
        self.rng = random.Random(seed)
        self.generator = torch.Generator().manual_seed(seed)
        stem_kernel = max(3, 2 * stem_stride - 1)
        self.stem = nn.Sequential(*conv_bn(in_channels, widths[0], stem_kernel, stem_stride), nn.ReLU(),
                                  nn.MaxPool2d(3, 1, 1))
        self.transitions = nn.ModuleDict({
            str(p): nn.Sequential(*conv_bn(widths[self.stages[p - 1]], widths[self.stages[p]], 3, 2))
            for p in range(1, len(self.stages)) if self.stages[p] != self.stages[p - 1]})
        self.paths = nn.ModuleDict()
        self.grow(max_paths)
        self.out_features = widths[-1]
        self.identity_frozen = False
        self.route_by_task, self.current_task = False, 0

    def freeze_identity_path(self) -> None:
        """Fix the stem and the stage transitions (parameters and BN statistics): every input runs through them."""
        self.identity_frozen = True
        self.stem.requires_grad_(False)
        self.transitions.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.identity_frozen:
            self.stem.eval()
            self.transitions.eval()
        return self

    def channels(self, position: int) -> int:
        return self.widths[self.stages[position]]

    @property
    def path_list(self) -> list[Path]:
        return [tuple(map(int, key.split("_"))) for key in self.paths]  # type: ignore[misc]

    def add_path(self, path: Path) -> GatedPath:
        a, b = path
        if path not in self.candidates:
            raise ValueError(f"path {path} is not allowed in mode {self.mode!r}")
        stride = 2 if self.stages[b] != self.stages[a] else 1
        module = GatedPath(self.channels(a), self.channels(b), stride, self.generator)
        self.paths[path_key(path)] = module
        return module

    def remove_path(self, path: Path) -> GatedPath:
        return self.paths.pop(path_key(path))

    def grow(self, n: int) -> list[Path]:
        """Add up to `n` random paths without exceeding `max_paths`; returns them."""
        room = max(0, min(n, self.max_paths - len(self.paths)))
        chosen = paths_to_grow(self.candidates, self.path_list, room, self.mode, self.rng)
        for path in chosen:
            self.add_path(path)
        return chosen

    def get_extra_state(self) -> dict:
        """The topology, saved in the trunk's state dict: which paths exist (in order), frozen for which
        task, training or not; the identity path's state; the random state of growth."""
        version, internal, gauss = self.rng.getstate()
        paths = [[a, b, module.frozen, -1 if module.task is None else module.task,
                  module.gate.requires_grad] for (a, b), module in zip(self.path_list, self.paths.values())]
        return {"paths": paths, "identity_frozen": self.identity_frozen, "route_by_task": self.route_by_task,
                "current_task": self.current_task, "rng": [version, list(internal), gauss],
                "generator": self.generator.get_state()}

    def set_extra_state(self, state: dict) -> None:
        """Rebuild the saved topology (before the paths' weights are loaded into it)."""
        modules = {}
        for a, b, frozen, task, trainable in state["paths"]:
            key = path_key((a, b))
            modules[key] = self.paths[key] if key in self.paths else self.add_path((a, b))
            modules[key].requires_grad_(trainable)
            if frozen:
                modules[key].freeze(None if task < 0 else task)
        self.paths = nn.ModuleDict(modules)
        if state["identity_frozen"]:
            self.freeze_identity_path()
        self.route_by_task, self.current_task = state["route_by_task"], state["current_task"]
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.generator.set_state(state["generator"])

    def forward(self, x: Tensor, task_labels: Tensor | None = None) -> Tensor:
        if self.route_by_task and task_labels is None and self.training:
            raise ValueError("route_by_task needs the task labels in training: wrap the trunk in a model that "
                             "hands them on (clbench.nn.paths.RoutedClassifier)")
        routed = self.route_by_task and task_labels is not None
        incoming: dict[int, list[tuple[int, GatedPath]]] = {}
        for key, module in self.paths.items():
            a, b = map(int, key.split("_"))
            incoming.setdefault(b, []).append((a, module))
        outputs = [self.stem(x)]
        for p in range(1, len(self.stages)):
            h = self.transitions[str(p)](outputs[-1]) if str(p) in self.transitions else outputs[-1]
            for a, module in incoming.get(p, []):
                h = h + self._path_output(module, outputs[a], task_labels if routed else None)
            outputs.append(h)
        return outputs[-1].mean((2, 3))

    def _path_output(self, module: GatedPath, x: Tensor, task_labels: Tensor | None) -> Tensor | float:
        if task_labels is None:
            return module(x)
        runs = routed_to(module, task_labels, self.current_task)
        if bool(runs.all()):
            return module(x)
        if not bool(runs.any()):
            return 0.0
        return module(x) * runs.to(x.dtype).view(-1, 1, 1, 1)


class RoutedClassifier(Classifier):
    """A `Classifier` that hands the task labels to its trunk too (for `route_by_task`)."""

    def forward(self, x: Tensor, task_labels: Tensor | None = None) -> Tensor:
        return self.head(self.features(x, task_labels), task_labels)
