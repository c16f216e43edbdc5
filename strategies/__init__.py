"""Strategies: Avalanche strategies and plugins (`clbench.strategies`).

Importing this package registers every strategy without importing torch or
Avalanche; the strategy classes and plugins are imported on first access.
"""

from __future__ import annotations

import importlib

from clbench.strategies import catalog, figures  # noqa: F401  (registers the strategies and their plots)

# public name -> module that defines it (imported lazily)
_LAZY = {
    "TaskAwareModel": "common",
    "TensorBatchesPlugin": "common",
    "IterationBudgetPlugin": "common",
    "DivergenceGuardPlugin": "common",
    "ResetOptimizerPlugin": "common",
    "ProgressPlugin": "common",
    "Diverged": "common",
    "CopyingSIPlugin": "baselines",
    "SparseSynapses": "sparse_syn",
    "SparseSynapsesPlugin": "sparse_syn",
    "KWinners": "kwinners",
    "KWinnersPlugin": "kwinners",
    "Hebbian": "hebbian",
    "HebbianPlugin": "hebbian",
    "PathPlastic": "path_plastic",
    "PathPlasticPlugin": "path_plastic",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"clbench.strategies.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'clbench.strategies' has no attribute {name!r}")
