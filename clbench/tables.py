"""Rendering of aggregated report tables: terminal, markdown, CSV, LaTeX and JSON."""

from __future__ import annotations

import io
import json
import math
import textwrap
from typing import TYPE_CHECKING, Sequence

from clbench.report import GROUP_KEYS

if TYPE_CHECKING:
    import pandas as pd

HEADERS = {"acc": "ACC", "bwt": "BWT", "fwt": "FWT", "forgetting": "forgetting", "learning_acc": "learning acc",
           "train_s": "train s", "parameters": "params", "density": "density"}


def _number(column: str, value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if column == "parameters":
        return f"{value:,.0f}"
    if column == "train_s":
        return f"{value:.1f}"
    if column == "density":
        return f"{value:.3f}"
    return f"{value:.4f}"


def cell(column: str, mean: float, std: float, pm: str = " ± ") -> str:
    text = _number(column, mean)
    if text and column != "parameters" and not (isinstance(std, float) and math.isnan(std)):
        text += pm + _number(column, std)
    return text or "—"


KEY_COLUMNS = ("benchmark", "scenario", "strategy", "variant", "n")
VARIANT_WIDTH = 24  # on a terminal, longer variant labels become v1, v2, ... with a legend below the table


def text_rows(table: "pd.DataFrame", metrics: Sequence[str], pm: str = " ± ",
              keys: Sequence[str] = KEY_COLUMNS) -> tuple[list[str], list[list[str]]]:
    header = list(keys) + [HEADERS[m] for m in metrics]
    rows = []
    for _, r in table.iterrows():
        rows.append([str(r[k]) for k in keys] + [cell(m, r[f"{m}_mean"], r[f"{m}_std"], pm) for m in metrics])
    return header, rows


def _aligned(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(x) for x in column) for column in zip(header, *rows)]
    left = [_text_column(name) for name in header]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if is_left else c.rjust(w) for c, w, is_left in zip(cells, widths, left))

    return "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


def abbreviated_variants(header: list[str], rows: list[list[str]]) -> tuple[list[list[str]], list[str]]:
    """Rows with variant labels longer than VARIANT_WIDTH replaced by v1, v2, ... (in order of appearance),
    and the legend that maps them back."""
    if "variant" not in header:
        return rows, []
    i = header.index("variant")
    long = [label for label in dict.fromkeys(r[i] for r in rows) if len(label) > VARIANT_WIDTH]
    short = {label: f"v{n}" for n, label in enumerate(long, 1)}
    if not short:
        return rows, []
    rows = [r[:i] + [short.get(r[i], r[i])] + r[i + 1:] for r in rows]
    return rows, ["variants:"] + [f"  {name}  {label}" for label, name in short.items()]


def terminal_table(header: list[str], rows: list[list[str]], width: int | None = None) -> str:
    """An aligned table for a terminal: long variant labels abbreviated (legend below), and the metric
    columns wrapped into several blocks, each repeating the key columns, when wider than `width`."""
    rows, legend = abbreviated_variants(header, rows)
    n_keys = sum(name in KEY_COLUMNS for name in header)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    blocks = []
    for columns in column_blocks(widths, width, n_keys):
        keep = [*range(n_keys), *columns]
        blocks.append(_aligned([header[i] for i in keep], [[r[i] for i in keep] for r in rows]))
    if width:
        legend = [wrapped for line in legend for wrapped in textwrap.wrap(line, width, subsequent_indent=" " * 6)]
    return "\n\n".join(blocks) + ("\n\n" + "\n".join(legend) if legend else "")


def column_blocks(widths: list[int], width: int | None, n_keys: int = 1) -> list[list[int]]:
    """The columns after the first `n_keys` (repeated in every block) of each block of a table at most `width`
    characters wide (two spaces between columns): one block when it fits or `width` is None, else as many
    columns per block as fit, and at least one."""
    columns = list(range(n_keys, len(widths)))
    if not width or sum(widths) + 2 * (len(widths) - 1) <= width:
        return [columns]
    keys = sum(widths[:n_keys]) + 2 * (n_keys - 1)
    blocks: list[list[int]] = [[]]
    used = keys
    for j in columns:
        if blocks[-1] and used + 2 + widths[j] > width:
            blocks.append([])
            used = keys
        blocks[-1].append(j)
        used += 2 + widths[j]
    return blocks


def _text_column(name: str) -> bool:
    """Key columns other than `n` hold text (left-aligned); the others numbers."""
    return name in KEY_COLUMNS and name != "n"


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    rule = "|" + "|".join("---" if _text_column(name) else "---:" for name in header) + "|"
    lines = ["| " + " | ".join(header) + " |", rule]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(char, char) for char in text)


def _latex_number(text: str) -> str:
    if not text:
        return ""
    return "--" if text == "—" else "$" + text.replace(" ± ", r" \pm ") + "$"


def _latex(header: list[str], rows: list[list[str]]) -> str:
    spec = "".join("l" if _text_column(name) else "r" for name in header)
    n_keys = sum(name in KEY_COLUMNS for name in header)
    body = [" & ".join(latex_escape(c) for c in header) + r" \\", r"\hline"]
    for r in rows:
        cells = [latex_escape(c) for c in r[:n_keys]] + [_latex_number(c) for c in r[n_keys:]]
        body.append(" & ".join(cells) + r" \\")
    return "\n".join([rf"\begin{{tabular}}{{{spec}}}", r"\hline", *body, r"\hline", r"\end{tabular}"])


def render(table: "pd.DataFrame", metrics: Sequence[str], fmt: str, keys: Sequence[str] = KEY_COLUMNS,
           width: int | None = None) -> str:
    """The aggregated table in `fmt` (table, markdown, csv, latex, json), with the key columns `keys`;
    a `table` is fitted to `width` characters (None: no limit)."""
    columns = [*keys, *(f"{m}_{s}" for m in metrics for s in ("mean", "std"))]
    if fmt == "csv":
        buffer = io.StringIO()
        table[columns].to_csv(buffer, index=False)
        return buffer.getvalue().rstrip("\n")
    if fmt == "json":
        rows = table[columns].to_dict(orient="records")
        clean = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in rows]
        return json.dumps(clean, indent=1)
    header, rows = text_rows(table, metrics, keys=keys)
    if fmt == "table":
        return terminal_table(header, rows, width)
    return {"markdown": _markdown, "latex": _latex}[fmt](header, rows)


# ------------------------------------------------------------------ matrices
def mean_matrices(frame: "pd.DataFrame") -> list[dict]:
    """Per group: mean and std (over seeds) of the accuracy matrix and of the initial row."""
    import numpy as np

    out = []
    ok = frame[frame["status"] == "ok"]
    for key, group in ok.groupby(list(GROUP_KEYS), sort=True):
        shapes = {np.shape(m) for m in group["matrix"]}
        if len(shapes) != 1:
            continue
        matrices = np.array(list(group["matrix"]), dtype=float)
        initial = np.array(list(group["initial"]), dtype=float)
        ddof = 1 if len(group) > 1 else 0
        plans = sorted({(r or {}).get("plan", "full") for r in group["evaluation"]})
        out.append({**dict(zip(GROUP_KEYS, key)), "n": len(group), "plan": "/".join(plans),
                    "rows": ["initial"] + ([f"after {i}" for i in range(matrices.shape[1])]
                                           if matrices.shape[1] == matrices.shape[2] else ["joint"]),
                    "mean": _cells(np.vstack([initial.mean(0), matrices.mean(0)])),
                    "std": _cells(np.vstack([initial.std(0, ddof=ddof), matrices.std(0, ddof=ddof)]))})
    return out


def matrix_title(m: dict) -> str:
    """'benchmark / scenario / strategy [variant] (n=3, eval plan ...)' of a `mean_matrices` entry."""
    variant = "" if m["variant"] == "default" else f" [{m['variant']}]"
    plan = "" if m.get("plan", "full") == "full" else f", eval plan {m['plan']}: blank cells not evaluated"
    return f"{m['benchmark']} / {m['scenario']} / {m['strategy']}{variant} (n={m['n']}{plan})"


def mixed_shape_groups(frame: "pd.DataFrame") -> list[str]:
    """Groups (benchmark/scenario/strategy/variant) whose finished runs have matrices of different shapes: no
    mean matrix can be drawn for them."""
    import numpy as np

    ok = frame[frame["status"] == "ok"]
    return ["/".join(map(str, key)) + f" (shapes {', '.join(sorted({str(np.shape(m)) for m in group['matrix']}))})"
            for key, group in ok.groupby(list(GROUP_KEYS), sort=True)
            if len({np.shape(m) for m in group["matrix"]}) > 1]


def _cells(array) -> list[list[float | None]]:
    """Rows of an array as lists, None where a cell was not evaluated (NaN)."""
    return [[None if math.isnan(v) else v for v in row] for row in array.tolist()]


def _cell(mean: float | None, std: float | None, n: int) -> str:
    """A mean (± std) cell; blank where the evaluation plan skipped the cell."""
    if mean is None:
        return ""
    return f"{mean:.4f}" + (f" ± {std:.4f}" if n > 1 else "")


def render_matrices(matrices: list[dict], fmt: str, width: int | None = None) -> str:
    """Mean (± std) matrices: rows = initial, after training experience i; columns = test experience j. As a
    text table wider than `width` characters, the columns come in blocks that fit, one under the other."""
    if fmt == "json":
        return json.dumps(matrices, indent=1)
    if fmt == "csv":
        lines = ["benchmark,scenario,strategy,variant,n,row,test_experience,mean,std"]
        for m in matrices:
            for label, means, stds in zip(m["rows"], m["mean"], m["std"]):
                for j, (mean, std) in enumerate(zip(means, stds)):
                    keys = ",".join(f'"{m[k]}"' if "," in str(m[k]) else str(m[k]) for k in GROUP_KEYS)
                    if mean is not None:
                        lines.append(f"{keys},{m['n']},{label},{j},{mean!r},{std!r}")
        return "\n".join(lines)
    blocks = []
    for m in matrices:
        header = [""] + [f"e{j}" for j in range(len(m["mean"][0]))]
        rows = [[label] + [_cell(mean, std, m["n"]) for mean, std in zip(ms, ss)]
                for label, ms, ss in zip(m["rows"], m["mean"], m["std"])]
        if fmt == "markdown":
            body = "\n".join(["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
                             + ["| " + " | ".join(r) + " |" for r in rows])
            blocks.append(f"**{matrix_title(m)}**\n\n{body}")
        elif fmt == "latex":
            spec = "l" + "r" * (len(header) - 1)
            body = [" & ".join(header) + r" \\", r"\hline"]
            body += [" & ".join([r[0]] + [_latex_number(c) for c in r[1:]]) + r" \\" for r in rows]
            blocks.append("\n".join([f"% {matrix_title(m)}", rf"\begin{{tabular}}{{{spec}}}", r"\hline", *body,
                                     r"\hline", r"\end{tabular}"]))
        else:
            widths = [max(len(x) for x in col) for col in zip(header, *rows)]
            parts = []
            for columns in column_blocks(widths, width):
                keep = [0, *columns]
                shown = [header] + [r for r in rows if any(r[k] for k in columns)]  # rows blank here: left out
                parts.append("\n".join("  ".join(r[k].rjust(widths[k]) for k in keep).rstrip() for r in shown))
            title = "\n".join(textwrap.wrap(matrix_title(m), width)) if width else matrix_title(m)
            blocks.append(title + "\n" + "\n\n".join(parts))
    return "\n\n".join(blocks)
