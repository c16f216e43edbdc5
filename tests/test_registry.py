"""Registries: lookup, suggestions, duplicates, and every entry's config."""

import dataclasses
import json

import pytest

from clbench.config import TrainConfig
from clbench.errors import UsageError
from clbench.registry import BENCHMARKS, SCENARIOS, STRATEGIES, Registry, normalize_name


def test_names_are_snake_case_and_dash_is_accepted():
    assert normalize_name("Split-MNIST") == "split_mnist"
    assert STRATEGIES.get("naive") is STRATEGIES.get("NAIVE")
    assert BENCHMARKS.get("split-digits").name == "split_digits"


def test_unknown_name_suggests_the_closest_and_lists_all():
    with pytest.raises(UsageError) as err:
        STRATEGIES.get("cumulativ")
    message = str(err.value)
    assert "Did you mean 'cumulative'?" in message
    assert all(name in message for name in STRATEGIES.names())
    assert err.value.exit_code == 2


def test_duplicate_registration_names_both_modules():
    registry = Registry("thing", "clbench")

    @registry.register("one", builder="x:y")
    @dataclasses.dataclass(frozen=True)
    class First:
        """First."""

    with pytest.raises(ValueError, match="registered twice") as err:
        @registry.register("one", builder="x:z")
        @dataclasses.dataclass(frozen=True)
        class Second:
            """Second."""
    assert First.__module__ in str(err.value)


def test_config_must_be_a_frozen_dataclass():
    registry = Registry("thing", "clbench")
    with pytest.raises(TypeError, match="frozen"):
        @registry.register("mutable", builder="x:y")
        @dataclasses.dataclass
        class Mutable:
            """Mutable."""


def test_expected_entries_are_registered():
    assert {"naive", "cumulative", "joint", "ewc", "si", "lwf", "replay"} <= set(STRATEGIES.names())
    assert {"split_mnist", "permuted_mnist", "split_fmnist", "split_cifar10", "split_digits",
            "permuted_digits"} <= set(BENCHMARKS.names())


@pytest.mark.parametrize("entry", list(STRATEGIES) + list(BENCHMARKS), ids=lambda e: e.name)
def test_every_entry_is_complete(entry):
    assert entry.summary and entry.summary.endswith(".")
    assert set(entry.scenarios) <= set(SCENARIOS) and entry.default_scenario in entry.scenarios
    assert dataclasses.is_dataclass(entry.config) and entry.config.__dataclass_params__.frozen
    for f in dataclasses.fields(entry.config):
        assert f.metadata.get("help"), f"{entry.name}.{f.name} has no help text"
    assert callable(entry.load_builder())


@pytest.mark.parametrize("bench", list(BENCHMARKS), ids=lambda e: e.name)
@pytest.mark.parametrize("strategy", list(STRATEGIES), ids=lambda e: e.name)
def test_config_keys_never_collide(bench, strategy):
    names = [f.name for cls in (TrainConfig, bench.config, strategy.config) for f in dataclasses.fields(cls)]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("bench", list(BENCHMARKS), ids=lambda e: e.name)
def test_protocols_only_name_training_and_benchmark_keys(bench):
    """A protocol sets how to train on its benchmark (and may fix the benchmark's own keys, written into every
    record, as permuted MNIST's pixels), never a strategy's key."""
    own_keys = {f.name for cls in (TrainConfig, bench.config) for f in dataclasses.fields(cls)}
    assert set(bench.protocol) <= own_keys


TINY_INIT = '''
from dataclasses import dataclass

from clbench.config import param
from clbench.registry import lazy_exports, register_strategy

__all__ = ["Tiny", "TinyPlugin"]
__getattr__ = lazy_exports(__name__, __all__)


@register_strategy("tiny_method", scenarios=("class", "task"))
@dataclass(frozen=True)
class TinyConfig:
    """Counts its training iterations (the recipe of strategies/README.md)."""

    step: int = param(1, "added per iteration", ge=1)
'''

TINY_STRATEGY = '''
from clbench.strategies.base import MethodPlugin, MethodStrategy, template_kwargs
from clbench.strategies.tiny_method import TinyConfig


class TinyPlugin(MethodPlugin):
    config_class = TinyConfig

    def __init__(self, config=None, **hparams):
        super().__init__(config, **hparams)
        self.count = 0

    def after_training_iteration(self, strategy, **kwargs):
        self.count += self.config.step

    def record_extras(self, strategy):
        return {"count": self.count}


class Tiny(MethodStrategy):
    """Naive with a counter."""

    plugin_class, plugin_keyword = TinyPlugin, "tiny"


def build(cfg, benchmark, plugins, **given):
    return Tiny(**template_kwargs(cfg, benchmark, plugins, **given), tiny=TinyPlugin.from_config(cfg.method))
'''


def test_a_strategy_is_one_new_folder(tmp_path):
    """strategies/README.md's recipe: one folder, found by convention, listed, run, and importable."""
    import subprocess
    import sys

    folder = tmp_path / "methods" / "tiny_method"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(TINY_INIT)
    (folder / "strategy.py").write_text(TINY_STRATEGY)
    code = f'''
import json, clbench.strategies as s
s.__path__.append({str(folder.parent)!r})  # as if the folder sat in strategies/
s.method_packages()
from clbench.cli import main
assert main(["list", "strategies"]) == 0
assert main(["run", "-b", "split_digits", "-s", "tiny_method", "--iterations", "3", "--set", "step=2",
             "--out", {str(tmp_path / "out")!r}, "--quiet", "--device", "cpu"]) == 0
from clbench.strategies.tiny_method import Tiny, TinyPlugin
assert Tiny.plugin_class is TinyPlugin and TinyPlugin(step=3).config.step == 3
'''
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "tiny_method" in result.stdout and "Counts its training iterations" in result.stdout
    record = json.loads(next((tmp_path / "out" / "split_digits" / "tiny_method").glob("*.json")).read_text())
    assert record["extras"]["count"] == [6, 12, 18, 24, 30] and record["config"]["step"] == 2
