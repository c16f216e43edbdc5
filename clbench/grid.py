"""Sweep grids: the cells of a `clbench sweep`, from flags or from a TOML sweep file (torch-free).

A group names benchmarks, strategies, scenarios and seeds (each a list) and
keys: a single value applies to every cell, a list of values is a grid axis.
The cells are the product of all of them. A key applies only to the cells
whose benchmark and strategy have it (`ewc_lambda` multiplies the EWC cells,
not the naive ones), and a scenario only to the benchmarks and strategies
that support it; a key or a scenario that fits no cell is a usage error.

A sweep file holds one group at its top level and/or a list `[[cells]]` of
groups, each of which may name a `config` file (a `clbench run --config`
file, relative to the sweep file):

    benchmark = ["split_mnist"]
    strategy = ["naive", "ewc", "si"]
    scenario = ["task", "class"]
    seeds = "0-2"
    [set]
    iterations = 2000            # every cell
    lr = [1e-3, 1e-4]            # a grid axis

    [[cells]]
    benchmark = "permuted_mnist"
    strategy = "ewc"
    config = "../configs/ewc_permuted_vandeven_pixels.toml"
    seeds = "0-2"
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from clbench.config import RunConfig, load_toml, parse_seeds, resolve, split_file_run_keys
from clbench.errors import UsageError
from clbench.registry import BENCHMARKS, STRATEGIES, Entry

GROUP_KEYS = ("benchmark", "strategy", "scenario", "seeds", "seed", "config", "set")
MAX_CELLS = 10_000


@dataclass(frozen=True)
class Group:
    """One product of cells: names, seeds, a config file's keys, fixed keys and grid axes."""

    benchmarks: tuple[str, ...]
    strategies: tuple[str, ...]
    scenarios: tuple[str, ...] = ()  # empty: each benchmark's default scenario
    seeds: tuple[int, ...] = (0,)
    file_values: Mapping[str, Any] = field(default_factory=dict)
    axes: Mapping[str, Any] = field(default_factory=dict)  # key -> raw value(s), read by `axis`


@dataclass(frozen=True)
class Grid:
    """The cells of a sweep (unique run configs, in order) and the combinations that were left out, with why."""

    cells: tuple[RunConfig, ...]
    left_out: tuple[str, ...] = ()


def names(text: str | Iterable[str] | None) -> tuple[str, ...]:
    """'a,b' or ['a', 'b'] -> ('a', 'b')."""
    if text is None:
        return ()
    items = text.split(",") if isinstance(text, str) else [str(t) for t in text]
    return tuple(t.strip() for t in items if t.strip())


def axis(raw: Any, list_valued: bool) -> tuple:
    """The values a key takes in a sweep. From a flag (`--set KEY=V1,V2`): comma-separated, but for a list-valued
    key (hidden) alternatives are separated by `/` (`hidden=400,400/1000,1000`). From a file: a list is an axis,
    but for a list-valued key only a list of lists is (`hidden = [[400, 400], [1000, 1000]]`)."""
    if isinstance(raw, str):
        return tuple(raw.split("/")) if list_valued else tuple(raw.split(","))
    if isinstance(raw, list):
        return tuple(raw) if not list_valued or all(isinstance(v, list) for v in raw) else (raw,)
    return (raw,)


def _key_kinds(bench: Entry, strat: Entry) -> dict[str, bool]:
    """Every key of a benchmark and strategy -> whether it holds a list."""
    from clbench.config import TrainConfig

    return {f.name: isinstance(f.default, tuple)
            for cls in (TrainConfig, bench.config, strat.config) for f in dataclasses.fields(cls)}


def expand_group(group: Group, run: Mapping[str, Any]) -> tuple[list[RunConfig], list[str], set[str]]:
    """(cells, combinations left out with why, the keys that applied to some cell) of one group."""
    cells, left_out, used = [], [], set()
    for benchmark, strategy in itertools.product(group.benchmarks, group.strategies):
        bench, strat = BENCHMARKS.get(benchmark), STRATEGIES.get(strategy)
        kinds = _key_kinds(bench, strat)
        fits = {k: axis(v, kinds[k.replace("-", "_")]) for k, v in group.axes.items() if k.replace("-", "_") in kinds}
        used |= set(fits)
        for scenario in group.scenarios or (bench.default_scenario,):
            unsupported = [e.name for e in (bench, strat) if scenario not in e.scenarios]
            if unsupported:
                left_out.append(f"{bench.name}/{strat.name}/{scenario}: {unsupported[0]} has no {scenario} scenario")
                continue
            for values in itertools.product(*fits.values()):
                for seed in group.seeds:
                    cells.append(resolve(bench.name, strat.name, scenario=scenario, seed=seed,
                                         file_values=group.file_values, cli_values=dict(zip(fits, values)), **run))
    return cells, left_out, used


def build_grid(groups: list[Group], run: Mapping[str, Any] | None = None, allow_large: bool = False) -> Grid:
    """Every cell of `groups` (duplicates by run id once); usage errors for an empty grid, a key or scenario that
    fits no cell, or more than MAX_CELLS cells without `allow_large`."""
    run = dict(run or {})
    cells: dict[str, RunConfig] = {}
    left_out: list[str] = []
    for group in groups:
        _check_names(group)
        expanded, skipped, used = expand_group(group, run)
        unused = sorted(set(group.axes) - used)
        if unused:
            raise UsageError(f"key '{unused[0]}' belongs to none of the sweep's benchmarks and strategies "
                             f"({', '.join(group.benchmarks)}; {', '.join(group.strategies)}); see "
                             "'clbench list strategies NAME' for their keys.")
        left_out += skipped
        for cfg in expanded:
            cells.setdefault(f"{cfg.benchmark}/{cfg.strategy}/{cfg.run_id()}", cfg)
        if len(cells) > MAX_CELLS and not allow_large:
            raise UsageError(f"the sweep has more than {MAX_CELLS:,} cells; narrow its axes, or add --yes to run "
                             "them all.")
    if not cells:
        why = f" ({'; '.join(left_out[:3])})" if left_out else ""
        raise UsageError(f"the sweep has no cells{why}: give at least one benchmark, strategy and seed that fit.")
    return Grid(tuple(cells.values()), tuple(left_out))


def varied_keys(grid: Grid) -> dict[str, str]:
    """Run id -> the keys (key=value) in which a cell differs from the other cells of its benchmark and strategy."""
    by_pair: dict[tuple[str, str], list[RunConfig]] = {}
    for cfg in grid.cells:
        by_pair.setdefault((cfg.benchmark, cfg.strategy), []).append(cfg)
    labels = {}
    for configs in by_pair.values():
        dicts = [cfg.to_dict() for cfg in configs]
        keys = sorted({k for d in dicts for k in d if k not in ("scenario", "seed")
                       and any(d.get(k) != other.get(k) for other in dicts)})
        for cfg, d in zip(configs, dicts):
            labels[cfg.run_id()] = " ".join(f"{k}={d.get(k)}" for k in keys)
    return labels


def _check_names(group: Group) -> None:
    if not group.benchmarks or not group.strategies:
        missing = "benchmark" if not group.benchmarks else "strategy"
        raise UsageError(f"the sweep names no {missing}; give -{missing[0]} NAME[,NAME...] or '{missing}' in the "
                         "sweep file.")
    for scenario in group.scenarios:
        if scenario not in ("class", "task", "domain"):
            raise UsageError(f"unknown scenario '{scenario}'; valid: class, task, domain.")


def group_from_flags(benchmarks: str | None, strategies: str | None, scenarios: str | None, seeds: str | None,
                     sets: Iterable[str] = (), config: str | None = None) -> Group:
    """The group of `clbench sweep -b ... -s ... --scenario ... --seeds ... --set KEY=V1,V2 --config FILE`."""
    from clbench.config import parse_assignments

    file_values = load_toml(config) if config else {}
    named = split_file_run_keys(file_values, f"--config '{config}'")  # the file's names fill in missing flags
    seeds = seeds or named.get("seeds", named.get("seed"))
    return Group(names(benchmarks or named.get("benchmark")), names(strategies or named.get("strategy")),
                 names(scenarios or named.get("scenario")), _seeds(seeds) if seeds is not None else (0,),
                 file_values, parse_assignments(list(sets)))


def _seeds(value: str | int | list) -> tuple[int, ...]:
    """A seed, a list of seeds or a range string ('0-2', '0,3,7') as a tuple of seeds."""
    if isinstance(value, str):
        return tuple(parse_seeds(value))
    return tuple(parse_seeds(",".join(map(str, value if isinstance(value, list) else [value]))))


def _file_group(table: Mapping[str, Any], where: str, folder: Path) -> Group:
    unknown = sorted(set(table) - set(GROUP_KEYS))
    if unknown:
        raise UsageError(f"unknown entry '{unknown[0]}' in {where}; valid: {', '.join(GROUP_KEYS)}, and [[cells]].")
    file_values = load_toml(folder / table["config"], f"the config of {where}") if "config" in table else {}
    named = split_file_run_keys(file_values, f"the config of {where}")  # a config file's names
    table = {**{k: v for k, v in named.items() if k in GROUP_KEYS}, **table}
    seeds = _seeds(table.get("seeds", table.get("seed", 0)))
    sets = table.get("set", {})
    if not isinstance(sets, dict):
        raise UsageError(f"'set' in {where} must be a table of keys, e.g. [set] lr = [1e-3, 1e-4].")
    return Group(names(table.get("benchmark")), names(table.get("strategy")), names(table.get("scenario")),
                 seeds, file_values, dict(sets))


def groups_from_file(path: str | Path) -> list[Group]:
    """The groups of a TOML sweep file (its top level, if it names a benchmark, and each [[cells]] entry)."""
    path = Path(path)
    data = load_toml(path, "sweep file")
    cells = data.pop("cells", [])
    if not isinstance(cells, list):
        raise UsageError(f"'cells' in sweep file '{path}' must be a list of tables ([[cells]]).")
    groups = [_file_group(data, f"sweep file '{path}'", path.parent)] if data else []
    groups += [_file_group(cell, f"[[cells]] entry {i + 1} of '{path}'", path.parent) for i, cell in enumerate(cells)]
    if not groups:
        raise UsageError(f"sweep file '{path}' names no cells: give benchmark and strategy, or [[cells]].")
    return groups
