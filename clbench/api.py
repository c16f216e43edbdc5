"""`make_strategy`: a registered strategy as an Avalanche strategy, for the user's own Avalanche benchmark.

    from avalanche.benchmarks.classic import SplitMNIST
    import clbench

    benchmark = SplitMNIST(5)
    strategy = clbench.make_strategy("sparse_syn", benchmark=benchmark, grow=0.05, lr=1e-3)
    for experience in benchmark.train_stream:
        strategy.train(experience)
        strategy.eval(benchmark.test_stream)

Hyperparameters are the keys `clbench list` shows: a method's own (`grow`), the training keys
(`lr`, `hidden`, `batch_size`, ...); defaults and valid values are the registered ones.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

from clbench.config import RunConfig, TrainConfig, with_values
from clbench.registry import STRATEGIES

AVALANCHE_DEFAULT = "avalanche default"  # `evaluator` omitted: Avalanche's default one, with the method statistics


@dataclass(frozen=True)
class StreamShape:
    """What a builder needs to know of a benchmark to build the method's model and plugins."""

    input_shape: tuple[int, ...] | None
    n_heads: int = 1  # one per task label in task-incremental streams
    head_size: int = 0  # outputs of each head
    n_experiences: int = 1


def experience_labels(experience) -> tuple[set[int], set[int]]:
    """(classes, task labels) of an Avalanche experience of any 0.6 kind."""
    dataset = experience.dataset
    classes = getattr(experience, "classes_in_this_experience", None)
    if classes is None:
        classes = dataset.targets.uniques
    tasks = getattr(experience, "task_labels", None)
    if tasks is None:
        task_attribute = getattr(dataset, "targets_task_labels", None)
        tasks = task_attribute.uniques if task_attribute is not None else [0]
    return {int(c) for c in classes}, {int(t) for t in tasks}


def stream_shape(benchmark) -> StreamShape:
    """Input shape, heads and classes of an Avalanche benchmark, read from its training stream.

    More than one task label makes a multi-head model (one head per task label, each over every
    class); otherwise one head over every class.
    """
    stream = list(benchmark.train_stream)
    if not stream:
        raise ValueError("make_strategy: the benchmark's train_stream is empty; give a benchmark with experiences")
    classes: set[int] = set()
    tasks: set[int] = set()
    for experience in stream:
        exp_classes, exp_tasks = experience_labels(experience)
        classes |= exp_classes
        tasks |= exp_tasks
    n_classes = int(getattr(benchmark, "n_classes", 0) or max(classes) + 1)
    input_shape = tuple(stream[0].dataset[0][0].shape)
    n_heads = max(tasks) + 1 if len(tasks) > 1 else 1
    return StreamShape(input_shape, n_heads, n_classes, len(stream))


def hyperparameters(name: str, values: dict[str, Any]) -> tuple[RunConfig, dict[str, Any]]:
    """The run config of strategy `name` with `values` (method and training keys; checked like `--set`), and
    the values left over (keywords for Avalanche's template)."""
    entry = STRATEGIES.get(name)
    method_keys = {f.name for f in dataclasses.fields(entry.config)}
    train_keys = {f.name for f in dataclasses.fields(TrainConfig)}
    protocol = {key: value for key, value in entry.protocol.items() if key in method_keys | train_keys}
    merged = {**protocol, **values}
    method = with_values(entry.config(), {k: v for k, v in merged.items() if k in method_keys}, owner=entry.name)
    train = with_values(TrainConfig(), {k: v for k, v in merged.items() if k in train_keys}, owner=entry.name)
    rest = {k: v for k, v in values.items() if k not in method_keys | train_keys}
    cfg = RunConfig(benchmark="custom", strategy=entry.name, scenario="class", seed=0, train=train, bench=None,
                    method=method)
    return cfg, rest


def make_strategy(name: str, model=None, benchmark=None, *, optimizer=None, criterion=None,
                  evaluator: Any = AVALANCHE_DEFAULT, plugins: Sequence = (), seed: int = 0, device: str = "cpu",
                  **hparams: Any):
    """A registered strategy as an Avalanche strategy (`SupervisedTemplate`), ready for `train`/`eval`.

    `model`: None builds the method's own network for `benchmark` (an Avalanche benchmark: its input
    shape, classes and task labels); a given model must hold the layers the method drives.
    `optimizer`: a torch optimizer over `model`'s parameters; else the configured one (`optimizer="sgd"` or
    "adam", `lr`, ...) is made over the model's parameter groups.
    `evaluator`: as in Avalanche: omitted, its default evaluator (accuracy and loss, printed) with the
    method's statistics (`clbench.loggers.MethodStatistics`); None, no metrics; or your `EvaluationPlugin`.
    `plugins`: more Avalanche plugins. `seed`: seeds the method's own generators (masks, regrowth).
    `hparams`: the strategy's keys and the training keys (`clbench list`), then any other keyword of
    Avalanche's template (`eval_every`, ...).
    """
    from clbench.harness import SilentEvaluator
    from clbench.loggers import default_evaluator_with_statistics

    if isinstance(optimizer, str):  # the training key (sgd, adam), not an optimizer object
        hparams["optimizer"], optimizer = optimizer, None
    if model is None and benchmark is None:
        raise TypeError("make_strategy: give a benchmark (to build the method's model for it) or a model")
    if optimizer is not None and model is None:
        raise TypeError("make_strategy: an optimizer needs the model it optimises; pass the model too, or drop "
                        "the optimizer to get the configured one")
    cfg, template = hyperparameters(name, dict(hparams))
    shape = stream_shape(benchmark) if benchmark is not None else StreamShape(None)
    scenario = "task" if shape.n_heads > 1 else "class"
    cfg = dataclasses.replace(cfg, scenario=scenario, seed=seed, device=device)
    build = STRATEGIES.get(name).load_builder()
    if isinstance(evaluator, str) and evaluator == AVALANCHE_DEFAULT:
        evaluator = default_evaluator_with_statistics
    return build(cfg, shape, list(plugins), model=model, optimizer=optimizer, criterion=criterion,
                 evaluator=SilentEvaluator() if evaluator is None else evaluator, **template)
