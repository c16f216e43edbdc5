"""Registries of strategies and benchmarks, filled by decorators.

An entry is a frozen config dataclass (its fields are the tunable keys, its
docstring's first line the summary `clbench list` prints) plus a lazily
imported builder, so listing and validating never import torch or Avalanche.
A strategy's builder is by convention `build` in the `strategy` module beside
its config (`clbench.strategies.<method>.strategy:build`).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

from clbench.errors import UsageError

SCENARIOS = ("class", "task", "domain")


def normalize_name(name: str) -> str:
    """Registry names are snake_case; `-` is accepted for `_`."""
    return name.strip().lower().replace("-", "_")


def suggest(received: str, valid: list[str]) -> str:
    """A ' Did you mean X?' fragment, or '' when nothing is close."""
    close = difflib.get_close_matches(received, valid, n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def plural(kind: str) -> str:
    """'strategy' -> 'strategies', 'benchmark' -> 'benchmarks'."""
    return kind[:-1] + "ies" if kind.endswith("y") else kind + "s"


@dataclass(frozen=True)
class Entry:
    """One registered strategy or benchmark."""

    name: str
    config: type
    builder: str  # "module:function", imported on first use
    scenarios: tuple[str, ...]
    default_scenario: str | None = None
    protocol: Mapping[str, Any] = field(default_factory=dict)
    tuned: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # "benchmark[/scenario]" -> keys
    reference: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        doc = (self.config.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    @property
    def module(self) -> str:
        return self.config.__module__

    def defaults_for(self, benchmark: str, scenario: str) -> dict[str, Any]:
        """Keys this entry sets for a benchmark and scenario: protocol, then tuned values."""
        return {**self.protocol, **self.tuned.get(benchmark, {}), **self.tuned.get(f"{benchmark}/{scenario}", {})}

    def load_builder(self) -> Callable[..., Any]:
        module_name, _, attr = self.builder.partition(":")
        return getattr(importlib.import_module(module_name), attr)


class Registry:
    """Name -> Entry; the package that fills it is imported on first lookup."""

    def __init__(self, kind: str, package: str):
        self.kind = kind
        self._package = package
        self._entries: dict[str, Entry] = {}

    def register(
        self,
        name: str,
        *,
        builder: str = "build",
        scenarios: tuple[str, ...] = SCENARIOS,
        default_scenario: str | None = None,
        protocol: Mapping[str, Any] | None = None,
        tuned: Mapping[str, Mapping[str, Any]] | None = None,
        reference: str = "",
        extra: Mapping[str, Any] | None = None,
    ) -> Callable[[type], type]:
        """Class decorator: register a frozen config dataclass under `name`.

        `builder` is "module:function", or a function name in the `strategy` module
        beside the config's module (default `build`). `protocol` overrides training
        defaults everywhere; `tuned` overrides keys for one benchmark ("split_mnist")
        or one benchmark and scenario ("split_mnist/task"), the more specific winning.
        """
        key = normalize_name(name)
        unknown = set(scenarios) - set(SCENARIOS)
        if unknown:
            raise ValueError(f"{self.kind} {key!r}: unknown scenarios {sorted(unknown)}")

        def decorate(config: type) -> type:
            if not (dataclasses.is_dataclass(config) and config.__dataclass_params__.frozen):
                raise TypeError(f"{self.kind} {key!r}: config must be a frozen dataclass")
            if key in self._entries:
                first = self._entries[key].module
                raise ValueError(
                    f"{self.kind} {key!r} registered twice: in {first} and in "
                    f"{config.__module__} (import clbench.{self._package.split('.')[-1]}"
                    " modules only through the clbench package)"
                )
            self._entries[key] = Entry(
                name=key,
                config=config,
                builder=builder if ":" in builder else f"{config.__module__}.strategy:{builder}",
                scenarios=tuple(scenarios),
                default_scenario=default_scenario or scenarios[0],
                protocol=dict(protocol or {}),
                tuned={k: dict(v) for k, v in (tuned or {}).items()},
                reference=reference,
                extra=dict(extra or {}),
            )
            return config

        return decorate

    def _load(self) -> None:
        importlib.import_module(self._package)

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def get(self, name: str) -> Entry:
        """The entry for `name`, or a UsageError listing what is available."""
        self._load()
        key = normalize_name(name)
        if key in self._entries:
            return self._entries[key]
        valid = sorted(self._entries)
        raise UsageError(
            f"unknown {self.kind} '{name}'.{suggest(key, valid)} "
            f"Valid {plural(self.kind)}: {', '.join(valid)} (see 'clbench list')."
        )

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries[name] for name in self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __contains__(self, name: str) -> bool:
        self._load()
        return normalize_name(name) in self._entries


def lazy_exports(package: str, names: list[str], module: str = "strategy") -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: the public `names`, imported from `package.module` on first use.

    A method package's `__init__` stays torch-free; `from clbench.strategies.sparse_syn import
    SparseSynapses` imports the strategy module then.
    """

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return __getattr__


STRATEGIES = Registry("strategy", "clbench.strategies")
BENCHMARKS = Registry("benchmark", "clbench.benchmarks")
register_strategy = STRATEGIES.register
register_benchmark = BENCHMARKS.register
