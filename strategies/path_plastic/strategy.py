"""path_plastic: gated residual paths pruned, regrown and, per experience, kept and frozen.

`PathPlasticPlugin` drives the `PathPlasticTrunk` of a model: every
`rewire_every` iterations (none in an experience's last epoch unless
`rewire_last_epoch`) it prunes paths by `prune` (`lowest` gate, smallest
`gradient`, gates under `threshold`) and regrows random ones up to
`max_paths`. New paths join the optimizer unless `register_new_params=False`
(the original implementation's behaviour: regrown paths never train). After
each experience the `keep_paths` best free paths by |gate| are frozen for it,
and after the first the stem and stage transitions (the identity path, which
every experience runs through) are frozen too; later experiences grow and
rewire paths in the remaining budget. `PathPlastic` is an Avalanche
`SupervisedTemplate` with the plugin.
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING

import torch
from torch import nn

from clbench.config import RunConfig
from clbench.errors import ClbenchWarning, UsageError
from clbench.nn.networks import Classifier
from clbench.nn.optim import sync_optimizer
from clbench.nn.paths import PathPlasticTrunk, RoutedClassifier, paths_to_prune
from clbench.strategies.base import MethodPlugin, MethodStrategy, given_or_built, planned_iterations, template_kwargs
from clbench.strategies.path_plastic import PathPlasticConfig

if TYPE_CHECKING:
    from clbench.benchmarks.store import Benchmark


def experience_task(experience) -> int:
    """The task label of an Avalanche experience of any kind: `task_label`, else its single `task_labels`
    entry, else 0 (streams without task labels)."""
    try:
        return int(experience.task_label)
    except (AttributeError, ValueError):
        labels = list(getattr(experience, "task_labels", None) or [0])
        return int(labels[0]) if len(labels) == 1 else 0


def find_trunk(model: nn.Module) -> PathPlasticTrunk:
    for module in model.modules():
        if isinstance(module, PathPlasticTrunk):
            return module
    raise ValueError("PathPlasticPlugin needs a model with a PathPlasticTrunk")


class PathPlasticPlugin(MethodPlugin):
    """Rewires, grows and freezes the gated paths of a `PathPlasticTrunk`.

    Hyperparameters: the keys of `PathPlasticConfig` that act on training (rewire_every, prune,
    threshold, rewire_last_epoch, register_new_params, keep_paths, route_by_task, settle_fraction);
    the others describe the trunk.
    """

    config_class = PathPlasticConfig
    required_layers = "a PathPlasticTrunk (clbench.nn.paths)"
    state_keys = ("iteration", "epoch", "settled", "pruned", "grown", "rewires", "settle_removed", "rewire_seconds")

    def finds_layers(self, model: nn.Module) -> bool:
        return any(isinstance(m, PathPlasticTrunk) for m in model.modules())

    def __init__(self, config: PathPlasticConfig | None = None, **hparams):
        super().__init__(config, **hparams)
        self.iteration = self.epoch = 0
        self.settled = False
        self.pruned = self.grown = self.rewires = self.settle_removed = 0
        self.rewire_seconds = 0.0

    # ------------------------------------------------------------ callbacks
    def before_training_exp(self, strategy, **kwargs):
        self.iteration = self.epoch = 0
        self.settled = False
        trunk = find_trunk(strategy.model)
        trunk.route_by_task, trunk.current_task = self.config.route_by_task, experience_task(strategy.experience)
        self._grow(strategy, trunk)

    def after_update(self, strategy, **kwargs):
        self.iteration += 1
        last_epoch = self.epoch >= strategy.train_epochs - 1
        if self.config.route_by_task and not self.settled and self._settling(strategy):
            self.settle(strategy)
        if self.settled:
            return
        every = self.config.rewire_every
        if every and self.iteration % every == 0 and (self.config.rewire_last_epoch or not last_epoch):
            self.rewire(strategy)

    def after_training_epoch(self, strategy, **kwargs):
        self.epoch += 1

    def after_training_exp(self, strategy, **kwargs):
        trunk = find_trunk(strategy.model)
        if self.config.route_by_task and not self.settled:  # settle_fraction 0, or the experience ended early
            self.settle(strategy)
        kept, _ = self._kept_and_free(trunk)
        for module in kept.values():
            module.freeze(trunk.current_task)
        if self.config.keep_paths:  # the identity path carried this experience too: keep it with its paths
            trunk.freeze_identity_path()
        self.sync(strategy)

    def _kept_and_free(self, trunk: PathPlasticTrunk) -> tuple[dict, dict]:
        """The free paths to keep for this experience (best |gate|, within the budget) and the others."""
        free = {path: m for path, m in zip(trunk.path_list, trunk.paths.values()) if not m.frozen}
        keep = self.config.keep_paths
        budget = max(0, min(keep, trunk.max_paths - keep - (len(trunk.paths) - len(free))))
        ranked = sorted(free, key=lambda p: -abs(float(free[p].gate.detach())))
        return {p: free[p] for p in ranked[:budget]}, {p: free[p] for p in ranked[budget:]}

    def settle(self, strategy) -> None:
        """Choose the kept paths now and remove the other free ones: the kept train alone to the end."""
        trunk = find_trunk(strategy.model)
        for path in self._kept_and_free(trunk)[1]:
            trunk.remove_path(path)
            self.settle_removed += 1
        self.settled = True
        self.sync(strategy)

    def _settling(self, strategy) -> bool:
        """Whether this experience has reached its last `settle_fraction` (of the budget, or epochs x batches)."""
        return self.iteration >= (1 - self.config.settle_fraction) * planned_iterations(strategy)

    @staticmethod
    def sync(strategy) -> None:
        """The optimizer holds the trainable parameters once each; Avalanche's record of what it optimizes
        (`optimized_param_id`, read at the next experience) is kept in step, so it adds none of them again."""
        optimized = sync_optimizer(strategy.optimizer, strategy.model)
        if getattr(strategy, "optimized_param_id", None) is not None:
            strategy.optimized_param_id = optimized

    # ------------------------------------------------------------- rewiring
    @torch.no_grad()
    def rewire(self, strategy) -> None:
        """Prune by the criterion among the free paths, then regrow random paths up to `max_paths`."""
        start = time.perf_counter()
        trunk = find_trunk(strategy.model)
        free = {path: m for path, m in zip(trunk.path_list, trunk.paths.values()) if not m.frozen}
        gates = {path: float(m.gate.detach()) for path, m in free.items()}
        grads = {path: m.grad_magnitude() for path, m in free.items()} if self.config.prune == "gradient" else {}
        for path in paths_to_prune(gates, grads, self.config.prune, self.config.threshold):
            trunk.remove_path(path)
            self.pruned += 1
        self._grow(strategy, trunk)
        self.rewires += 1
        self.rewire_seconds += time.perf_counter() - start

    def _grow(self, strategy, trunk: PathPlasticTrunk) -> None:
        device = next(trunk.parameters()).device
        for path in trunk.grow(trunk.max_paths):
            module = trunk.paths[f"{path[0]}_{path[1]}"].to(device)
            module.train(trunk.training)
            if not self.config.register_new_params:
                module.requires_grad_(False)
            self.grown += 1
        self.sync(strategy)

    # ------------------------------------------------------------ statistics
    def record_extras(self, strategy) -> dict:
        trunk = find_trunk(strategy.model)
        paths = [[a, b, round(float(m.gate.detach()), 6)] for (a, b), m in zip(trunk.path_list, trunk.paths.values())]
        frozen = [[a, b] for (a, b), m in zip(trunk.path_list, trunk.paths.values()) if m.frozen]
        return {"paths": paths, "frozen_paths": frozen, "live_paths_count": len(paths),
                "frozen_paths_count": len(frozen), "pruned_total": self.pruned, "grown_total": self.grown,
                "rewires_total": self.rewires, "rewire_seconds": round(self.rewire_seconds, 4),
                **({"settle_removed_total": self.settle_removed} if self.config.route_by_task else {}),
                "identity_frozen": trunk.identity_frozen}


class PathPlastic(MethodStrategy):
    """An Avalanche strategy whose residual paths are rewired and frozen per experience (`PathPlasticPlugin`,
    as `paths=`)."""

    plugin_class, plugin_keyword = PathPlasticPlugin, "paths"


def auto_stem_stride(input_shape: tuple[int, ...]) -> int:
    """1 for 8x8 digits, 4 for 28x28 MNIST (7x7 maps), 2 for 32x32 CIFAR (16x16 maps)."""
    side = min(input_shape[1:])
    return 1 if side <= 8 else 4 if side <= 28 else 2


def first_experience_without_free_paths(keep_paths: int, trunk: PathPlasticTrunk) -> int | None:
    """The experience (1-based) from which every path this trunk can hold is frozen, or None if never.

    After each experience `keep_paths` free paths are frozen, up to `max_paths - keep_paths` in all; a trunk
    with no more candidate paths than that runs out of free ones."""
    candidates = len(trunk.candidates)
    if not keep_paths or candidates > trunk.max_paths - keep_paths:
        return None
    return -(-candidates // keep_paths) + 1


def check_path_budget(keep_paths: int, trunk: PathPlasticTrunk, n_experiences: int) -> None:
    """Warn when a stream is longer than the trunk's paths can serve: its last experiences train only the head."""
    first = first_experience_without_free_paths(keep_paths, trunk)
    if first is None or first > n_experiences:
        return
    most = (len(trunk.candidates) - 1) // (n_experiences - 1)  # the largest keep_paths with a free path at the end
    warnings.warn(
        f"path_plastic: keep_paths={keep_paths} freezes {keep_paths} paths per experience and this trunk has "
        f"{len(trunk.candidates)} candidate paths (mode={trunk.mode}), so from experience {first} of "
        f"{n_experiences} none is free and only the output layer trains; to train every experience: "
        f"{f'keep_paths<={most}' if most else 'keep_paths=0'}, mode=any, or longer stage_lengths.",
        ClbenchWarning, stacklevel=2)


def build(cfg: RunConfig, benchmark: Benchmark, plugins: list, **given) -> PathPlastic:
    """`given`: a model (with a PathPlasticTrunk) or other template keywords to use instead of clbench's."""
    m = cfg.method
    if m.route_by_task and benchmark.n_heads == 1 and "model" not in given:
        raise UsageError(f"route_by_task=true routes by the task label, which scenario '{cfg.scenario}' does not "
                         "give at test time; valid: --scenario task, or route_by_task=false.")

    def network() -> nn.Module:
        if len(benchmark.input_shape or ()) != 3:
            raise ValueError(f"path_plastic builds a convolutional trunk: it needs image inputs (C, H, W), not "
                             f"{benchmark.input_shape}; give image-shaped samples, or pass a model with a "
                             "PathPlasticTrunk")
        stem_stride = m.stem_stride or auto_stem_stride(benchmark.input_shape)
        trunk = PathPlasticTrunk(benchmark.input_shape[0], m.widths, m.stage_lengths, m.mode, m.max_paths,
                                 cfg.seed, stem_stride)
        head = RoutedClassifier if m.route_by_task else Classifier
        return head(trunk, trunk.out_features, benchmark.n_heads, benchmark.head_size)

    model = given_or_built(given, network, benchmark)
    check_path_budget(m.keep_paths, find_trunk(model), getattr(benchmark, "n_experiences", 1))  # 1: a saved model's
    return PathPlastic(**template_kwargs(cfg, benchmark, plugins, model=model, **given),
                       paths=PathPlasticPlugin.from_config(m))
