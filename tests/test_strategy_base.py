"""Method plugins and strategies built from their registered config: one default, keywords checked like --set."""

import dataclasses
import inspect

import pytest
import torch
from torch import nn

from clbench.registry import STRATEGIES
from clbench.strategies.base import MethodPlugin, MethodStrategy


def method_strategies() -> list[type]:
    import clbench.strategies as strategies

    found = [getattr(strategies, name) for name in strategies.__all__]
    return [cls for cls in found if isinstance(cls, type) and issubclass(cls, MethodStrategy)]


METHODS = method_strategies()


def test_every_plastic_learner_has_a_method_strategy():
    registered = {cls.plugin_class.config_class for cls in METHODS}
    expected = {STRATEGIES.get(name).config for name in ("sparse_syn", "kwinners", "hebbian", "path_plastic")}
    assert registered == expected


@pytest.mark.parametrize("strategy_class", METHODS, ids=lambda c: c.__name__)
def test_plugin_defaults_are_the_registered_config(strategy_class):
    plugin_class = strategy_class.plugin_class
    assert issubclass(plugin_class, MethodPlugin)
    assert plugin_class().config == plugin_class.config_class()
    field = dataclasses.fields(plugin_class.config_class)[0]
    config = plugin_class.config_class()
    assert plugin_class.from_config(config).config is config
    with pytest.raises(TypeError, match=f"{plugin_class.__name__}: unknown hyperparameter 'no_such_key'; valid: "):
        plugin_class(no_such_key=1)
    with pytest.raises(ValueError, match=f"{plugin_class.__name__}: bad value for '{field.name}'"):
        plugin_class(**{field.name: "not a value"})


@pytest.mark.parametrize("strategy_class", METHODS, ids=lambda c: c.__name__)
def test_the_template_signature_names_the_plugin_and_every_hyperparameter(strategy_class):
    parameters = inspect.signature(strategy_class).parameters
    keys = [f.name for f in dataclasses.fields(strategy_class.plugin_class.config_class)]
    assert {"model", "optimizer", "plugins", strategy_class.plugin_keyword, *keys} <= set(parameters)
    assert parameters[keys[0]].default == getattr(strategy_class.plugin_class.config_class(), keys[0])


def test_hyperparameters_given_to_the_template_reach_its_plugin():
    from clbench.nn.sparse import SparseLinear
    from clbench.strategies import SparseSynapses, SparseSynapsesPlugin

    model = nn.Sequential(SparseLinear(8, 4, density=0.5), nn.ReLU(), nn.Linear(4, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    strategy = SparseSynapses(model=model, optimizer=optimizer, grow=0.05, zeta="0.1", train_mb_size=4)
    assert strategy.sparse.config.grow == 0.05 and strategy.sparse.config.zeta == 0.1
    assert strategy.sparse in strategy.plugins and strategy.train_mb_size == 4
    with pytest.raises(TypeError, match="give grow to the plugin passed as 'sparse'"):
        SparseSynapses(model=model, optimizer=optimizer, sparse=SparseSynapsesPlugin(), grow=0.05)
    with pytest.raises(TypeError, match="unexpected keyword argument: gorw"):
        SparseSynapses(model=model, optimizer=optimizer, gorw=0.05)


@pytest.mark.parametrize("strategy", [e.name for e in STRATEGIES])
def test_every_trainable_parameter_is_in_the_optimizer_exactly_once_at_every_iteration(strategy):
    from avalanche.core import SupervisedPlugin

    from clbench import runner
    from clbench.config import resolve

    class Check(SupervisedPlugin):
        def __init__(self):
            super().__init__()
            self.checked = 0

        def before_update(self, strategy, **kwargs):
            held = [id(p) for group in strategy.optimizer.param_groups for p in group["params"]]
            trainable = {id(p) for p in strategy.model.parameters() if p.requires_grad}
            assert len(held) == len(set(held)), "a parameter is in the optimizer twice"
            assert trainable <= set(held), "a trainable parameter is not in the optimizer"
            self.checked += 1

    rewire_often = {"rewire_every": "1", "rewire_last_epoch": "true"}  # prunes paths and regrows some of them
    keys = {"iterations": "12", **(rewire_often if strategy == "path_plastic" else {})}
    cfg = resolve("split_digits", strategy, cli_values=keys, device="cpu")
    check = Check()
    runner.seed_everything(0)
    benchmark, built = runner.build(cfg, plugins=[check])
    stream = list(benchmark.train_stream)
    for step in [stream[:3]] if STRATEGIES.get(strategy).extra.get("joint") else stream[:3]:
        built.train(step)
    assert check.checked >= 12


@pytest.mark.parametrize("plugin_name", ["SparseSynapsesPlugin", "KWinnersPlugin", "HebbianPlugin",
                                         "PathPlasticPlugin"])
def test_a_plugin_on_a_model_without_its_layers_says_what_it_needs(plugin_name, avalanche_digits):
    """In a plain Avalanche pipeline, a method's plugin on an ordinary MLP would train as fine-tuning: refused."""
    from avalanche.training import Naive

    import clbench.strategies as strategies

    plugin_class = getattr(strategies, plugin_name)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), 0.1), criterion=nn.CrossEntropyLoss(),
                     train_mb_size=32, eval_mb_size=64, plugins=[plugin_class()])
    with pytest.raises(ValueError, match=f"{plugin_name} found none of its layers .* it needs"):
        strategy.train(avalanche_digits.train_stream[0])
