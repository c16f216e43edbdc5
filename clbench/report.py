"""`clbench report`: tables of mean ± std over seeds from result records.

Reads records only (never torch, never writes into the folders it reads).
Every function below is plain: records -> DataFrame -> aggregated DataFrame
-> text; the CLI just strings them together.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from clbench.errors import ClbenchError, UsageError
from clbench.metrics import METRICS
from clbench.records import SCHEMA

if TYPE_CHECKING:
    import pandas as pd

GROUP_KEYS = ("benchmark", "scenario", "strategy", "variant")
COLUMNS = METRICS + ("train_s", "parameters", "density")
LOWER_IS_BETTER = {"forgetting", "train_s", "parameters", "density"}
REQUIRED = {"schema", "run_id", "benchmark", "strategy", "scenario", "seed", "config", "accuracy_matrix", "metrics"}


@dataclass
class Loaded:
    records: list[dict]
    warnings: list[str]


def read_record(path: Path) -> tuple[dict | None, str | None]:
    """(record, None) or (None, why it was skipped)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"skipped {path}: unreadable ({exc.__class__.__name__})"
    except json.JSONDecodeError as exc:
        return None, f"skipped {path}: corrupt JSON ({exc.msg} at line {exc.lineno})"
    if not isinstance(data, dict) or not REQUIRED <= set(data):
        return None, f"skipped {path}: not a clbench run record"
    schema = data["schema"]
    if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
        return None, f"skipped {path}: bad schema {schema!r} (expected a whole number >= 1)"
    if schema > SCHEMA:
        return None, (f"skipped {path}: written by a newer clbench (schema {schema}, "
                      f"this one reads up to {SCHEMA}); upgrade clbench")
    why = _bad_field(data)
    if why:
        return None, f"skipped {path}: {why}"
    return data, None


FIELD_TYPES = {"run_id": str, "benchmark": str, "strategy": str, "scenario": str, "config": dict, "metrics": dict,
               "accuracy_matrix": list}


def _bad_field(data: dict) -> str | None:
    """Why a record's fields cannot be reported (a wrong type, a malformed matrix), or None."""
    for key, kind in FIELD_TYPES.items():
        if not isinstance(data[key], kind):
            return f"field '{key}' is a {type(data[key]).__name__}, expected a {kind.__name__}"
    if isinstance(data["seed"], bool) or not isinstance(data["seed"], int):
        return f"field 'seed' is {data['seed']!r}, expected a whole number"
    for key in ("initial_accuracy", "timing", "model", "extras"):
        if data.get(key) is not None and not isinstance(data[key], (list if key == "initial_accuracy" else dict)):
            return f"field '{key}' is a {type(data[key]).__name__}"
    rows = data["accuracy_matrix"]
    if not all(isinstance(row, list) and all(v is None or isinstance(v, (int, float)) for v in row) for row in rows):
        return "field 'accuracy_matrix' is not a list of rows of numbers"
    if not all(v is None or isinstance(v, (int, float)) for v in data["metrics"].values()):
        return "field 'metrics' holds values that are not numbers"
    return None


def deduplicated(records: list[dict]) -> tuple[list[dict], list[str]]:
    """One record per (benchmark, strategy, run id): the same run reached twice (overlapping folders, a copied
    file) counts once; a warning says so when the copies differ."""
    kept: dict[tuple, dict] = {}
    warnings = []
    for record in records:
        key = (record["benchmark"], record["strategy"], record["run_id"])
        first = kept.setdefault(key, record)
        if first is not record and _comparable(first) != _comparable(record):
            warnings.append(f"run {'/'.join(key)} was found twice with different contents; counted once (the "
                            f"first read, created {first.get('created', '?')})")
    return list(kept.values()), warnings


def _comparable(record: dict) -> str:
    return json.dumps({k: v for k, v in record.items() if k not in ("created", "timing", "env")}, sort_keys=True)


def load_records(folders: Sequence[str | Path]) -> Loaded:
    """Every record below `folders` (files or folders), with one warning per skipped file."""
    records, warnings = [], []
    for folder in folders:
        folder = Path(folder)
        if not folder.exists():
            raise UsageError(f"'{folder}' does not exist; give a folder of run records (default results/).")
        paths = [folder] if folder.is_file() else sorted(folder.rglob("*.json"))
        for path in paths:
            record, why = read_record(path)
            if record is None:
                warnings.append(why)
            else:
                records.append(record)
    records, duplicates = deduplicated(records)
    return Loaded(records, warnings + duplicates)


def _variant(config: dict, varying: Iterable[str]) -> str:
    """The varying keys a record sets; a key it lacks (added later, left at its default) is not named."""
    return ", ".join(f"{k}={_short(config[k])}" for k in sorted(varying) if k in config) or "default"


def _short(value: Any) -> str:
    if isinstance(value, list):
        return "-".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def records_frame(records: list[dict]) -> "pd.DataFrame":
    """One row per record; `variant` names the config keys that differ from the strategy's registered defaults
    on that benchmark and scenario ("default" when none does)."""
    import pandas as pd

    rows = []
    for r in records:
        cfg = {k: v for k, v in r["config"].items() if k not in ("benchmark", "strategy", "scenario", "seed")}
        rows.append({
            "benchmark": r["benchmark"], "scenario": r["scenario"], "strategy": r["strategy"], "seed": r["seed"],
            "status": r.get("status", "ok"), "run_id": r["run_id"], "config": cfg,
            **{m: r["metrics"].get(m) for m in METRICS},
            "train_s": (r.get("timing") or {}).get("train_total"),
            "parameters": (r.get("model") or {}).get("parameters"),
            "density": (r.get("model") or {}).get("density"),
            "matrix": r["accuracy_matrix"], "initial": r.get("initial_accuracy"), "extras": r.get("extras") or {},
            "evaluation": r.get("evaluation") or {},
        })
    frame = pd.DataFrame(rows, columns=["benchmark", "scenario", "strategy", "seed", "status", "run_id", "config",
                                        *COLUMNS, "matrix", "initial", "extras", "evaluation"])
    frame["variant"] = ""
    for (benchmark, scenario, strategy), idx in frame.groupby(["benchmark", "scenario", "strategy"]).groups.items():
        configs = [frame.at[i, "config"] for i in idx]
        defaults = registered_defaults(benchmark, strategy, scenario)
        if defaults is None:  # a benchmark or strategy this clbench does not know: name what differs among them
            keys = set().union(*configs)
            varying = {k for k in keys if len({json.dumps(c.get(k), sort_keys=True) for c in configs}) > 1}
            for i in idx:
                frame.at[i, "variant"] = _variant(frame.at[i, "config"], varying)
        else:
            for i in idx:
                frame.at[i, "variant"] = _variant_from_defaults(frame.at[i, "config"], *defaults)
    return frame


@functools.lru_cache(maxsize=None)
def registered_defaults(benchmark: str, strategy: str, scenario: str) -> tuple[dict, dict] | None:
    """(today's resolved default of every key for this benchmark, strategy and scenario, the value a record
    that lacks a later-added key holds: the key's field default), or None for names this clbench does not know."""
    from clbench.config import resolve

    try:
        cfg = resolve(benchmark, strategy, scenario=scenario)
    except ClbenchError:
        return None
    later = {f.name: f.default for part in (cfg.train, cfg.bench, cfg.method) for f in dataclasses.fields(part)
             if f.metadata.get("since", 1) > 1}
    return _plain(cfg.keys()), _plain(later)


def _plain(values: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def _variant_from_defaults(config: dict, defaults: dict, later: dict) -> str:
    """The keys whose value differs from today's registered defaults (a later-added key a record lacks holds its
    field default): the same label whatever other records are loaded."""
    values = {**later, **config}
    named = [k for k in sorted(values) if k not in defaults or json.dumps(values[k]) != json.dumps(defaults[k])]
    return ", ".join(f"{k}={_short(values[k])}" for k in named) or "default"


Names = "str | Sequence[str] | None"


def select(frame: "pd.DataFrame", benchmark: Names = None, strategy: Names = None,
           scenario: Names = None) -> "pd.DataFrame":
    """Rows matching the given names: each filter a name, a comma list (`naive,ewc`) or several of either
    (None or empty = any)."""
    for column, value in (("benchmark", benchmark), ("strategy", strategy), ("scenario", scenario)):
        wanted = name_set(value)
        if wanted:
            frame = frame[frame[column].isin(wanted)]
    return frame


def name_set(value: "str | Sequence[str] | None") -> set[str]:
    """`naive,ewc` or ("naive", "ewc,si") -> {"naive", "ewc", "si"}; `-` read as `_`."""
    parts = [value] if isinstance(value, str) else list(value or ())
    return {name.strip().replace("-", "_") for part in parts for name in part.split(",") if name.strip()}


def aggregate(frame: "pd.DataFrame") -> "pd.DataFrame":
    """Mean and sample std over seeds per group, with the number of seeds `n`."""
    import pandas as pd

    ok = frame[frame["status"] == "ok"]
    rows = []
    for key, group in ok.groupby(list(GROUP_KEYS), sort=True):
        row = dict(zip(GROUP_KEYS, key))
        row["n"] = len(group)
        for column in COLUMNS:
            values = pd.to_numeric(group[column], errors="coerce").dropna()
            row[f"{column}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{column}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        rows.append(row)
    columns = [*GROUP_KEYS, "n", *(f"{c}_{s}" for c in COLUMNS for s in ("mean", "std"))]
    return pd.DataFrame(rows, columns=columns)


def sort_table(table: "pd.DataFrame", by: str | None) -> "pd.DataFrame":
    if not by:
        return table
    if by not in COLUMNS:
        raise UsageError(f"unknown --sort '{by}'; valid: {', '.join(COLUMNS)}.")
    return table.sort_values(f"{by}_mean", ascending=by in LOWER_IS_BETTER, na_position="last", kind="stable")


def check_columns(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """`--columns`: (key columns, metric columns) in the order given."""
    from clbench.tables import KEY_COLUMNS

    valid = [*KEY_COLUMNS, *COLUMNS]
    unknown = [n for n in names if n not in valid]
    if unknown or not names:
        raise UsageError(f"unknown --columns '{unknown[0] if unknown else ''}'; valid: {', '.join(valid)}.")
    return [n for n in names if n in KEY_COLUMNS], [n for n in names if n in COLUMNS]


def check_metrics(names: Sequence[str] | None) -> list[str]:
    if not names:
        return list(METRICS) + ["train_s", "parameters", "density"]
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        raise UsageError(f"unknown --metric '{unknown[0]}'; valid: {', '.join(COLUMNS)}.")
    return list(names)
