"""`clbench.make_strategy`: every registered strategy as an Avalanche strategy on an Avalanche benchmark."""

from __future__ import annotations

import pytest
import torch

import clbench
from clbench.registry import STRATEGIES


@pytest.fixture(scope="module")
def image_digits():
    """Class-incremental 1x8x8 digits, 5 experiences, built by Avalanche's generators."""
    from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark
    from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset as tensor_dataset
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32).view(-1, 1, 8, 8) / 16
    y = torch.tensor(digits.target)
    data = {"train": tensor_dataset(x[:1400], y[:1400]), "test": tensor_dataset(x[1400:], y[1400:])}
    return class_incremental_benchmark(data, class_order=list(range(10)), num_experiences=5)


@pytest.fixture(scope="module")
def task_digits():
    """Task-incremental 1x8x8 digits: 5 experiences with task labels 0-4 (Avalanche's nc_benchmark)."""
    from avalanche.benchmarks import nc_benchmark  # as SplitMNIST(return_task_id=True) builds it
    from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset as tensor_dataset
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32).view(-1, 1, 8, 8) / 16
    y = torch.tensor(digits.target)
    return nc_benchmark(tensor_dataset(x[:1400], y[:1400]), tensor_dataset(x[1400:], y[1400:]), n_experiences=5,
                        task_labels=True, fixed_class_order=list(range(10)))


def accuracy_evaluator():
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.training.plugins import EvaluationPlugin

    return EvaluationPlugin(accuracy_metrics(experience=True), loggers=[])


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_every_strategy_trains_on_an_avalanche_benchmark_and_reports_through_its_evaluator(name, image_digits):
    torch.manual_seed(0)
    strategy = clbench.make_strategy(name, benchmark=image_digits, evaluator=accuracy_evaluator(), train_epochs=10,
                                     train_mb_size=64)
    if STRATEGIES.get(name).extra.get("joint"):  # Avalanche's JointTraining trains once, on a whole stream
        strategy.train(image_digits.train_stream[:2])
    else:
        for experience in image_digits.train_stream[:2]:
            strategy.train(experience)
    results = strategy.eval(image_digits.test_stream[:2])
    second = [value for key, value in results.items() if key.startswith("Top1_Acc_Exp") and key.endswith("Exp001")]
    # the second experience's classes are learnt; Avalanche names the metric with or without "Task000/"
    assert len(second) == 1 and second[0] > 0.3


def test_hyperparameters_are_the_registered_keys(image_digits):
    strategy = clbench.make_strategy("sparse_syn", benchmark=image_digits, grow=0.05, lr=0.01, hidden=[32, 16],
                                     evaluator=None)
    assert strategy.sparse.config.grow == 0.05
    assert strategy.sparse.config.zeta == 0.3  # registered default
    assert strategy.optimizer.param_groups[0]["lr"] == 0.01
    assert [m.out_features for m in strategy.model.modules() if isinstance(m, torch.nn.Linear)][:2] == [32, 16]
    assert strategy.optimizer.param_groups[0]["weight_decay"] == 1e-3  # sparse_syn's protocol
    sgd = clbench.make_strategy("naive", benchmark=image_digits, optimizer="sgd", momentum=0.9, evaluator=None)
    assert isinstance(sgd.optimizer, torch.optim.SGD) and sgd.optimizer.param_groups[0]["momentum"] == 0.9


@pytest.mark.parametrize("hparams, error, words", [
    ({"grow": 2.0}, ValueError, "'grow': received 2.0, expected a value <= 1"),
    ({"lr": -1}, ValueError, "'lr': received -1"),
    ({"optimizer": "lbfgs"}, ValueError, "'optimizer': received 'lbfgs'"),
])
def test_bad_hyperparameters_are_refused_naming_the_key(image_digits, hparams, error, words):
    with pytest.raises(error, match=words):
        clbench.make_strategy("sparse_syn", benchmark=image_digits, **hparams)


def test_a_task_labelled_stream_gets_one_head_per_task(task_digits):
    from avalanche.models import MultiTaskModule

    strategy = clbench.make_strategy("kwinners", benchmark=task_digits, evaluator=accuracy_evaluator(),
                                     train_epochs=10, train_mb_size=64)
    assert isinstance(strategy.model, MultiTaskModule)
    for experience in task_digits.train_stream[:2]:
        strategy.train(experience)
    results = strategy.eval(task_digits.test_stream[:2])
    assert results["Top1_Acc_Exp/eval_phase/test_stream/Task001/Exp001"] > 0.7  # its head: two classes


def test_a_given_model_and_optimizer_are_used_as_they_are(image_digits):
    from clbench.nn.sparse import sparse_model

    model = sparse_model("mlp", (1, 8, 8), (32,), 1, 10, density=0.5, epsilon=None,
                         generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    strategy = clbench.make_strategy("sparse_syn", model=model, optimizer=optimizer, evaluator=None)
    assert strategy.model is model and strategy.optimizer is optimizer
    strategy.train(image_digits.train_stream[0])


def test_a_given_model_without_the_methods_layers_is_refused_when_training_starts(image_digits):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    strategy = clbench.make_strategy("kwinners", model=model, evaluator=None)
    with pytest.raises(ValueError, match="found none of its layers"):
        strategy.train(image_digits.train_stream[0])


@pytest.mark.parametrize("kwargs, words", [
    ({}, "give a benchmark"),
    ({"optimizer": object(), "benchmark": "b"}, "an optimizer needs the model"),
])
def test_what_cannot_be_built_is_refused(kwargs, words):
    with pytest.raises(TypeError, match=words):
        clbench.make_strategy("naive", **kwargs)


def test_unknown_strategy_names_the_valid_ones():
    from clbench.errors import UsageError

    with pytest.raises(UsageError, match="Valid strategies: "):
        clbench.make_strategy("sparse_sin", model=torch.nn.Linear(2, 2))


def test_path_plastic_needs_images(avalanche_digits):
    with pytest.raises(ValueError, match=r"needs image inputs \(C, H, W\), not \(64,\)"):
        clbench.make_strategy("path_plastic", benchmark=avalanche_digits)


def trunk_for(method: str):
    """A small trunk holding `method`'s layers, and its number of output features."""
    from torch import nn

    from clbench.nn.hebbian import PlasticLinear
    from clbench.nn.kwinners import KWinners
    from clbench.nn.paths import PathPlasticTrunk
    from clbench.nn.sparse import SparseLinear

    if method == "path_plastic":
        trunk = PathPlasticTrunk(1, widths=(8, 16), stage_lengths=(2, 2), seed=0)
        return trunk, trunk.out_features
    layer = {"sparse_syn": lambda: SparseLinear(64, 64, density=0.5, generator=torch.Generator().manual_seed(0)),
             "kwinners": lambda: nn.Sequential(nn.Linear(64, 64), KWinners(64, percent_on=0.25)),
             "hebbian": lambda: PlasticLinear(64, 64, activation="relu")}[method]()
    return nn.Sequential(nn.Flatten(), layer, nn.ReLU()), 64


@pytest.mark.parametrize("method", ["sparse_syn", "kwinners", "hebbian", "path_plastic"])
def test_plastic_learners_drive_a_model_with_avalanches_multi_head_classifier(method, task_digits):
    """Task-incremental with Avalanche's own heads: the method drives the trunk, Avalanche grows the heads."""
    from avalanche.models import MultiHeadClassifier, MultiTaskModule

    class TrunkWithHeads(MultiTaskModule):
        def __init__(self):
            super().__init__()
            self.trunk, features = trunk_for(method)
            self.heads = MultiHeadClassifier(features, initial_out_features=2)

        def forward_single_task(self, x, task_label):
            return self.heads(self.trunk(x), task_label)

    torch.manual_seed(0)
    model = TrunkWithHeads()
    strategy = clbench.make_strategy(method, model=model, evaluator=accuracy_evaluator(), train_epochs=10,
                                     train_mb_size=64)
    for experience in task_digits.train_stream[:2]:
        strategy.train(experience)
    results = strategy.eval(task_digits.test_stream[:2])
    assert results["Top1_Acc_Exp/eval_phase/test_stream/Task001/Exp001"] > 0.7
    assert len(model.heads.classifiers) == 2  # one head per task, added by Avalanche
    trained = {id(p) for group in strategy.optimizer.param_groups for p in group["params"]}
    assert all(id(p) in trained for p in model.heads.parameters())  # new heads reach the optimizer
