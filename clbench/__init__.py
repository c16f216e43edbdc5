"""clbench: a continual-learning benchmark suite for plasticity-inspired learners.

Importing the package is cheap: torch and Avalanche are imported only by the
modules that train (runner, strategies, benchmarks' builders).
"""

__version__ = "0.1.0"
