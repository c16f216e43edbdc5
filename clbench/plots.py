"""`clbench plot`: accuracy-matrix heat maps, accuracy curves, method-specific figures.

Plot kinds live in a registry; strategies add their own (e.g. `topology`)
with `register_plot`, naming the `extras` key a record must carry for it.
matplotlib (Agg backend) is imported only when a figure is drawn.
"""

from __future__ import annotations

import importlib
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from clbench.errors import UsageError
from clbench.registry import STRATEGIES, suggest

FORMATS = ("png", "pdf", "svg")


@dataclass(frozen=True)
class PlotKind:
    name: str
    summary: str
    draw: Callable | str  # (frame, out_dir, fmt) -> list[Path], or "module:function" imported when drawing
    needs_extra: str | None = None  # records must carry extras[needs_extra]

    def drawer(self) -> Callable:
        if callable(self.draw):
            return self.draw
        module, _, function = self.draw.partition(":")
        return getattr(importlib.import_module(module), function)


PLOT_KINDS: dict[str, PlotKind] = {}


def register_plot(name: str, summary: str, needs_extra: str | None = None, draw: str | None = None):
    """Register plot kind `name`: `draw` as "module:function" (a method's figure, imported when drawn),
    or, without `draw`, as a decorator of `draw(frame, out_dir, fmt) -> [paths]`."""

    def decorate(function: Callable | str) -> Callable | str:
        if name in PLOT_KINDS:
            raise ValueError(f"plot kind {name!r} registered twice: {PLOT_KINDS[name].draw} and {function}")
        PLOT_KINDS[name] = PlotKind(name, summary, function, needs_extra)
        return function

    return decorate(draw) if draw is not None else decorate


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


MAX_NAME = 120  # characters of a figure's file name before its extension


def slug(*parts: str) -> str:
    """A file name from `parts`; past MAX_NAME characters, cut and made unique by a hash of the whole."""
    text = "_".join(re.sub(r"[^A-Za-z0-9_.=-]+", "-", p).strip("-") for p in parts if p and p != "default")
    if len(text) <= MAX_NAME:
        return text
    import hashlib

    return f"{text[:MAX_NAME - 9]}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def ticks(count: int, most: int = 20) -> list[int]:
    """Positions of at most `most` tick labels over `count` cells: every one, or evenly spaced first to last."""
    if count <= most:
        return list(range(count))
    return sorted({round(k * (count - 1) / (most - 1)) for k in range(most)})


def save(fig, out_dir: Path, name: str, fmt: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.{fmt}"
    fig.savefig(path, dpi=150, bbox_inches="tight")
    pyplot().close(fig)
    return path


@register_plot("matrix", "heat map of the (mean) accuracy matrix, values in the cells")
def plot_matrices(frame, out_dir: Path, fmt: str) -> list[Path]:
    import numpy as np

    from clbench.tables import matrix_title, mean_matrices

    plt = pyplot()
    paths = []
    for m in mean_matrices(frame):
        n_rows, n_cols = len(m["mean"]), len(m["mean"][0])
        cell_w, cell_h = min(1.1, 14 / n_cols), min(0.6, 9 / n_rows)  # long streams: the same size as 13 x 15
        fig, ax = plt.subplots(figsize=(cell_w * n_cols + 2.5, cell_h * n_rows + 1.8))
        image = ax.imshow(np.array(m["mean"], dtype=float), cmap="viridis", vmin=0, vmax=1, aspect="auto")
        for i, row in enumerate(m["mean"] if n_cols <= 20 else []):  # values written in the cells up to 20 columns
            for j, value in enumerate(row):
                if value is None:  # not evaluated by the run's plan: left blank
                    continue
                text = f"{value:.2f}" + (f"\n±{m['std'][i][j]:.2f}" if m["n"] > 1 and n_cols <= 10 else "")
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="black" if value > 0.6 else "white")
        columns, rows = ticks(n_cols), ticks(n_rows)
        ax.set_xticks(columns, [f"{j}" for j in columns])
        ax.set_yticks(rows, [m["rows"][i] for i in rows])
        ax.set_xlabel("test experience j")
        ax.set_ylabel("after training on experience i")
        ax.set_title("\n".join(textwrap.wrap(matrix_title(m), 110)), fontsize=10)
        fig.colorbar(image, ax=ax, label="accuracy")
        paths.append(save(fig, out_dir, "matrix_" + slug(m["benchmark"], m["scenario"], m["strategy"], m["variant"]),
                          fmt))
    return paths


register_plot("curves", "accuracy on each test experience across training, and average accuracy",
              draw="clbench.curves:plot_curves")


def plot(frame, records: list[dict], kind: str, out_dir: Path, fmt: str) -> list[Path]:
    """Draw `kind` for the runs in `frame`; a clear UsageError if they do not support it."""
    STRATEGIES.names()  # loads the strategies, which register their own plot kinds (torch-free)
    if kind not in PLOT_KINDS:
        valid = sorted(PLOT_KINDS)
        raise UsageError(f"unknown plot kind '{kind}'.{suggest(kind, valid)} Valid kinds: {', '.join(valid)}.")
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format '{fmt}'; valid: {', '.join(FORMATS)}.")
    needs = PLOT_KINDS[kind].needs_extra
    if needs and not any(needs in (r.get("extras") or {}) for r in records):
        strategies = sorted({r["strategy"] for r in records})
        raise UsageError(f"plot kind '{kind}' needs runs that record '{needs}' in their extras; "
                         f"these runs ({', '.join(strategies)}) do not.")
    return PLOT_KINDS[kind].drawer()(frame, out_dir, fmt)
