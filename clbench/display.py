"""Plain-text rendering of matrices, metrics and registry entries (torch-free)."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Sequence

from clbench.config import TrainConfig, type_name_of
from clbench.metrics import METRICS
from clbench.registry import Entry

METRIC_LABELS = {"acc": "ACC", "bwt": "BWT", "fwt": "FWT", "forgetting": "forgetting",
                 "learning_acc": "learning acc"}


MAX_PRINTED_COLUMNS = 20  # a wider matrix is summarised in the terminal; the record holds it whole


def format_matrix(matrix: Sequence[Sequence[float | None]], initial: Sequence[float] | None = None,
                  row_labels: Sequence[str] | None = None) -> str:
    """Rows: initial, then after training on experience i; columns: test experience j (blank: not evaluated)."""
    width = len(matrix[0]) if matrix else len(initial or [])
    if width > MAX_PRINTED_COLUMNS:
        return (f"({len(matrix)} x {width} cells, in the record: clbench report --matrix, or clbench plot "
                "--kind matrix)")
    labels = list(row_labels) if row_labels else [f"after {i}" for i in range(len(matrix))]
    lines = ["          " + "".join(f"{'e' + str(j):>8}" for j in range(width))]
    if initial is not None:
        lines.append(f"{'initial':<10}" + "".join(f"{v:8.4f}" for v in initial))
    for label, row in zip(labels, matrix):
        lines.append(f"{label:<10}" + "".join(" " * 8 if v is None else f"{v:8.4f}" for v in row))
    return "\n".join(lines)


def format_metrics(metrics: dict[str, float | None]) -> str:
    """One line: the metrics a run has (transfer metrics signed)."""
    parts = [f"{METRIC_LABELS[m]} {metrics[m]:{'+' if m in ('bwt', 'fwt') else ''}.4f}"
             for m in METRICS if metrics.get(m) is not None]
    return "  ".join(parts) if parts else "(no metrics: the run did not complete)"


def _short(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, dict, list)):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict) and all(isinstance(v, (int, float)) for v in value.values()):
        return ", ".join(f"{k} {v:.4g}" for k, v in value.items())
    if isinstance(value, list) and len(value) <= 16 and all(isinstance(v, (int, float)) for v in value):
        return "[" + " ".join(f"{v:.3g}" for v in value) + "]"
    return None


def format_extras(extras: dict[str, Any]) -> list[str]:
    """One line per method-specific statistic after the last experience (compact values only)."""
    lines = []
    for key, values in extras.items():
        if isinstance(values, list) and values and (text := _short(values[-1])) is not None:
            lines.append(f"{key}: {text}")
    return lines


def describe_keys(config_cls: type, defaults: dict[str, Any] | None = None) -> list[str]:
    """One line per key: name, type, default (after protocol overrides), help."""
    hints = typing.get_type_hints(config_cls)
    lines = []
    for f in dataclasses.fields(config_cls):
        default = (defaults or {}).get(f.name, f.default)
        if isinstance(default, tuple):
            default = ",".join(map(str, default))
        choices = f.metadata.get("choices")
        kind = "|".join(choices) if choices else type_name_of(hints[f.name])
        lines.append(f"  {f.name:<18} {str(default):<12} {kind:<28} {f.metadata.get('help', '')}")
    return lines


def describe_entry(entry: Entry, kind: str) -> str:
    """`clbench list KIND NAME`: summary, scenarios, protocol and keys with defaults."""
    scenarios = ", ".join(entry.scenarios)
    if kind == "benchmark":
        scenarios += f" (default {entry.default_scenario})"
    lines = [f"{entry.name}: {entry.summary}", f"  scenarios: {scenarios}"]
    if entry.reference:
        lines.append(f"  protocol: {entry.reference}")
    if kind == "benchmark":
        lines.append("training keys (defaults of this benchmark's protocol):")
        lines += describe_keys(TrainConfig, dict(entry.protocol))
    if dataclasses.fields(entry.config):
        lines.append(f"{kind} keys:")
        lines += describe_keys(entry.config)
    for where, values in entry.tuned.items():
        lines.append(f"  tuned for {where}: " + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                                       for k, v in values.items()))
    return "\n".join(lines)
