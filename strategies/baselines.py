"""Baseline strategies: Avalanche's own templates with clbench's models and data.

Each builder takes the resolved run config, the built benchmark and the
harness plugins, and returns a ready Avalanche `SupervisedTemplate`.
"""

from __future__ import annotations

from avalanche.training import (
    EWC,
    LwF,
    Cumulative,
    JointTraining,
    Naive,
    Replay,
    SynapticIntelligence,
)

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


def build_si(cfg: RunConfig, benchmark: Benchmark, plugins: list) -> SynapticIntelligence:
    m = cfg.method
    return SynapticIntelligence(**template_kwargs(cfg, benchmark, plugins), si_lambda=m.si_lambda, eps=m.si_eps)


def build_lwf(cfg: RunConfig, benchmark: Benchmark, plugins: list) -> LwF:
    m = cfg.method
    return LwF(**template_kwargs(cfg, benchmark, plugins), alpha=m.lwf_alpha, temperature=m.temperature)


def build_replay(cfg: RunConfig, benchmark: Benchmark, plugins: list) -> Replay:
    return Replay(**template_kwargs(cfg, benchmark, plugins), mem_size=cfg.method.mem_size)
