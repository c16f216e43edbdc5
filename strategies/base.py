"""What every clbench strategy is built from: the model wrapper, the optimizer, the template base classes.

A method's plugin derives from `MethodPlugin` (its hyperparameters are one
frozen config, the registered defaults) and its strategy from `MethodStrategy`
(Avalanche's `SupervisedTemplate` with that plugin attached). Builders turn a
resolved `RunConfig` into keyword arguments with `template_kwargs`.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import torch
from avalanche.core import SupervisedPlugin
from avalanche.models import MultiTaskModule
from avalanche.training.templates import SupervisedTemplate
from torch import nn

from clbench.config import RunConfig, with_values
from clbench.harness import SilentEvaluator
from clbench.loggers import default_evaluator_with_statistics
from clbench.nn import MultiHead, build_model
from clbench.nn.optim import make_optimizer, parameter_groups
from clbench.state import AttributeState

if TYPE_CHECKING:
    from clbench.benchmarks.store import Benchmark


class TaskAwareModel(MultiTaskModule):
    """Avalanche view of a multi-head `clbench.nn.Classifier` (task-incremental runs)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, task_labels: torch.Tensor | int | None) -> torch.Tensor:
        if task_labels is None:  # every known head, as a {task: logits} dict (used by LwF)
            return self.forward_all_tasks(x)
        if isinstance(task_labels, int):
            task_labels = torch.full((len(x),), task_labels, dtype=torch.long, device=x.device)
        return self.net(x, task_labels)

    def forward_single_task(self, x: torch.Tensor, task_label: int) -> torch.Tensor:
        return self.forward(x, task_label)


def for_avalanche(net: nn.Module, benchmark: Benchmark) -> nn.Module:
    """`net` as Avalanche must see it: a MultiTaskModule when it has one head per task."""
    return TaskAwareModel(net) if benchmark.n_heads > 1 else net


def make_model(cfg: RunConfig, benchmark: Benchmark) -> nn.Module:
    """The benchmark's default network, wrapped for Avalanche in task-incremental mode."""
    return for_avalanche(build_model(cfg.train.backbone, benchmark.input_shape, cfg.train.hidden,
                                     benchmark.n_heads, benchmark.head_size), benchmark)


def output_head_parameters(model: nn.Module, spare_output: bool = False) -> list[nn.Parameter]:
    """Parameters of the output layers that take no weight decay.

    In task-incremental runs the heads of the tasks not being trained get no loss
    gradient, but coupled L2 (SGD's and Adam's `weight_decay`) still pulls them to
    zero: within an experience they collapse and their tasks fall to chance with
    their features intact. So a multi-head output layer takes no decay, nor a
    single head whose absent classes get no loss (`spare_output`).
    """
    return [p for m in model.modules() if isinstance(m, MultiHead) and (m.n_heads > 1 or spare_output)
            for p in m.parameters()]


def template_kwargs(cfg: RunConfig, benchmark: Benchmark, plugins: list, model: nn.Module | None = None,
                    **given: Any) -> dict[str, Any]:
    """Keyword arguments of every Avalanche template built by clbench.

    Default model: the benchmark's; default optimizer: `cfg`'s over the model's parameter groups; default
    evaluator: a silent one (clbench's runner evaluates by itself). `given` keywords that are not None
    (an `optimizer`, a `criterion`, an `evaluator`, any other `SupervisedTemplate` keyword) replace them.
    """
    model = model if model is not None else make_model(cfg, benchmark)
    train = cfg.train
    kwargs: dict[str, Any] = dict(model=model, criterion=nn.CrossEntropyLoss(), train_mb_size=train.batch_size,
                                  train_epochs=train.epochs, eval_mb_size=train.eval_batch_size, device=cfg.device,
                                  plugins=list(plugins), evaluator=SilentEvaluator())
    kwargs.update({key: value for key, value in given.items() if value is not None})
    if "optimizer" not in kwargs:
        decay_free = output_head_parameters(model, train.current_classes_only)
        kwargs["optimizer"] = make_optimizer(train.optimizer, parameter_groups(model, train.weight_decay, decay_free),
                                             train.lr, train.momentum, train.weight_decay)
    return kwargs


def given_or_built(given: dict[str, Any], build: Callable[[], nn.Module], benchmark: Benchmark) -> nn.Module:
    """The model a caller passed in `given` (taken out of it), else `build()` wrapped for the benchmark."""
    model = given.pop("model", None)
    return model if model is not None else for_avalanche(build(), benchmark)


def planned_iterations(strategy) -> int:
    """Training iterations of the current experience: the budget the harness published on the strategy
    (`strategy.iteration_budget`), else epochs x batches of the current data loader."""
    return getattr(strategy, "iteration_budget", 0) or strategy.train_epochs * max(1, len(strategy.dataloader))


class MethodPlugin(AttributeState, SupervisedPlugin):
    """An Avalanche plugin whose hyperparameters are one frozen config: the method's registered defaults.

    `Plugin()` takes the defaults, `Plugin(config)` a config, `Plugin(key=value, ...)` the defaults
    with some keys changed (checked like `--set`); the result is `plugin.config`. Its state for a
    checkpoint: the attributes in `state_keys`, or its own `state_dict` / `load_state_dict`.
    """

    config_class: ClassVar[type]
    required_layers: ClassVar[str] = ""  # what the plugin drives in a model, named in the error if absent

    def __init__(self, config: Any = None, **hparams: Any):
        super().__init__()
        self.config = with_values(config if config is not None else self.config_class(), hparams,
                                  owner=type(self).__name__)

    def finds_layers(self, model: nn.Module) -> bool:
        """Whether `model` holds the layers this plugin drives."""
        return True

    def before_training(self, strategy, **kwargs):
        """A model without the plugin's layers would train as plain fine-tuning: refused, saying what is needed."""
        if not self.finds_layers(strategy.model):
            model = type(strategy.model).__name__
            raise ValueError(f"{type(self).__name__} found none of its layers in the model ({model}): it needs "
                             f"{self.required_layers}. Build the model with them, or leave the plugin out.")

    @classmethod
    def from_config(cls, config: Any, **context: Any) -> MethodPlugin:
        """The plugin for a resolved method config (`context`: run facts such as the seed)."""
        return cls(config, **context)


class MethodStrategy(SupervisedTemplate):
    """Avalanche's `SupervisedTemplate` with one method plugin attached after the given `plugins`.

    The plugin is passed under the keyword `plugin_keyword` (and kept as that attribute), or built
    from the method's hyperparameters given as keywords, like Avalanche's `EWC(..., ewc_lambda=...)`.
    Without an `evaluator`, Avalanche's default one is used with the method's statistics added
    (`clbench.loggers.MethodStatistics`), so its loggers show them.
    Each subclass gets an `__init__` whose signature lists those keywords (Avalanche checks every
    keyword against the signatures).
    """

    plugin_class: ClassVar[type[MethodPlugin]]
    plugin_keyword: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any):
        if "plugin_class" in cls.__dict__:
            cls.__init__ = _signed_init(cls)
        super().__init_subclass__(**kwargs)

    def __init__(self, *, model: nn.Module, optimizer, plugins: list | None = None, **kwargs: Any):
        self._attach_plugin(model=model, optimizer=optimizer, plugins=plugins, **kwargs)

    def _attach_plugin(self, *, model: nn.Module, optimizer, plugins: list | None = None, **kwargs: Any) -> None:
        plugin = kwargs.pop(self.plugin_keyword, None)
        keys = {f.name for f in dataclasses.fields(self.plugin_class.config_class)}
        hparams = {key: kwargs.pop(key) for key in list(kwargs) if key in keys}
        if plugin is None:
            plugin = self.plugin_class(**hparams)
        elif hparams:
            raise TypeError(f"{type(self).__name__}: give {', '.join(sorted(hparams))} to the plugin passed as "
                            f"'{self.plugin_keyword}', or drop the plugin and pass them here")
        setattr(self, self.plugin_keyword, plugin)
        kwargs.setdefault("evaluator", default_evaluator_with_statistics)  # Avalanche's default + the statistics
        super().__init__(model=model, optimizer=optimizer, plugins=[*(plugins or []), plugin], **kwargs)


def _signed_init(cls: type[MethodStrategy]):
    """`MethodStrategy.__init__` with a signature naming `cls`'s plugin keyword and hyperparameters."""

    def __init__(self, **kwargs: Any) -> None:
        self._attach_plugin(**kwargs)

    defaults = cls.plugin_class.config_class()
    keyword = inspect.Parameter.KEYWORD_ONLY
    __init__.__signature__ = inspect.Signature([
        inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("model", keyword), inspect.Parameter("optimizer", keyword),
        inspect.Parameter("plugins", keyword, default=None),
        inspect.Parameter(cls.plugin_keyword, keyword, default=None),
        *(inspect.Parameter(f.name, keyword, default=getattr(defaults, f.name))
          for f in dataclasses.fields(defaults)),
        inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD),
    ])
    __init__.__doc__ = f"{cls.__doc__}\n\nOther keywords go to Avalanche's `SupervisedTemplate`."
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__
