"""Benchmarks: data loading and continual-learning streams (`clbench.benchmarks`).

Importing this package registers every benchmark without importing torch.
"""

from clbench.benchmarks import catalog  # noqa: F401  (registers the benchmarks)
