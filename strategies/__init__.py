"""Strategies: one package per method (`clbench.strategies.<method>`), found by convention.

Each method package holds a torch-free `__init__.py` with its config dataclass
and its registration, a `strategy` module with its plugin, template and
builder, and optionally its figures (see strategies/README.md). Importing this
package imports every method package, which registers them without importing
torch or Avalanche; a method's public classes (`from clbench.strategies import
SparseSynapses`) are imported on first access.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def method_packages() -> list[ModuleType]:
    """Every method package below this one, imported (which registers it)."""
    return [importlib.import_module(f"{__name__}.{info.name}")
            for info in pkgutil.iter_modules(__path__) if info.ispkg]


_METHODS = method_packages()
__all__ = sorted(name for package in _METHODS for name in getattr(package, "__all__", ()))


def __getattr__(name: str):
    for package in _METHODS:
        if name in getattr(package, "__all__", ()):
            return getattr(package, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
