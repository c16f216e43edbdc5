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
from avalanche.models.utils import avalanche_forward
from avalanche.training import Cumulative, JointTraining, Naive
from avalanche.training.plugins import EWCPlugin, SynapticIntelligencePlugin

from clbench.config import RunConfig
from clbench.errors import UsageError
from clbench.strategies.base import template_kwargs
from clbench.strategies.baselines.ewc import MergedEWCPlugin
from clbench.strategies.baselines.replay import ResumableReplayPlugin

if TYPE_CHECKING:
    from clbench.benchmarks.store import Benchmark


def build_naive(cfg: RunConfig, benchmark: Benchmark, plugins: list, **given) -> Naive:
    return Naive(**template_kwargs(cfg, benchmark, plugins, **given))


def build_cumulative(cfg: RunConfig, benchmark: Benchmark, plugins: list, **given) -> Cumulative:
    return Cumulative(**template_kwargs(cfg, benchmark, plugins, **given))


def build_joint(cfg: RunConfig, benchmark: Benchmark, plugins: list, **given) -> JointTraining:
    return JointTraining(**template_kwargs(cfg, benchmark, plugins, **given))


def build_ewc(cfg: RunConfig, benchmark: Benchmark, plugins: list, **given) -> Naive:
    """`separate` mode: Naive with the merged penalty (`MergedEWCPlugin`, constant cost per iteration);
    `online` mode: Avalanche's EWC plugin as it is."""
    m = cfg.method
    if m.ewc_mode == "separate":
        ewc = MergedEWCPlugin(m.ewc_lambda)
    else:
        ewc = EWCPlugin(m.ewc_lambda, mode="online", decay_factor=m.ewc_decay)
    return Naive(**template_kwargs(cfg, benchmark, [*plugins, ewc], **given))


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


class FastSIPlugin(CopyingSIPlugin):
    """`CopyingSIPlugin` with its per-iteration work in place: the parameter list is found once per experience
    (not by pattern matching at every step), the snapshot is copied into its buffer, the path integral is
    accumulated with one fused multiply-add, and the surrogate loss's exact gradient λ ω ⊙ (θ − θ*) is added
    after the backward pass instead of through autograd. The per-experience update (importances, anchors) is
    Avalanche's, on the same data structures."""

    def before_training_exp(self, strategy, **kwargs):
        super().before_training_exp(strategy, **kwargs)
        self._params = self.allowed_parameters(strategy.model, self.excluded_parameters)

    @torch.no_grad()
    def before_training_iteration(self, strategy, **kwargs):
        old = self.syn_data["old_theta"]
        for name, param in self._params:
            if old[name].data.shape != (param.numel(),):
                old[name].data = torch.empty(param.numel(), dtype=param.dtype, device=param.device)
            old[name].data.copy_(param.detach().view(-1))

    def before_backward(self, strategy, **kwargs):
        """Nothing: the surrogate loss's gradient is added after the backward pass."""

    @torch.no_grad()
    def after_backward(self, strategy, **kwargs):
        if strategy.clock.train_exp_counter == 0:  # no importance yet: the surrogate loss is 0
            return
        lam = self.si_lambda[min(strategy.clock.train_exp_counter, len(self.si_lambda) - 1)]
        anchor, importance = self.ewc_data
        value = torch.zeros((), dtype=torch.float64)
        for name, param in self._params:
            shift = param.detach().view(-1) - anchor[name].data
            pull = importance[name].data * shift
            if param.grad is None:
                param.grad = (lam * pull).view_as(param)
            else:
                param.grad.view(-1).add_(pull, alpha=lam)
            value += torch.dot(pull, shift).double()
        strategy.loss = strategy.loss + (lam / 2 * value).to(strategy.loss.dtype)

    @torch.no_grad()
    def after_training_iteration(self, strategy, **kwargs):
        old, trajectory = self.syn_data["old_theta"], self.syn_data["trajectory"]
        for name, param in self._params:
            if param.grad is None:
                continue
            step = torch.sub(param.detach().view(-1), old[name].data, out=old[name].data)  # θ_new − θ_old
            trajectory[name].data.addcmul_(param.grad.view(-1), step)


def build_si(cfg: RunConfig, benchmark: Benchmark, plugins: list, **given) -> Naive:
    m = cfg.method
    si = FastSIPlugin(si_lambda=m.si_lambda, eps=m.si_eps)
    return Naive(**template_kwargs(cfg, benchmark, [*plugins, si], **given))


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


def previous_units_distillation(out: torch.Tensor, prev_out: torch.Tensor, units: list[int],
                                temperature: float) -> torch.Tensor:
    """KL divergence from the previous model's softmax over `units` to the current model's (Avalanche's LwF)."""
    log_p = torch.log_softmax(out[:, units] / temperature, dim=1)
    q = torch.softmax(prev_out[:, units] / temperature, dim=1)
    return F.kl_div(log_p, q, reduction="batchmean")


class LwFVariantsPlugin(SupervisedPlugin):
    """Learning without forgetting: Avalanche's distillation, with van de Ven & Tolias's variant as two options.

    The previous model's outputs are distilled over the units of the classes of earlier experiences,
    per task head (`distill_units="previous"`, Avalanche's `LwFPlugin` exactly at the defaults), or
    over those and the current experience's units (`"seen"`, one shared head; `seen_units_distillation`).
    `weighting="1/t"`: after t experiences the loss is (1/t)·CE + (1 − 1/t)·T²·KD; "alpha" is
    Avalanche's CE + alpha·KD.
    """

    def __init__(self, alpha: float = 1.0, temperature: float = 2.0, distill_units: str = "previous",
                 weighting: str = "alpha"):
        super().__init__()
        self.alpha, self.temperature = alpha, temperature
        self.distill_units, self.weighting = distill_units, weighting
        self.previous_model: torch.nn.Module | None = None
        self.units_by_task: dict[int, set[int]] = {}  # classes of the earlier experiences, per task label
        self.current_units: list[int] = []
        self.trained = 0  # experiences trained so far
        self._pending_model: dict | None = None  # a checkpoint's previous model, loaded when training resumes

    def before_training_exp(self, strategy, **kwargs):
        if self._pending_model is not None:
            self.previous_model = copy.deepcopy(strategy.model)
            self.previous_model.load_state_dict(self._pending_model)
            self._pending_model = None
        self.current_units = sorted(int(c) for c in strategy.experience.classes_in_this_experience)

    def distillation(self, strategy) -> torch.Tensor | float:
        """The distillation term, summed over the heads of a multi-task model."""
        if self.previous_model is None:
            return 0
        x = strategy.mb_x
        if isinstance(self.previous_model, MultiTaskModule):  # every head of earlier tasks
            with torch.no_grad():
                previous = avalanche_forward(self.previous_model, x, None)
            current = avalanche_forward(strategy.model, x, None)
        else:
            with torch.no_grad():
                previous = {0: self.previous_model(x)}
            current = {0: strategy.mb_output}
            if self.distill_units == "seen":
                return seen_units_distillation(current[0], previous[0], sorted(self.units_by_task.get(0, ())),
                                               self.current_units, self.temperature)
        loss = 0
        for task, prev_out in previous.items():
            if task in self.units_by_task:
                loss += previous_units_distillation(current[task], prev_out, list(self.units_by_task[task]),
                                                    self.temperature)
        return loss

    def before_backward(self, strategy, **kwargs):
        if self.weighting == "alpha":
            strategy.loss += self.alpha * self.distillation(strategy)
        else:
            t = self.trained + 1  # experiences trained so far, this one included
            strategy.loss = strategy.loss / t + (1 - 1 / t) * self.temperature ** 2 * self.distillation(strategy)

    def after_training_exp(self, strategy, **kwargs):
        self.trained += 1
        self.previous_model = copy.deepcopy(strategy.model)
        dataset = strategy.experience.dataset
        for task in dataset.targets_task_labels.uniques:
            classes = set(dataset.task_set[task].targets.uniques)
            self.units_by_task[task] = self.units_by_task.get(task, set()).union(classes)

    def state_dict(self) -> dict:
        return {"trained": self.trained, "units_by_task": {t: sorted(u) for t, u in self.units_by_task.items()},
                "previous_model": None if self.previous_model is None else self.previous_model.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.trained, self._pending_model = state["trained"], state["previous_model"]
        self.units_by_task = {task: set(units) for task, units in state["units_by_task"].items()}


def build_lwf(cfg: RunConfig, benchmark: Benchmark, plugins: list, **given) -> Naive:
    m = cfg.method
    if m.lwf_weighting == "1/t" and m.lwf_alpha != 1.0:
        raise UsageError(f"lwf_alpha={m.lwf_alpha} has no effect with lwf_weighting=1/t; "
                         "drop lwf_alpha or use lwf_weighting=alpha")
    lwf = LwFVariantsPlugin(m.lwf_alpha, m.temperature, distill_units=m.distill_units, weighting=m.lwf_weighting)
    return Naive(**template_kwargs(cfg, benchmark, [*plugins, lwf], **given))


def build_replay(cfg: RunConfig, benchmark: Benchmark, plugins: list, **given) -> Naive:
    """Avalanche's `Replay` (its plugin after the others), with a memory a checkpoint can hold."""
    return Naive(**template_kwargs(cfg, benchmark, [*plugins, ResumableReplayPlugin(cfg.method.mem_size)], **given))
