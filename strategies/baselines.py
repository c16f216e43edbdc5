"""Baseline strategies: Avalanche's own templates with clbench's models and data.

Each builder takes the resolved run config, the built benchmark and the
harness plugins, and returns a ready Avalanche `SupervisedTemplate`.
"""

from __future__ import annotations

from avalanche.training import EWC, Cumulative, JointTraining, LwF, Naive, Replay
from avalanche.training.plugins import SynapticIntelligencePlugin

from clbench.benchmarks.store import Benchmark
from clbench.config import RunConfig
from clbench.strategies.common import template_kwargs


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


def build_lwf(cfg: RunConfig, benchmark: Benchmark, plugins: list) -> LwF:
    m = cfg.method
    return LwF(**template_kwargs(cfg, benchmark, plugins), alpha=m.lwf_alpha, temperature=m.temperature)


def build_replay(cfg: RunConfig, benchmark: Benchmark, plugins: list) -> Replay:
    return Replay(**template_kwargs(cfg, benchmark, plugins), mem_size=cfg.method.mem_size)
