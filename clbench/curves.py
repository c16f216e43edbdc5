"""`clbench plot --kind curves`: accuracy on each test experience across training, and the average on the
experiences seen so far, one figure per benchmark and scenario.

Every series has its own colour, line style and marker; a legend sits right of each row of panels,
its labels wrapped so it never outgrows the figure. Over `MAX_SERIES` series, the panels split into
one row per strategy family (the baselines, then each plastic learner).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from clbench.plots import pyplot, save, slug
from clbench.registry import STRATEGIES

MAX_SERIES = 8  # more series than this in one figure: one row of panels per strategy family
MAX_PANELS = 10  # more test experiences than this: panels for this many of them, evenly spaced
LINE_STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
LABEL_WIDTH = 30  # legend labels are wrapped at this many characters


def series_style(index: int) -> dict:
    """Colour, line style and marker of the `index`-th series: distinct for the first 280 series."""
    return {"color": f"C{index % 10}", "linestyle": LINE_STYLES[index // 10 % len(LINE_STYLES)],
            "marker": MARKERS[index // 40 % len(MARKERS)]}


def family(strategy: str) -> str:
    """The method package a strategy comes from: `baselines`, or the plastic learner's name."""
    if strategy not in STRATEGIES:
        return "other"
    return STRATEGIES.get(strategy).module.rsplit(".", 1)[-1]


def facets(members: list[dict], max_series: int = MAX_SERIES) -> list[tuple[str, list[dict]]]:
    """(title, series) per row of panels: one row, or one per strategy family, baselines first."""
    if len(members) <= max_series:
        return [("", members)]
    by_family: dict[str, list[dict]] = {}
    for m in members:
        by_family.setdefault(family(m["strategy"]), []).append(m)
    order = sorted(by_family, key=lambda name: (name != "baselines", name))
    return [(name, by_family[name]) for name in order]


def panel_columns(n_tests: int, max_panels: int = MAX_PANELS) -> list[int]:
    """The test experiences that get a panel: all of them, or `max_panels` evenly spaced from the first to the
    last (a 100-task stream shows experiences 0, 11, 22, ..., 99)."""
    if n_tests <= max_panels:
        return list(range(n_tests))
    return sorted({round(k * (n_tests - 1) / (max_panels - 1)) for k in range(max_panels)})


def label(m: dict) -> str:
    text = m["strategy"] + ("" if m["variant"] == "default" else f" [{m['variant']}]")
    return "\n".join(textwrap.wrap(text, LABEL_WIDTH)) + f" (n={m['n']})"


def legend_height(series: list[dict]) -> float:
    """Inches a row's legend needs (6.5-point labels, wrapped): its row of panels is made at least this tall."""
    lines = sum(label(m).count("\n") + 1 for m in series)
    return lines * 6.5 * 1.25 / 72 + 0.12 * len(series) + 0.3


def draw_series(axes, m: dict, style: dict) -> None:
    """One run group on a row of panels: the accuracy on each panel's test experience, then the average on
    seen."""
    import numpy as np

    mean, std = np.array(m["mean"][1:], dtype=float), np.array(m["std"][1:], dtype=float)
    n_tests = mean.shape[1]
    shown = panel_columns(n_tests)
    if len(mean) != n_tests:  # joint training: one row, drawn as level lines
        for k, j in enumerate(shown):
            axes[k].axhline(mean[0, j], lw=1.2, label=label(m) if k == 0 else None, **_no_marker(style))
        axes[-1].axhline(mean[0].mean(), lw=1.2, **_no_marker(style))
        return
    steps = np.arange(n_tests)
    every = max(1, n_tests // 10)  # at most about ten markers a line
    for k, j in enumerate(shown):  # over the rows the run's evaluation plan evaluated
        ok = np.isfinite(mean[:, j])
        axes[k].plot(steps[ok], mean[ok, j], ms=3, lw=1.2, markevery=every, label=label(m) if k == 0 else None,
                     **style)
        axes[k].fill_between(steps[ok], mean[ok, j] - std[ok, j], mean[ok, j] + std[ok, j], alpha=0.12,
                             color=style["color"], lw=0)
    seen = np.array([mean[i, : i + 1].mean() for i in steps])  # NaN where a row was not evaluated whole
    ok = np.isfinite(seen)
    axes[-1].plot(steps[ok], seen[ok], ms=3, lw=1.2, markevery=every, **style)


def _no_marker(style: dict) -> dict:
    return {k: v for k, v in style.items() if k != "marker"}


def curves_figure(benchmark: str, scenario: str, members: list[dict], max_series: int = MAX_SERIES):
    """The figure for one benchmark, scenario and stream length (`members`: `tables.mean_matrices` entries)."""
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    n_tests = len(members[0]["mean"][0])
    shown = panel_columns(n_tests)
    rows = facets(members, max_series)
    height = sum(max(2.4, legend_height(series)) for _, series in rows) + 0.8
    fig, axes = plt.subplots(len(rows), len(shown) + 1, figsize=(max(1.9 * (len(shown) + 1), 6) + 2.6, height),
                             sharex=True, sharey=True, squeeze=False, layout="constrained")
    for r, (title, series) in enumerate(rows):
        for k, m in enumerate(series):
            draw_series(axes[r], m, series_style(k))
        axes[r, 0].set_ylabel(f"{title}\naccuracy" if title else "accuracy", fontsize=8)
        axes[r, -1].legend(loc="center left", bbox_to_anchor=(1.04, 0.5), frameon=False, fontsize=6.5,
                           handles=axes[r, 0].get_legend_handles_labels()[0])
    for index, ax in enumerate(axes.flat):
        column = index % (len(shown) + 1)
        ax.set_ylim(-0.02, 1.02)
        if n_tests <= 12:
            ax.set_xticks(range(n_tests))
        else:
            ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if index < len(shown) + 1:  # column titles on the top row only
            ax.set_title(f"exp {shown[column]}" if column < len(shown) else "avg on seen", fontsize=8)
    fig.supxlabel("after training on experience i", fontsize=8)
    fig.suptitle(f"{benchmark} / {scenario}" + (f" ({n_tests} experiences)" if len(shown) < n_tests else ""),
                 fontsize=10)
    return fig


def plot_curves(frame, out_dir: Path, fmt: str) -> list[Path]:
    """One figure per benchmark and scenario, and per stream length where runs of several lengths share them
    (`curves_permuted_mnist_domain_T100`)."""
    from clbench.tables import mean_matrices

    groups: dict[tuple, list[dict]] = {}
    for m in mean_matrices(frame):
        groups.setdefault((m["benchmark"], m["scenario"], len(m["mean"][0])), []).append(m)
    lengths: dict[tuple, int] = {}
    for benchmark, scenario, _ in groups:
        lengths[benchmark, scenario] = lengths.get((benchmark, scenario), 0) + 1
    paths = []
    for (benchmark, scenario, n_tests), members in groups.items():
        name = "curves_" + slug(benchmark, scenario) + (f"_T{n_tests}" if lengths[benchmark, scenario] > 1 else "")
        paths.append(save(curves_figure(benchmark, scenario, members), out_dir, name, fmt))
    return paths
