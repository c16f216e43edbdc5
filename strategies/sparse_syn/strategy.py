"""sparse_syn: sparse dynamic synapses that grow per experience and consolidate old ones.

`SparseSynapsesPlugin` drives the `SparseMixin` layers of any model: SET/RigL
topology steps (prune the weights closest to zero, regrow as many at free
positions), growth of new connections at the start of every experience after
the first, consolidation of the connections that carried an experience and
of the biases of their units (frozen, or slowed by `old_lr_scale`; the
connections are never pruned again), and a density cap. `SparseSynapses` is
an Avalanche `SupervisedTemplate` with the plugin.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from clbench.config import RunConfig
from clbench.errors import UsageError
from clbench.nn.optim import floor_second_moments, reset_optimizer_state
from clbench.nn.sparse import (
    SparseLinear,
    SparseMixin,
    cosine_zeta,
    free_unit_regrow,
    gradient_regrow,
    random_regrow,
    regrow_values,
    set_prune,
    sparse_model,
    square_profile,
)
from clbench.strategies.base import (
    MethodPlugin,
    MethodStrategy,
    given_or_built,
    planned_iterations,
    template_kwargs,
)
from clbench.strategies.kwinners.strategy import KWinnersPlugin
from clbench.strategies.sparse_syn import SparseSynConfig

if TYPE_CHECKING:
    from clbench.benchmarks.store import Benchmark


def sparse_layers(model: nn.Module) -> list[tuple[str, SparseMixin]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, SparseMixin)]


def consolidated_parts(layer: SparseMixin, frozen: Tensor) -> list[tuple[Tensor, Tensor]]:
    """The consolidated synapses of `layer` and the biases of the units they feed, as (parameter, boolean mask
    of its consolidated entries).

    A unit's bias moves every input-output mapping through it, so a unit that
    carries a consolidated synapse has its bias consolidated with it.
    """
    if not frozen.any():
        return []
    parts = [(layer.weight, frozen)]
    if layer.bias is not None:
        parts.append((layer.bias, frozen.flatten(1).any(1)))
    return parts


def topology_steps(iterations: int, evolve_every: int, batches_per_epoch: int) -> int:
    """Topology steps in an experience of `iterations`: one per `evolve_every` iterations, or one per epoch,
    none in the last window (SET changes no connection after the last epoch: what it regrew there would be
    consolidated untrained)."""
    if evolve_every:
        return max(0, iterations // evolve_every - 1)
    return max(0, math.ceil(iterations / max(1, batches_per_epoch)) - 1)


class SparseSynapsesPlugin(MethodPlugin):
    """Evolves, grows and consolidates the connections of a model's sparse layers.

    Hyperparameters: the keys of `SparseSynConfig` that act on training (zeta, evolve_every, regrow,
    regrow_init, grow, max_density, old_lr_scale); the model keys (density, epsilon, percent_on) are
    the model's. `seed` seeds regrowth, `input_shape` (C, H, W) enables the per-pixel topology map.
    """

    config_class = SparseSynConfig
    required_layers = "SparseLinear or SparseConv2d layers (clbench.nn.sparse; its sparse_model builds them)"
    state_keys = ("iteration", "iterations", "step", "steps_total", "pruned", "regrown", "grown")

    def finds_layers(self, model: nn.Module) -> bool:
        return bool(sparse_layers(model))

    def __init__(self, config: SparseSynConfig | None = None, *, seed: int = 0,
                 input_shape: tuple[int, ...] | None = None, **hparams):
        super().__init__(config, **hparams)
        self.input_shape = input_shape
        self.generator = torch.Generator().manual_seed(seed)
        self.frozen: dict[str, Tensor] = {}  # layer name -> consolidated connections
        self._layers: list[tuple[str, SparseMixin]] = []
        self._consolidated: list[tuple[Tensor, Tensor]] = []  # (parameter, mask of its consolidated entries)
        self._saved: list[Tensor] = []  # those parameters before the optimizer step
        self.iteration = self.iterations = self.step = self.steps_total = 0
        self.pruned = self.regrown = self.grown = 0  # topology prunes and regrowths; growth per experience

    def state_dict(self) -> dict:
        return {**super().state_dict(), "frozen": dict(self.frozen), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.frozen = dict(state["frozen"])
        self.generator.set_state(state["generator"])

    # ------------------------------------------------------------ callbacks
    def before_training_exp(self, strategy, **kwargs):
        self._layers = layers = sparse_layers(strategy.model)
        for name, layer in layers:
            self.frozen.setdefault(name, torch.zeros_like(layer.mask, dtype=torch.bool))
            layer.track_dense_grad = self.config.regrow == "gradient"
        self._consolidated = [part for name, layer in layers for part in consolidated_parts(layer, self.frozen[name])]
        if self._consolidated:
            for name, layer in layers:
                self._grow(strategy, layer, self.frozen[name], round(self.config.grow * layer.mask.numel()))
        self.iteration = self.step = 0
        self.iterations = planned_iterations(strategy)
        self.steps_total = topology_steps(self.iterations, self.config.evolve_every, len(strategy.dataloader))

    def before_update(self, strategy, **kwargs):
        if self.config.old_lr_scale < 1:
            self._saved = [param.detach().clone() for param, _ in self._consolidated]

    def after_update(self, strategy, **kwargs):
        # Masked weights need no re-zeroing: they get zero gradient, and their optimizer
        # state is reset whenever the topology changes, so every optimizer leaves them at 0.
        # Consolidated synapses and biases: frozen, or moved by old_lr_scale of the step. Dense masked
        # writes: their cost does not grow with the number of consolidated synapses (experiences).
        scale = self.config.old_lr_scale
        with torch.no_grad():
            for (param, frozen), old in zip(self._consolidated, self._saved):
                kept = old if scale == 0 else old + scale * (param - old)
                param.copy_(torch.where(frozen, kept, param))
        self.iteration += 1
        if self.iteration == 1:  # Adam's state exists from the first step on
            self._floor_second_moments(strategy)
        every = self.config.evolve_every
        if every and self.iteration % every == 0 and self.iteration + every <= self.iterations:
            self.evolve(strategy)

    def after_training_epoch(self, strategy, **kwargs):
        if not self.config.evolve_every and self.iteration < self.iterations:  # not after the last epoch
            self.evolve(strategy)

    def after_training_exp(self, strategy, **kwargs):
        for name, layer in self._layers:
            self.frozen[name] |= layer.mask.bool()

    # ------------------------------------------------------------- topology
    def zeta_now(self) -> float:
        if self.config.regrow == "gradient":
            return cosine_zeta(self.config.zeta, self.step, self.steps_total)
        return self.config.zeta

    @torch.no_grad()
    def evolve(self, strategy) -> None:
        """One topology step on every sparse layer: prune by SET's criterion, regrow as many."""
        zeta = self.zeta_now()
        self.step += 1
        if zeta <= 0:
            return
        for name, layer in self._layers:
            prunable = layer.mask.bool() & ~self.frozen[name]
            removed = set_prune(layer.weight, layer.mask, zeta, prunable)
            layer.mask.view(-1)[removed] = 0
            layer.weight.view(-1)[removed] = 0
            self.pruned += len(removed)
            self.regrown += self._place(strategy, layer, self._choose(layer, len(removed)), extra_reset=removed)
        self._floor_second_moments(strategy)

    def _floor_second_moments(self, strategy) -> None:
        for _, layer in self._layers:
            floor_second_moments(strategy.optimizer, layer.weight, layer.mask)

    def _choose(self, layer: SparseMixin, n: int) -> Tensor:
        if self.config.regrow == "gradient" and layer.dense_grad is not None:
            return gradient_regrow(layer.mask, layer.dense_grad, n)
        return random_regrow(layer.mask, n, self.generator)

    @torch.no_grad()
    def _grow(self, strategy, layer: SparseMixin, frozen: Tensor, n: int) -> None:
        """New connections for a new experience, within the density cap (`grow_into`: which units get them)."""
        cap = self.config.max_density or 1.0
        n = max(0, min(n, int(cap * layer.mask.numel()) - layer.connections))
        if self.config.grow_into == "free":
            idx = free_unit_regrow(layer.mask, frozen, n, self.generator)
        else:
            idx = random_regrow(layer.mask, n, self.generator)
        self.grown += self._place(strategy, layer, idx)

    @torch.no_grad()
    def _place(self, strategy, layer: SparseMixin, idx: Tensor, extra_reset: Tensor | None = None) -> int:
        """Connect `idx` with fresh weights and fresh optimizer state; returns how many."""
        fan_in = layer.weight[0].numel()
        layer.mask.view(-1)[idx] = 1
        layer.weight.view(-1)[idx] = regrow_values(len(idx), self.config.regrow_init, fan_in, self.generator)
        changed = idx if extra_reset is None else torch.cat([idx, extra_reset])
        reset_optimizer_state(strategy.optimizer, layer.weight, changed)
        return len(idx)

    # ------------------------------------------------------------ statistics
    def record_extras(self, strategy) -> dict:
        layers = sparse_layers(strategy.model)
        extras = {
            "density": {name: layer.density for name, layer in layers},
            "frozen_fraction": {name: float(self.frozen[name].float().mean()) for name, _ in layers},
            # consolidated connections whose weight is exactly 0: regrown and frozen before they trained
            "frozen_at_zero": {name: float((layer.weight.detach()[self.frozen[name]] == 0).float().mean())
                               if self.frozen[name].any() else 0.0 for name, layer in layers},
            "connections": {name: layer.connections for name, layer in layers},
            "pruned_total": self.pruned,
            "regrown_total": self.regrown,
            "grown_total": self.grown,
        }
        first = layers[0][1] if layers else None
        if isinstance(first, SparseLinear) and self.input_shape and len(self.input_shape) == 3:
            counts = first.mask.sum(0).view(self.input_shape).sum(0)  # connections per input pixel
            extras["topology"] = counts.int().tolist()
            extras["square_profile"] = square_profile(counts)
        return extras


class SparseSynapses(MethodStrategy):
    """An Avalanche strategy whose sparse layers evolve, grow and consolidate (`SparseSynapsesPlugin`).

    Pass the plugin as `sparse=`, or its hyperparameters as keywords (`grow=0.02, zeta=0.3`).
    """

    plugin_class, plugin_keyword = SparseSynapsesPlugin, "sparse"


def check_density_cap(cfg: RunConfig, layers: list[tuple[str, SparseMixin]], n_experiences: int) -> None:
    """Refuse a `max_density` too low to give every experience of the stream its growth."""
    m = cfg.method
    if not m.max_density:
        return
    for name, layer in layers:
        numel = layer.mask.numel()
        needed = layer.connections + (n_experiences - 1) * round(m.grow * numel)
        if needed > int(m.max_density * numel):
            raise UsageError(
                f"max_density={m.max_density:g} cannot serve {n_experiences} experiences: layer '{name}' starts at "
                f"density {layer.connections / numel:.3f} and grows {m.grow:g} per experience, needing "
                f"{needed / numel:.3f}; valid: max_density >= {needed / numel:.3f}, or max_density=0 (no cap), "
                "or a smaller grow.")


def build(cfg: RunConfig, benchmark: Benchmark, plugins: list, **given) -> SparseSynapses:
    """`given`: a model (with sparse layers) or other template keywords to use instead of clbench's."""
    m = cfg.method
    model = given_or_built(given, lambda: sparse_model(
        cfg.train.backbone, benchmark.input_shape, cfg.train.hidden, benchmark.n_heads, benchmark.head_size,
        density=None if m.epsilon else m.density, epsilon=m.epsilon or None,
        generator=torch.Generator().manual_seed(cfg.seed), percent_on=m.percent_on), benchmark)
    check_density_cap(cfg, sparse_layers(model), getattr(benchmark, "n_experiences", 1))  # 1: a saved model's
    sparse = SparseSynapsesPlugin.from_config(m, seed=cfg.seed, input_shape=benchmark.input_shape)
    extra = [KWinnersPlugin()] if m.percent_on < 1 else []  # boost decay and activity statistics
    return SparseSynapses(**template_kwargs(cfg, benchmark, [*plugins, *extra], model=model, **given), sparse=sparse)
