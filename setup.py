"""Packages: `clbench`, and `strategies/` and `benchmarks/` installed as `clbench.strategies` and
`clbench.benchmarks` with every package below them, so a new strategy folder needs no entry here."""

from setuptools import find_packages, setup

MAPPED = {"clbench.strategies": "strategies", "clbench.benchmarks": "benchmarks"}

setup(
    packages=["clbench", "clbench.nn", *(name for parent, folder in MAPPED.items()
                                         for name in [parent, *(f"{parent}.{p}" for p in find_packages(folder))])],
    package_dir=MAPPED,
    package_data={"clbench.strategies": ["README.md"]},
)
