"""`run(config) -> RunRecord`: seed, build, evaluate, train, evaluate, record.

A pure function of its config: the record it returns depends only on the
config (and the machine), so a sweep can ship configs to any worker.
"""

from __future__ import annotations

import dataclasses
import os
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from clbench import checkpoint, evalplan
from clbench.benchmarks.store import Benchmark, ExperienceData
from clbench.checkpoint import Checkpointing
from clbench.config import RunConfig, resolve
from clbench.errors import UsageError
from clbench.harness import (
    Diverged,
    DivergenceGuardPlugin,
    IterationBudgetPlugin,
    ProgressPlugin,
    ResetOptimizerPlugin,
    SilentEvaluator,
    TensorBatchesPlugin,
    output_masks,
)
from clbench.metrics import summarize
from clbench.progress import Reporter
from clbench.records import RunRecord, environment
from clbench.registry import BENCHMARKS, STRATEGIES

# Avalanche 0.6 warnings that say nothing about the run (no loggers attached on purpose,
# its own deprecated internals); anything else is shown.
QUIET_WARNINGS = (
    "No loggers specified",
    "Call to deprecated function",
    "__array_wrap__ must accept context",
)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str) -> str:
    """`auto` -> cuda when available, else cpu; `cuda` without a GPU is a usage error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here; use --device cpu or auto.")
    return device


def model_forward(model: nn.Module, x: torch.Tensor, task_label: int, multi_head: bool) -> torch.Tensor:
    if multi_head:
        return model(x, torch.full((len(x),), task_label, dtype=torch.long, device=x.device))
    return model(x)


@torch.inference_mode()
def evaluate(model: nn.Module, benchmark: Benchmark, exp: ExperienceData, batch_size: int,
             device: str = "cpu") -> float:
    """Accuracy on one test experience: large batches gathered from the shared image store (a permuted
    experience permutes each batch, no copy of its test set), inference mode, no per-sample Python."""
    was_training = model.training
    model.eval()
    correct = 0
    multi_head = benchmark.n_heads > 1
    for x, y in exp.batches(benchmark.store, batch_size):
        logits = model_forward(model, x.to(device), exp.task_label, multi_head)
        correct += int((logits.argmax(1).cpu() == y).sum())
    model.train(was_training)
    return correct / max(len(exp), 1)


def evaluate_all(model: nn.Module, benchmark: Benchmark, batch_size: int, device: str,
                 columns: Sequence[int] | None = None) -> list[float | None]:
    """Accuracy on every test experience, or on `columns` only (None in the other places)."""
    wanted = set(range(len(benchmark.test)) if columns is None else columns)
    return [evaluate(model, benchmark, exp, batch_size, device) if j in wanted else None
            for j, exp in enumerate(benchmark.test)]


def evaluate_row(strategy, benchmark: Benchmark, cfg: RunConfig, columns: Sequence[int] | None = None
                 ) -> list[float | None]:
    """One row of the accuracy matrix: clbench's own evaluation, or, when the strategy has a real Avalanche
    evaluator (loggers), `strategy.eval` with its metrics read back (the same accuracies, logged)."""
    if isinstance(strategy.evaluator, SilentEvaluator):
        return evaluate_all(strategy.model, benchmark, cfg.train.eval_batch_size, cfg.device, columns)
    from clbench.loggers import evaluated_row

    return evaluated_row(strategy, benchmark.test_stream, columns)


def model_stats(model: nn.Module) -> dict[str, Any]:
    params = sum(p.numel() for p in model.parameters())
    nonzero = sum(int(torch.count_nonzero(p)) for p in model.parameters())
    return {"parameters": params, "nonzero_parameters": nonzero, "density": nonzero / max(params, 1)}


def build(cfg: RunConfig, reporter: Reporter | None = None, plugins: Sequence = (), evaluator=None):
    """The benchmark and the Avalanche strategy with clbench's harness plugins (then `plugins`, if any), and
    `evaluator` (an Avalanche `EvaluationPlugin`) in place of the silent one."""
    benchmark = BENCHMARKS.get(cfg.benchmark).load_builder()(cfg)
    harness: list = [TensorBatchesPlugin(benchmark.store, cfg.seed), DivergenceGuardPlugin()]
    if cfg.train.reset_optimizer:
        harness.append(ResetOptimizerPlugin())
    if reporter is not None:
        harness.append(ProgressPlugin(reporter.update))
    masks = output_masks(cfg.train, cfg.scenario, benchmark.n_heads, benchmark.head_size)
    given = {"evaluator": evaluator} if evaluator is not None else {}  # builders without `**given` still build
    strategy = STRATEGIES.get(cfg.strategy).load_builder()(cfg, benchmark, [*harness, *masks, *plugins], **given)
    for mask in masks:
        mask.attach(strategy.model)
    if cfg.train.iterations:
        strategy.plugins.append(IterationBudgetPlugin(cfg.train.iterations))  # last: sees the final loader
    return benchmark, strategy


@dataclass
class Progress:
    """A run so far: the rows of its accuracy matrix and what was measured with them."""

    initial: list[float]
    matrix: list[list[float]] = field(default_factory=list)
    train_s: list[float] = field(default_factory=list)
    eval_s: list[float] = field(default_factory=list)
    checkpoint_s: list[float] = field(default_factory=list)  # seconds to write each checkpoint
    extras: dict[str, Any] = field(default_factory=dict)
    setup_s: float = 0.0
    initial_eval_s: float = 0.0
    resumed_at: int | None = None  # the experience a resumed run started from

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "resumed_at"}


def run(cfg: RunConfig, reporter: Reporter | None = None, checkpointing: Checkpointing | None = None,
        plugins: Sequence = (), model_path: Path | None = None, evaluator=None) -> RunRecord:
    """Train `cfg.strategy` on `cfg.benchmark` and return its accuracy matrix and metrics.

    With `checkpointing`, a checkpoint is written after experiences (its policy says which) and a run
    whose checkpoint exists continues after the experience it holds. `plugins` are added to the
    strategy after clbench's own (probes). With `model_path`, a run that ends `ok` keeps its trained
    model there (`clbench.checkpoint.load_model` reads it). With `evaluator` (an `EvaluationPlugin`, e.g.
    `clbench.loggers.logging_evaluator`), the matrix is evaluated through it, so its metrics and loggers
    see every evaluation.
    """
    with warnings.catch_warnings(record=True) as caught:  # Avalanche resets filters, so collect instead
        warnings.simplefilter("default")
        record = _run(cfg, reporter or Reporter(quiet=True), checkpointing, plugins, model_path, evaluator)
    for w in caught:
        if not any(quiet in str(w.message) for quiet in QUIET_WARNINGS):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return record


def evaluation_summary(cfg: RunConfig, benchmark: Benchmark, progress: Progress) -> dict[str, Any]:
    """The record's `evaluation`: the plan a run used and its test-set passes (the initial row's included)."""
    plan = evalplan.resolved(cfg.train.eval_plan, len(benchmark.test))
    passes = len(progress.initial) + sum(cell is not None for row in progress.matrix for cell in row)
    summary: dict[str, Any] = {"plan": plan, "test_passes": passes}
    if plan != "full":
        summary["forgetting"] = "max over the evaluated rows"
    return summary


def _run(cfg: RunConfig, reporter: Reporter, checkpointing: Checkpointing | None, plugins: Sequence,
         model_path: Path | None, evaluator=None) -> RunRecord:
    start = time.perf_counter()
    cfg = dataclasses.replace(cfg, device=resolve_device(cfg.device))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.set_flush_denormal(False)  # torch's default, whatever an earlier run in this process left
    env = environment(cfg.device)  # taken now: the code that runs is the code checked out at the start
    seed_everything(cfg.seed)
    benchmark, strategy = build(cfg, None if reporter.quiet else reporter, plugins, evaluator)
    joint = bool(STRATEGIES.get(cfg.strategy).extra.get("joint"))
    stream = list(benchmark.train_stream)
    steps = [stream] if joint else stream  # joint training: one step over every experience
    if checkpointing is not None and checkpointing.policy == "none":
        checkpointing = None
    progress = resume(strategy, cfg, stream, checkpointing) or first_progress(strategy, benchmark, cfg, joint, start)
    reporter.start_run(f"{cfg.benchmark}/{cfg.strategy}/{cfg.scenario}/seed {cfg.seed}")
    error = train_and_evaluate(strategy, benchmark, steps, cfg, reporter, progress, checkpointing)
    timing = {"setup": progress.setup_s, "initial_eval": progress.initial_eval_s, "train": progress.train_s,
              "eval": progress.eval_s, "train_total": sum(progress.train_s), "eval_total": sum(progress.eval_s),
              "total": time.perf_counter() - start}
    if progress.checkpoint_s:
        timing["checkpoint"] = progress.checkpoint_s
    if progress.resumed_at is not None:
        timing["resumed_at_experience"] = progress.resumed_at
    status = "ok" if error is None else error.pop("status")
    if model_path is not None and error is None:
        shape = checkpoint.ModelShape(benchmark.input_shape, benchmark.n_heads, benchmark.head_size)
        checkpoint.save_model(model_path, strategy.model, cfg, shape)
    matrix = progress.matrix
    return RunRecord(
        run_id=cfg.run_id(), benchmark=cfg.benchmark, strategy=cfg.strategy, scenario=cfg.scenario,
        seed=cfg.seed, config=cfg.to_dict(), experiences=benchmark.describe(), initial_accuracy=progress.initial,
        accuracy_matrix=matrix, metrics=summarize(matrix, progress.initial) if error is None else summarize([]),
        timing=timing, model=model_stats(strategy.model), status=status, error=error,
        extras=progress.extras, env=env, evaluation=evaluation_summary(cfg, benchmark, progress),
    )


def resume(strategy, cfg: RunConfig, stream: list, checkpointing: Checkpointing | None) -> Progress | None:
    """The progress of the run's checkpoint, with the strategy and the RNGs put back where it was; None
    when there is nothing to resume."""
    if checkpointing is None or not checkpointing.resume or not checkpointing.path.exists():
        return None
    saved = checkpoint.load(checkpointing.path, cfg.run_id(), cfg.to_dict())
    checkpoint.restore(strategy, saved, stream, checkpointing.path)
    return Progress(**saved["progress"], resumed_at=len(saved["progress"]["matrix"]))


def first_progress(strategy, benchmark: Benchmark, cfg: RunConfig, joint: bool, started: float) -> Progress:
    """A new run's progress: the untrained model's accuracy on every test experience (row `initial`)."""
    setup = time.perf_counter() - started
    t0 = time.perf_counter()
    initial = evaluate_row(strategy, benchmark, cfg)
    return Progress(initial, extras={"joint": True} if joint else {}, setup_s=setup,
                    initial_eval_s=time.perf_counter() - t0)


def collect_extras(strategy, extras: dict[str, list]) -> None:
    """Append each plugin's `record_extras(strategy)` values (one entry per experience)."""
    for plugin in strategy.plugins:
        if callable(getattr(plugin, "record_extras", None)):
            for key, value in plugin.record_extras(strategy).items():
                extras.setdefault(key, []).append(value)


def collect_ablations(strategy, benchmark: Benchmark, cfg: RunConfig, extras: dict[str, list],
                      columns: Sequence[int] | None = None) -> None:
    """Append an accuracy row per ablation a plugin names (`evaluation_ablations(strategy)`: extras key ->
    context manager factory): the test experiences of the row (`columns`) evaluated inside the context."""
    for plugin in strategy.plugins:
        if callable(getattr(plugin, "evaluation_ablations", None)):
            for key, context in plugin.evaluation_ablations(strategy).items():
                with context():
                    row = evaluate_all(strategy.model, benchmark, cfg.train.eval_batch_size, cfg.device, columns)
                extras.setdefault(key, []).append(row)


def train_and_evaluate(strategy, benchmark: Benchmark, steps: list, cfg: RunConfig, reporter: Reporter,
                       progress: Progress, checkpointing: Checkpointing | None = None) -> dict | None:
    """Train on each step not yet in `progress`, evaluate on every test experience after it, collect
    plugins' extras, and write the checkpoint when its policy says so.

    Returns None, or a dict with `status` ("diverged" or "failed") and where it happened.
    """
    plan = evalplan.resolved(cfg.train.eval_plan, len(benchmark.test))
    for i in range(len(progress.matrix), len(steps)):
        reporter.start_experience(i, len(steps))
        t0 = time.perf_counter()
        try:
            strategy.train(steps[i])
        except Diverged as exc:
            return {"status": "diverged", **exc.where}
        except Exception as exc:  # recorded; the CLI reports it in one line
            if os.environ.get("CLBENCH_DEBUG"):
                raise
            return {"status": "failed", "experience": i, "type": type(exc).__name__, "message": str(exc)}
        progress.train_s.append(time.perf_counter() - t0)
        collect_extras(strategy, progress.extras)
        t0 = time.perf_counter()
        columns = evalplan.columns(plan, i, len(steps), len(benchmark.test))
        progress.matrix.append(evaluate_row(strategy, benchmark, cfg, columns))
        collect_ablations(strategy, benchmark, cfg, progress.extras, columns)
        progress.eval_s.append(time.perf_counter() - t0)
        if checkpointing is not None and checkpointing.writes_after(i, len(steps)):
            t0 = time.perf_counter()
            checkpoint.save(checkpointing.path, checkpoint.capture(strategy, progress.state_dict(), cfg))
            progress.checkpoint_s.append(time.perf_counter() - t0)
        reporter.end_experience(i, len(steps), progress.matrix[-1], progress.train_s[-1])
    return None


def evaluate_model_file(path: Path, benchmark: str | None = None, scenario: str | None = None,
                        data_root: str | None = None, download: bool = True, device: str = "auto") -> dict:
    """Accuracy of a saved model on every test experience of `benchmark` (default: the one it was trained on,
    with the same benchmark keys, so the same test experiences)."""
    state = checkpoint.read_model_file(path)
    device = resolve_device(device)
    cfg, model = checkpoint.build_saved_model(state, device=device, data_root=data_root, download=download)
    target = cfg
    if (benchmark or cfg.benchmark) != cfg.benchmark or (scenario or cfg.scenario) != cfg.scenario:
        train = {f.name: getattr(cfg.train, f.name) for f in dataclasses.fields(cfg.train)}
        target = resolve(benchmark or cfg.benchmark, cfg.strategy, scenario=scenario or cfg.scenario, seed=cfg.seed,
                         file_values=train, device=device, data_root=data_root, download=download)
    data = BENCHMARKS.get(target.benchmark).load_builder()(target)
    built_for = checkpoint.ModelShape(tuple(state["shape"]["input_shape"]), state["shape"]["n_heads"],
                                      state["shape"]["head_size"])
    given = checkpoint.ModelShape(data.input_shape, data.n_heads, data.head_size)
    if given != built_for:
        raise UsageError(f"model '{path}' was built for inputs {built_for.input_shape} and {built_for.n_heads} "
                         f"head(s) of {built_for.head_size}; {target.benchmark} ({target.scenario}) gives "
                         f"{given.input_shape} and {given.n_heads} of {given.head_size}: evaluate it on a "
                         "benchmark and scenario of that shape.")
    accuracy = evaluate_all(model.to(device), data, target.train.eval_batch_size, device)
    return {"model": str(path), "run_id": state["run_id"], "strategy": cfg.strategy, "benchmark": target.benchmark,
            "scenario": target.scenario, "accuracy": accuracy, "mean": sum(accuracy) / len(accuracy)}
