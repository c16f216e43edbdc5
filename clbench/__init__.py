"""clbench: a continual-learning benchmark suite for plasticity-inspired learners.

Importing the package is cheap: torch and Avalanche are imported only by the
modules that train (runner, strategies, benchmarks' builders).
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`clbench.make_strategy`, imported on first use (it loads Avalanche)."""
    if name == "make_strategy":
        from clbench.api import make_strategy

        return make_strategy
    raise AttributeError(f"module 'clbench' has no attribute {name!r}")
