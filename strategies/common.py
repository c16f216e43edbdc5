"""What every clbench strategy shares: the model, the optimizer, harness plugins.

Harness plugins are ordinary Avalanche plugins: fast tensor batches, an exact
iteration budget per experience, a divergence guard and a progress hook.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from avalanche.core import SupervisedPlugin
from avalanche.models import MultiTaskModule
from torch import nn

from clbench.benchmarks.store import Benchmark, TensorStore
from clbench.benchmarks.streams import tensor_batches
from clbench.config import RunConfig, TrainConfig
from clbench.nn import MultiHead, build_model


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


def make_optimizer(train: TrainConfig, params) -> torch.optim.Optimizer:
    if train.optimizer == "adam":
        return torch.optim.Adam(params, lr=train.lr, weight_decay=train.weight_decay)
    return torch.optim.SGD(params, lr=train.lr, momentum=train.momentum, weight_decay=train.weight_decay)


def parameter_groups(model: nn.Module, weight_decay: float, spare_output: bool = False) -> list:
    """The model's parameters for the optimizer, with task heads exempt from weight decay.

    In task-incremental runs the heads of the tasks not being trained get no loss
    gradient, but coupled L2 (SGD's and Adam's `weight_decay`) still pulls them to
    zero: within an experience they collapse and their tasks fall to chance with
    their features intact. So a multi-head output layer takes no decay, nor a
    single head whose absent classes get no loss (`spare_output`).
    """
    heads = [p for m in model.modules() if isinstance(m, MultiHead) and (m.n_heads > 1 or spare_output)
             for p in m.parameters()]
    if weight_decay == 0 or not heads:
        return list(model.parameters())
    in_heads = {id(p) for p in heads}
    return [{"params": [p for p in model.parameters() if id(p) not in in_heads]},
            {"params": heads, "weight_decay": 0.0}]


def template_kwargs(cfg: RunConfig, benchmark: Benchmark, plugins: list, model: nn.Module | None = None) -> dict[str, Any]:
    """Keyword arguments of every Avalanche template built by clbench (default model: the benchmark's)."""
    model = model if model is not None else make_model(cfg, benchmark)
    return dict(
        model=model,
        optimizer=make_optimizer(cfg.train, parameter_groups(model, cfg.train.weight_decay,
                                                             cfg.train.current_classes_only)),
        criterion=nn.CrossEntropyLoss(),
        train_mb_size=cfg.train.batch_size,
        train_epochs=cfg.train.epochs,
        eval_mb_size=cfg.train.eval_batch_size,
        device=cfg.device,
        plugins=list(plugins),
        evaluator=None,
    )


class TensorBatchesPlugin(SupervisedPlugin):
    """Feeds tensor-sliced batches instead of Avalanche's per-sample DataLoader."""

    def __init__(self, store: TensorStore, seed: int):
        super().__init__()
        self.store = store
        self.generator = torch.Generator().manual_seed(seed)

    def before_training_exp(self, strategy, **kwargs):
        loader = tensor_batches(strategy.adapted_dataset, self.store, strategy.train_mb_size, True, self.generator)
        if loader is not None:
            strategy.dataloader = loader

    def before_eval_exp(self, strategy, **kwargs):
        loader = tensor_batches(strategy.adapted_dataset, self.store, strategy.eval_mb_size, False)
        if loader is not None:
            strategy.dataloader = loader


class IterationBudgetPlugin(SupervisedPlugin):
    """Trains each experience for exactly `iterations` mini-batches (add it last)."""

    def __init__(self, iterations: int):
        super().__init__()
        self.iterations = iterations
        self.done = 0

    def before_training_exp(self, strategy, **kwargs):
        self.done = 0
        strategy._stop_training = False
        strategy.train_epochs = math.ceil(self.iterations / max(1, len(strategy.dataloader)))

    def after_training_iteration(self, strategy, **kwargs):
        self.done += 1
        if self.done >= self.iterations:
            strategy.stop_training()


class ResetOptimizerPlugin(SupervisedPlugin):
    """Clears the optimizer's state (SGD momentum, Adam's moments and step counts) before each later experience."""

    def __init__(self):
        super().__init__()
        self.trained = False

    def before_training_exp(self, strategy, **kwargs):
        if self.trained:
            strategy.optimizer.state.clear()

    def after_training_exp(self, strategy, **kwargs):
        self.trained = True


UNSEEN_LOGIT = -1e9


def mask_unseen_outputs(module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
    """Forward hook: the logits of the classes not yet seen become very negative (never predicted, no loss)."""
    return output.masked_fill(~module.seen_outputs, UNSEEN_LOGIT)


def mask_absent_outputs(module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
    """Forward hook: in training, the logits of the classes outside the current experience get no loss."""
    return output.masked_fill(~module.current_outputs, UNSEEN_LOGIT) if module.training else output


class OutputMaskPlugin(SupervisedPlugin):
    """Keeps a boolean mask over a single head's outputs in the model buffer `buffer`, applied by `hook`.

    The mask is a buffer of the model, so copies of it (LwF's previous model) keep the mask of their time.
    """

    buffer: str
    hook: Callable
    cumulative: bool  # True: classes stay in the mask once seen; False: only the current experience's

    def __init__(self, n_outputs: int):
        super().__init__()
        self.n_outputs = n_outputs

    def before_training_exp(self, strategy, **kwargs):
        model = strategy.model
        if not hasattr(model, self.buffer):
            model.register_buffer(self.buffer, torch.zeros(self.n_outputs, dtype=torch.bool,
                                                           device=next(model.parameters()).device))
            model.register_forward_hook(self.hook)
        mask = getattr(model, self.buffer)
        if not self.cumulative:
            mask.fill_(False)
        mask[list(strategy.experience.classes_in_this_experience)] = True


class SeenClassesPlugin(OutputMaskPlugin):
    """Restricts a single-head model's outputs to the classes seen so far (van de Ven & Tolias's active classes)."""

    buffer, hook, cumulative = "seen_outputs", staticmethod(mask_unseen_outputs), True


class CurrentClassesPlugin(OutputMaskPlugin):
    """Trains a single-head model's outputs on the current experience's classes only (the labels trick).

    The other classes' logits are masked in training mode, so their output rows get
    no gradient and cannot be pushed down by classes they never compete with;
    evaluation sees every output. A class whose samples are in the mini-batch all
    the same (replayed, or retrained by `cumulative`) takes part in the loss.
    """

    buffer, hook, cumulative = "current_outputs", staticmethod(mask_absent_outputs), False

    def before_training_exp(self, strategy, **kwargs):
        super().before_training_exp(strategy, **kwargs)
        self.experience_mask = strategy.model.current_outputs.clone()

    def before_forward(self, strategy, **kwargs):
        mask = strategy.model.current_outputs
        mask.copy_(self.experience_mask)
        mask[strategy.mb_y.unique()] = True


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""

    def __init__(self, experience: int, iteration: int, loss: float):
        super().__init__(f"non-finite loss {loss} at experience {experience}, iteration {iteration}")
        self.where = {"experience": experience, "iteration": iteration, "loss": str(loss)}


class DivergenceGuardPlugin(SupervisedPlugin):
    """Stops the run at the first non-finite loss."""

    def __init__(self):
        super().__init__()
        self.iteration = 0

    def before_training_exp(self, strategy, **kwargs):
        self.iteration = 0

    def before_backward(self, strategy, **kwargs):
        if not torch.isfinite(strategy.loss):
            experience = strategy.experience.current_experience if strategy.experience else -1
            raise Diverged(experience, self.iteration, float(strategy.loss.detach()))

    def after_training_iteration(self, strategy, **kwargs):
        self.iteration += 1


class ProgressPlugin(SupervisedPlugin):
    """Calls `update(done, total)` as training iterations complete."""

    def __init__(self, update: Callable[[int, int], None], iterations: int = 0):
        super().__init__()
        self.update, self.iterations = update, iterations
        self.done = self.total = 0

    def before_training_exp(self, strategy, **kwargs):
        self.done = 0
        self.total = self.iterations or strategy.train_epochs * len(strategy.dataloader)

    def after_training_iteration(self, strategy, **kwargs):
        self.done += 1
        self.update(min(self.done, self.total), self.total)
