"""Baseline strategies: Avalanche's own templates with clbench's models and data.

Each builder takes the resolved run config, the built benchmark and the
harness plugins, and returns a ready Avalanche `SupervisedTemplate`.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin
from avalanche.models import MultiTaskModule
from avalanche.training import EWC, Cumulative, JointTraining, LearningWithoutForgetting, Naive, Replay
from avalanche.training.plugins import SynapticIntelligencePlugin

from clbench.config import RunConfig
from clbench.errors import UsageError
from clbench.strategies.base import template_kwargs

if TYPE_CHECKING:
    from clbench.benchmarks.store import Benchmark


def build_naive(cfg: RunConfig, benchmark: Benchmark, plugins: list) -> Naive:
    return Naive(**template_kwargs(cfg, benchmark, plugins))


def build_cumulative(cfg: RunConfig, benchmark: Benchmark, plugins: list) -> Cumulative:
    return Cumulative(**template_kwargs(cfg, benchmark, plugins))


def build_joint(cfg: RunConfig, benchmark: Benchmark, plugins: list) -> JointTraining:
    return JointTraining(**template_kwargs(cfg, benchmark, plugins))


def build_ewc(cfg: RunConfig, benchmark: Benchmark, plugins: list) -> EWC:
    m = cfg.method
    decay = m.ewc_decay if m.ewc_mode == "online" else None
    return EWC(**template_kwargs(cfg, benchmark, plugins), ewc_lambda=m.ewc_lambda, mode=m.ewc_mode,
               decay_factor=decay)


class CopyingSIPlugin(SynapticIntelligencePlugin):
    """Avalanche's synaptic-intelligence plugin, with its weight snapshots copied.

    Avalanche 0.6 snapshots weights as `param.detach().cpu().flatten()`, which on
    the CPU is a view of the live parameter: the path integral and the penalty
    then stay exactly zero and SI trains like naive. Here the two snapshots
    (start of the experience, start of each iteration) are real copies; the rest
    of the algorithm is Avalanche's.
    """

    def _snapshot(self, model, target) -> None:
        for name, param in self.allowed_parameters(model, self.excluded_parameters):
            target[name].data = param.detach().flatten().to("cpu", copy=True)

    def before_training_exp(self, strategy, **kwargs):
        super().before_training_exp(strategy, **kwargs)
        self._snapshot(strategy.model, self.ewc_data[0])

    def before_training_iteration(self, strategy, **kwargs):
        self._snapshot(strategy.model, self.syn_data["old_theta"])


def build_si(cfg: RunConfig, benchmark: Benchmark, plugins: list) -> Naive:
    m = cfg.method
    si = CopyingSIPlugin(si_lambda=m.si_lambda, eps=m.si_eps)
    return Naive(**template_kwargs(cfg, benchmark, [*plugins, si]))


def seen_units_distillation(out: torch.Tensor, prev_out: torch.Tensor, previous_units: list[int],
                            current_units: list[int], temperature: float) -> torch.Tensor:
    """KL divergence from the previous model's softmax over `previous_units`, padded with zeros for
    `current_units`, to the current model's softmax over both (van de Ven & Tolias's `loss_fn_kd`).

    The zeros make the term push the current units down on the data that trains them up, where a
    distillation over the previous units alone leaves the balance between old and new untouched.
    """
    new_units = [u for u in current_units if u not in set(previous_units)]
    log_p = F.log_softmax(out[:, previous_units + new_units] / temperature, dim=1)
    q = F.softmax(prev_out[:, previous_units] / temperature, dim=1)
    return F.kl_div(log_p[:, :len(previous_units)], q, reduction="batchmean")


class LwFVariantsPlugin(SupervisedPlugin):
    """Learning without forgetting: Avalanche's distillation, with van de Ven & Tolias's variant as two options.

    `distill_units="seen"` (one shared head): the distillation covers the current experience's
    units too (`seen_units_distillation`); "previous" is Avalanche's (`LearningWithoutForgetting`).
    `weighting="1/t"`: after t experiences the loss is (1/t)·CE + (1 − 1/t)·T²·KD; "alpha" is
    Avalanche's CE + alpha·KD. At the defaults this is Avalanche's `LwFPlugin` exactly.
    """

    def __init__(self, alpha: float = 1.0, temperature: float = 2.0, distill_units: str = "previous",
                 weighting: str = "alpha"):
        super().__init__()
        self.alpha, self.temperature = alpha, temperature
        self.distill_units, self.weighting = distill_units, weighting
        self.lwf = LearningWithoutForgetting(alpha, temperature)  # Avalanche's, for distill_units="previous"
        self.previous_model: torch.nn.Module | None = None  # for distill_units="seen"
        self.previous_units: list[int] = []
        self.current_units: list[int] = []
        self.trained = 0  # experiences trained so far

    def seen_units(self, strategy) -> bool:
        """Whether this model takes the seen-units distillation (one shared head only)."""
        return self.distill_units == "seen" and not isinstance(strategy.model, MultiTaskModule)

    def before_training_exp(self, strategy, **kwargs):
        self.current_units = sorted(int(c) for c in strategy.experience.classes_in_this_experience)

    def weighted_distillation(self, strategy) -> torch.Tensor | float:
        """alpha x the distillation term (alpha is 1 under weighting 1/t)."""
        if not self.seen_units(strategy):
            return self.lwf(strategy.mb_x, strategy.mb_output, strategy.model)
        if self.previous_model is None:
            return 0
        with torch.no_grad():
            prev_out = self.previous_model(strategy.mb_x)
        return self.alpha * seen_units_distillation(strategy.mb_output, prev_out, self.previous_units,
                                                    self.current_units, self.temperature)

    def before_backward(self, strategy, **kwargs):
        if self.weighting == "alpha":
            strategy.loss += self.weighted_distillation(strategy)
        else:
            t = self.trained + 1  # experiences trained so far, this one included
            strategy.loss = (strategy.loss / t
                             + (1 - 1 / t) * self.temperature ** 2 * self.weighted_distillation(strategy))

    def after_training_exp(self, strategy, **kwargs):
        self.trained += 1
        if self.seen_units(strategy):
            self.previous_model = copy.deepcopy(strategy.model)
            self.previous_units = sorted(set(self.previous_units) | set(self.current_units))
        else:
            self.lwf.post_adapt(strategy, strategy.experience)


def build_lwf(cfg: RunConfig, benchmark: Benchmark, plugins: list) -> Naive:
    m = cfg.method
    if m.lwf_weighting == "1/t" and m.lwf_alpha != 1.0:
        raise UsageError(f"lwf_alpha={m.lwf_alpha} has no effect with lwf_weighting=1/t; "
                         "drop lwf_alpha or use lwf_weighting=alpha")
    lwf = LwFVariantsPlugin(m.lwf_alpha, m.temperature, distill_units=m.distill_units, weighting=m.lwf_weighting)
    return Naive(**template_kwargs(cfg, benchmark, [*plugins, lwf]))


def build_replay(cfg: RunConfig, benchmark: Benchmark, plugins: list) -> Replay:
    return Replay(**template_kwargs(cfg, benchmark, plugins), mem_size=cfg.method.mem_size)
