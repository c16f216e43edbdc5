"""Avalanche's own loggers and metrics for clbench runs: `--logger csv|tensorboard|wandb`, and the methods'
statistics as an Avalanche `PluginMetric`.

With loggers, a run's evaluator is an `EvaluationPlugin` with Avalanche's accuracy and loss metrics, the
method statistics and the loggers, and the runner evaluates through `strategy.eval` (so every logger sees
Avalanche's usual evaluation callbacks) and reads its accuracy row back from the evaluator.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue

LOGGERS = ("csv", "tensorboard", "wandb")
ACCURACY_PREFIX = "Top1_Acc_Exp/eval_phase/test_stream/"


def scalar_items(values: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, float]]:
    """(`a/b`, number) for the numbers in `values` and in its dicts (lists, strings and None are left out)."""
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from scalar_items(value, f"{name}/")
        elif isinstance(value, (bool, int, float)) and math.isfinite(value):
            yield name, float(value)


class MethodStatistics(PluginMetric[dict]):
    """The method plugins' statistics (`record_extras`: density, active fraction, duty-cycle entropy, trace
    norms, eta, paths, ...) as Avalanche metric values after every training experience.

    Each number is one metric, named `Method/<statistic>[/<layer>]/train_phase/train_stream`, plotted
    against the training iteration: any Avalanche logger records it.
    """

    def __init__(self):
        super().__init__()
        self._last: dict[str, float] = {}

    def result(self) -> dict[str, float]:
        return dict(self._last)

    def reset(self) -> None:
        self._last = {}

    def after_training_exp(self, strategy) -> list[MetricValue]:
        self._last = {}
        for plugin in strategy.plugins:
            if callable(getattr(plugin, "record_extras", None)):
                self._last.update(scalar_items(plugin.record_extras(strategy)))
        step = strategy.clock.train_iterations
        return [MetricValue(self, f"Method/{name}/train_phase/train_stream", value, step)
                for name, value in self._last.items()]

    def __str__(self) -> str:
        return "Method"


def make_loggers(names: Sequence[str], folder: Path, run_name: str, config: dict | None = None) -> list:
    """Avalanche loggers, one per name in `names`, writing below `folder` (W&B offline unless configured)."""
    loggers = []
    for name in dict.fromkeys(names):
        if name == "csv":
            from avalanche.logging import CSVLogger

            loggers.append(CSVLogger(log_folder=str(folder / "csv")))
        elif name == "tensorboard":
            from avalanche.logging import TensorboardLogger

            loggers.append(TensorboardLogger(tb_log_dir=folder / "tensorboard"))
        elif name == "wandb":
            if not os.environ.get("WANDB_API_KEY") and "WANDB_MODE" not in os.environ:
                os.environ["WANDB_MODE"] = "offline"  # no account configured: keep the run on disk
            (folder / "wandb").mkdir(parents=True, exist_ok=True)
            # an explicit W&B id: Avalanche 0.6 would draw one with `wandb.util.generate_id`, gone from wandb
            run_id = f"{run_name}-{time.strftime('%Y%m%d%H%M%S')}"
            loggers.append(wandb_logger()(project_name="clbench", run_name=run_name, dir=str(folder / "wandb"),
                                       config=config, save_code=False, params={"id": run_id}))
        else:
            raise ValueError(f"unknown logger '{name}'; valid: {', '.join(LOGGERS)}")
    return loggers


def wandb_logger() -> type:
    """Avalanche's `WandBLogger`, logging numbers only: Avalanche 0.6 checks every value against
    `wandb.viz.CustomChart`, which current wandb releases no longer have (clbench's metrics are numbers)."""
    from avalanche.evaluation.metric_results import AlternativeValues
    from avalanche.logging import WandBLogger

    class NumbersWandBLogger(WandBLogger):
        def log_single_metric(self, name, value, x_plot):
            self.step = x_plot
            if isinstance(value, AlternativeValues):
                value = value.best_supported_value(float, int)
            if isinstance(value, (float, int)):
                self.wandb.log({name: value}, step=self.step)

    return NumbersWandBLogger


def logging_evaluator(loggers: list):
    """An `EvaluationPlugin` with Avalanche's accuracy and loss (epoch, experience), the method statistics and
    `loggers`."""
    from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
    from avalanche.training.plugins import EvaluationPlugin

    return EvaluationPlugin(accuracy_metrics(epoch=True, experience=True), loss_metrics(epoch=True, experience=True),
                            MethodStatistics(), loggers=loggers)


def default_evaluator_with_statistics():
    """Avalanche's default evaluator (accuracy and loss per epoch, experience and stream, printed by its
    interactive logger) with `MethodStatistics` added: what `make_strategy` and the plastic learners' templates
    use when no evaluator is given."""
    from avalanche.training.plugins import EvaluationPlugin
    from avalanche.training.plugins.evaluation import default_evaluator

    base = default_evaluator()
    return EvaluationPlugin(*base.metrics, MethodStatistics(), loggers=list(base.loggers))


def close_loggers(evaluator) -> list[str]:
    """Close the evaluator's loggers (files flushed, the W&B run finished); what went wrong, one line each."""
    problems = []
    for logger in getattr(evaluator, "loggers", []):
        close = getattr(logger, "close", None) or getattr(getattr(logger, "wandb", None), "finish", None)
        try:
            if callable(close):
                close()
        except Exception as exc:  # noqa: BLE001 - the run's record is written already
            problems.append(f"{type(logger).__name__} did not close: {exc}")
    return problems


def evaluated_row(strategy, test_stream: Sequence, columns: Sequence[int] | None = None) -> list[float | None]:
    """Accuracy on each test experience in `columns` (default: all), evaluated by `strategy.eval` and read
    from its evaluator's experience accuracies; None in the other places."""
    wanted = list(range(len(test_stream))) if columns is None else sorted(columns)
    row: list[float | None] = [None] * len(test_stream)
    if not wanted:
        return row
    metrics = strategy.eval([test_stream[j] for j in wanted])
    for j in wanted:
        ends = f"Exp{j:03d}"
        found = [v for k, v in metrics.items() if k.startswith(ACCURACY_PREFIX) and k.endswith(ends)]
        if len(found) != 1:
            raise RuntimeError(f"the evaluator gave {len(found)} accuracies for test experience {j}, not one: give "
                               "it accuracy_metrics(experience=True) (clbench.loggers.logging_evaluator does)")
        row[j] = float(found[0])
    return row
