"""Typed configuration: defaults < benchmark protocol < --config file < CLI.

Every tunable key is a field of a frozen dataclass: `TrainConfig` (shared by
all strategies), the benchmark's config and the strategy's config. The field
names are the keys of `--set key=value` and of `--config FILE.toml`; values
are parsed and checked against the field's type and bounds before anything
is loaded or built.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from clbench.errors import UsageError
from clbench.registry import BENCHMARKS, STRATEGIES, Entry, suggest

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def param(default: Any, help: str, *, choices: tuple | None = None, ge=None, gt=None, le=None, lt=None,
          since: int = 1):
    """A config field with its help text and bounds (checked by `coerce`).

    `since` > 1 marks a key added after the first release: at its default it is
    left out of a record's config and run id, so records made before the key
    existed keep their ids and read the same as later ones.
    """
    meta = {"help": help, "choices": choices, "ge": ge, "gt": gt, "le": le, "lt": lt, "since": since}
    if isinstance(default, (list, tuple)):
        return field(default=tuple(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainConfig:
    """Training settings shared by every strategy."""

    epochs: int = param(1, "training epochs per experience", ge=1, le=10_000)
    iterations: int = param(0, "training iterations per experience; overrides epochs when > 0", ge=0, le=10_000_000)
    batch_size: int = param(128, "training mini-batch size", ge=1, le=1_000_000)
    eval_batch_size: int = param(1000, "evaluation batch size", ge=1, le=1_000_000)
    lr: float = param(1e-3, "learning rate", gt=0)
    optimizer: str = param("adam", "optimizer", choices=("sgd", "adam"))
    momentum: float = param(0.0, "SGD momentum", ge=0, le=1)
    weight_decay: float = param(0.0, "L2 weight decay", ge=0)
    hidden: tuple[int, ...] = param((400, 400), "hidden layer widths of the MLP backbone", ge=1, le=100_000)
    backbone: str = param("mlp", "network: MLP, or the reduced ResNet-18 for images",
                          choices=("mlp", "resnet18_reduced"))
    reset_optimizer: bool = param(False, "clear the optimizer's state (momentum, Adam's moments) before every "
                                         "experience after the first; Avalanche keeps it", since=2)
    seen_classes_only: bool = param(False, "single-head runs: mask the outputs of classes not seen yet, in "
                                           "training and at test (van de Ven & Tolias's active classes)", since=2)
    current_classes_only: bool = param(False, "single-head runs: the training loss covers only the current "
                                              "experience's classes (the labels trick); the output layer takes "
                                              "no weight decay; evaluation uses every output", since=2)
    eval_plan: str = param("auto", "which cells of the accuracy matrix are evaluated: full, metrics (the diagonal, "
                                   "superdiagonal and last row: exact ACC/BWT/FWT/learning accuracy in O(T) passes), "
                                   "every:K (full rows every K experiences), auto (full up to 20 experiences, "
                                   "metrics above)", since=2)

    def __post_init__(self):
        from clbench.evalplan import check_plan

        check_plan(self.eval_plan)


@dataclass(frozen=True)
class RunConfig:
    """Everything `runner.run` needs: a pure description of one run."""

    benchmark: str
    strategy: str
    scenario: str
    seed: int
    train: TrainConfig
    bench: Any  # the benchmark's config dataclass
    method: Any  # the strategy's config dataclass
    device: str = "cpu"
    data_root: str | None = None
    download: bool = True
    threads: int = 0  # torch intra-op threads; 0 = torch's default

    def keys(self) -> dict[str, Any]:
        """All tunable keys with their values (tuples kept)."""
        out: dict[str, Any] = {}
        for part in (self.train, self.bench, self.method):
            out.update({f.name: getattr(part, f.name) for f in dataclasses.fields(part)})
        return out

    def later_keys_at_default(self) -> set[str]:
        """Keys added after the first release (`since` > 1) that hold their default value."""
        return {f.name for part in (self.train, self.bench, self.method) for f in dataclasses.fields(part)
                if f.metadata.get("since", 1) > 1 and getattr(part, f.name) == f.default}

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as stored in a record (JSON types, no paths).

        Keys added later appear only when they differ from their default, so a
        record made before such a key existed reads the same as one made after.
        """
        head = {"benchmark": self.benchmark, "strategy": self.strategy,
                "scenario": self.scenario, "seed": self.seed}
        skip = self.later_keys_at_default()
        body = {k: list(v) if isinstance(v, tuple) else v for k, v in self.keys().items() if k not in skip}
        return {**head, **body}

    def run_id(self) -> str:
        """Stable id: same benchmark, strategy, scenario, seed and keys -> same id."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return f"{self.scenario}-s{self.seed}-{hashlib.sha1(blob).hexdigest()[:10]}"


# ----------------------------------------------------------------- parsing
def _bounds_error(key: str, value: Any, meta: Mapping[str, Any]) -> str | None:
    if meta.get("choices") and value not in meta["choices"]:
        return f"one of {', '.join(map(str, meta['choices']))}"
    checks = (("ge", lambda v, b: v >= b, ">="), ("gt", lambda v, b: v > b, ">"),
              ("le", lambda v, b: v <= b, "<="), ("lt", lambda v, b: v < b, "<"))
    for name, ok, sign in checks:
        bound = meta.get(name)
        if bound is not None:
            items = value if isinstance(value, tuple) else (value,)
            if not all(ok(v, bound) for v in items):
                return f"a value {sign} {bound}"
    return None


def _parse_scalar(kind: type, raw: Any) -> Any:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise ValueError
    if kind is int:
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ValueError
        return int(str(raw).strip()) if isinstance(raw, str) else int(raw)
    if kind is float:
        if isinstance(raw, bool) or not math.isfinite(value := float(raw)):
            raise ValueError
        return value
    if kind is str:
        if not isinstance(raw, str):
            raise ValueError
        return raw.strip()
    raise TypeError(f"unsupported config type {kind}")


def coerce(config_cls: type, key: str, raw: Any) -> Any:
    """Parse `raw` (a string from the CLI or a TOML value) for field `key`."""
    hints = typing.get_type_hints(config_cls)
    meta = next(f.metadata for f in dataclasses.fields(config_cls) if f.name == key)
    kind = hints[key]
    try:
        if typing.get_origin(kind) is tuple:
            item = typing.get_args(kind)[0]
            parts = raw.split(",") if isinstance(raw, str) else list(raw)
            value = tuple(_parse_scalar(item, p) for p in parts if str(p).strip() != "")
        else:
            value = _parse_scalar(kind, raw)
    except (ValueError, TypeError):
        raise UsageError(
            f"bad value for '{key}': received {raw!r}, expected {type_name_of(kind)}."
        ) from None
    problem = _bounds_error(key, value, meta)
    if problem:
        raise UsageError(f"bad value for '{key}': received {raw!r}, expected {problem}.")
    return value


def with_values(config: Any, values: Mapping[str, Any], owner: str = "") -> Any:
    """`config` (a frozen config dataclass) with some fields replaced, each parsed and checked like `--set`.

    For the Python API: an unknown key is a TypeError, a bad value a ValueError, both naming `owner`.
    """
    if not values:
        return config
    cls = type(config)
    owner = owner or cls.__name__
    names = sorted(f.name for f in dataclasses.fields(cls))
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise TypeError(f"{owner}: unknown hyperparameter {', '.join(map(repr, unknown))}; "
                        f"valid: {', '.join(names) or 'none'}")
    try:
        parsed = {key: coerce(cls, key, raw) for key, raw in values.items()}
    except UsageError as exc:
        raise ValueError(f"{owner}: {exc}") from None
    return dataclasses.replace(config, **parsed)


def type_name_of(kind: Any) -> str:
    if typing.get_origin(kind) is tuple:
        return f"a comma-separated list of {typing.get_args(kind)[0].__name__}s"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        kind, str(kind)
    )


def parse_assignments(items: list[str]) -> dict[str, str]:
    """`["a=1", "b=x"]` -> `{"a": "1", "b": "x"}` (values still strings)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"bad --set '{item}': expected key=value, e.g. --set lr=0.01.")
        out[key.strip().replace("-", "_")] = value
    return out


MAX_SEED = 2**32 - 1  # numpy's and torch's seeds alike
MAX_SEEDS = 10_000  # seeds of one command


def check_seed(seed: int, where: str = "--seed") -> int:
    if not 0 <= seed <= MAX_SEED:
        raise UsageError(f"bad {where} {seed}: expected a whole number from 0 to {MAX_SEED}.")
    return seed


def parse_seeds(text: str) -> list[int]:
    """'0-4' -> [0..4]; '0,3,7' and '0-2,5' work too; at most MAX_SEEDS seeds, each in 0..MAX_SEED."""
    bounds: list[tuple[int, int]] = []
    try:
        for part in str(text).split(","):
            lo, sep, hi = part.strip().partition("-")
            bounds.append((int(lo), int(hi) if sep else int(lo)))
    except ValueError:
        raise UsageError(f"bad --seeds '{text}': expected a range like 0-4 or a list like 0,2,5 of seeds "
                         f"from 0 to {MAX_SEED}.") from None
    for lo, hi in bounds:
        if lo > hi:
            raise UsageError(f"bad --seeds '{text}': the range {lo}-{hi} runs backwards; write it {hi}-{lo}.")
        check_seed(hi, "--seeds")
    if sum(hi - lo + 1 for lo, hi in bounds) > MAX_SEEDS:
        raise UsageError(f"bad --seeds '{text}': more than {MAX_SEEDS:,} seeds; give a smaller range.")
    return sorted({seed for lo, hi in bounds for seed in range(lo, hi + 1)})


# run-level keys a --config file may hold besides the tunable keys: their TOML types and what they hold
FILE_RUN_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "benchmark": ((str,), "a benchmark name (see 'clbench list')"),
    "strategy": ((str,), "a strategy name (see 'clbench list')"),
    "scenario": ((str,), "one of class, task, domain"),
    "seed": ((int,), "a whole number"),
    "seeds": ((str, list), "a range such as \"0-2\" or a list of whole numbers"),
    "device": ((str,), "one of auto, cpu, cuda"),
    "data_root": ((str,), "a folder path"),
}


def split_file_run_keys(data: dict[str, Any], where: str) -> dict[str, Any]:
    """Take the run-level keys out of a config file's `data`, checking their types."""
    file_run = {key: data.pop(key) for key in FILE_RUN_KEYS if key in data}
    for key, value in file_run.items():
        types, expected = FILE_RUN_KEYS[key]
        if not isinstance(value, types) or isinstance(value, bool):
            raise UsageError(f"bad value for '{key}' in {where}: received {value!r}, expected {expected}.")
    return file_run


def load_toml(path: str | Path, what: str = "--config") -> dict[str, Any]:
    """Read a TOML file (`what`: how the error names it); a clear UsageError if it cannot be read or parsed."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise UsageError(f"cannot read {what} '{path}': no such file.") from None
    except IsADirectoryError:
        raise UsageError(f"cannot read {what} '{path}': it is a folder, expected a TOML file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {what} '{path}': {exc.__class__.__name__}.") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"cannot parse {what} '{path}' as TOML: {exc}.") from None
    return data


# ---------------------------------------------------------------- resolution
def _owner_map(bench: Entry, strat: Entry) -> dict[str, type]:
    owners: dict[str, type] = {}
    for cls in (TrainConfig, bench.config, strat.config):
        for f in dataclasses.fields(cls):
            if f.name in owners:
                raise ValueError(f"config key '{f.name}' defined twice ({owners[f.name].__name__}, {cls.__name__})")
            owners[f.name] = cls
    return owners


def config_from_dict(data: Mapping[str, Any], **run: Any) -> RunConfig:
    """The RunConfig a record's or a checkpoint's `config` describes (`run`: device, data_root, ...).

    The inverse of `RunConfig.to_dict`: a key added after the first release that the dict leaves out held
    its field default (or did not exist yet, which means the same), whatever a protocol sets it to now.
    """
    keys = dict(data)
    head = {name: keys.pop(name) for name in ("benchmark", "strategy", "scenario", "seed")}
    owners = _owner_map(BENCHMARKS.get(head["benchmark"]), STRATEGIES.get(head["strategy"]))
    for name, cls in owners.items():
        field_ = next(f for f in dataclasses.fields(cls) if f.name == name)
        if name not in keys and field_.metadata.get("since", 1) > 1:
            keys[name] = list(field_.default) if isinstance(field_.default, tuple) else field_.default
    return resolve(head["benchmark"], head["strategy"], scenario=head["scenario"], seed=head["seed"],
                   file_values=keys, **run)


def _check_epochs_take_effect(benchmark: str, given: set[str], train: dict[str, Any]) -> None:
    """A user's `epochs` must act: refused while the protocol's `iterations` (which override it) stay."""
    iterations = train.get("iterations", 0)
    if "epochs" in given and "iterations" not in given and iterations > 0:
        raise UsageError(f"epochs={train['epochs']} has no effect while iterations={iterations} ({benchmark}'s "
                         "protocol trains a fixed number of iterations per experience); add --iterations 0 (or "
                         "--set iterations=0) to train by epochs, or drop --epochs.")


def resolve(
    benchmark: str,
    strategy: str,
    *,
    scenario: str | None = None,
    seed: int = 0,
    file_values: Mapping[str, Any] | None = None,
    cli_values: Mapping[str, Any] | None = None,
    device: str = "cpu",
    data_root: str | None = None,
    download: bool = True,
    threads: int = 0,
) -> RunConfig:
    """Build a checked RunConfig; raises UsageError on any bad name, key or value."""
    bench, strat = BENCHMARKS.get(benchmark), STRATEGIES.get(strategy)
    scenario = scenario or bench.default_scenario
    for entry in (bench, strat):
        if scenario not in entry.scenarios:
            raise UsageError(
                f"{entry.name} does not support scenario '{scenario}'; "
                f"valid: {', '.join(entry.scenarios)} (use --scenario)."
            )
    owners = _owner_map(bench, strat)
    layers = [dict(bench.protocol), strat.defaults_for(bench.name, scenario), dict(file_values or {}),
              dict(cli_values or {})]
    values: dict[type, dict[str, Any]] = {cls: {} for cls in (TrainConfig, bench.config, strat.config)}
    given: set[str] = set()  # keys the user set (file or command line)
    for level, layer in enumerate(layers):
        for key, raw in layer.items():
            name = key.replace("-", "_")
            if name not in owners:
                valid = sorted(owners)
                raise UsageError(
                    f"unknown key '{key}' for {bench.name} + {strat.name}.{suggest(name, valid)} "
                    f"Valid keys: {', '.join(valid)}."
                )
            values[owners[name]][name] = coerce(owners[name], name, raw)
            if level >= 2:
                given.add(name)
    _check_epochs_take_effect(bench.name, given, values[TrainConfig])
    return RunConfig(
        benchmark=bench.name,
        strategy=strat.name,
        scenario=scenario,
        seed=seed,
        train=TrainConfig(**values[TrainConfig]),
        bench=bench.config(**values[bench.config]),
        method=strat.config(**values[strat.config]),
        device=device,
        data_root=data_root,
        download=download,
        threads=threads,
    )
