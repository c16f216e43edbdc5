"""Registries: lookup, suggestions, duplicates, and every entry's config."""

import dataclasses

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
def test_protocols_only_name_training_keys(bench):
    train_keys = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(bench.protocol) <= train_keys
