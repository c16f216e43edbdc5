"""The runner's own Avalanche plugins: fast tensor batches, an exact iteration budget, a divergence guard,
progress, an optimizer reset, and the seen/current-classes output masks.

They are ordinary `SupervisedPlugin`s that any clbench run attaches to the
method's strategy (`runner.build`); methods never import this module.
"""

from __future__ import annotations

import math
import warnings
from typing import Callable

import torch
from avalanche.core import SupervisedPlugin
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

from clbench.benchmarks.store import TensorStore
from clbench.benchmarks.streams import tensor_batches
from clbench.errors import UsageError
from clbench.state import AttributeState


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

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


class SilentEvaluator(EvaluationPlugin):
    """Avalanche's evaluator with no metrics and no loggers, whose callbacks return at once.

    clbench's runner evaluates by itself. Avalanche's `EvaluationPlugin` answers every callback through its
    own `__getattribute__` and copies the current experience (`experience.logging()`) before it finds it has
    nothing to do — about eight times an iteration, 10-25% of a small network's training step. Pass a real
    `EvaluationPlugin` to get Avalanche's metrics and loggers.
    """

    def __init__(self):
        with warnings.catch_warnings():  # "No loggers specified": none are wanted
            warnings.simplefilter("ignore")
            super().__init__(loggers=[])

    # plain attribute lookup: no callback is forwarded to metrics, since there are none (Avalanche calls
    # `hasattr`/`getattr` on every plugin for every event, and its evaluator's own lookup runs Python code)
    __getattribute__ = object.__getattribute__

    def before_eval(self, strategy, **kwargs):
        """Nothing to compute or check: the runner's evaluation is its own."""


class IterationBudgetPlugin(AttributeState, SupervisedPlugin):
    """Trains each experience for exactly `iterations` mini-batches (add it last: it sees the final loader).

    The budget is published on the strategy as `strategy.iteration_budget`, for every plugin to read
    (`clbench.strategies.base.planned_iterations`).
    """

    state_keys = ("done",)

    def __init__(self, iterations: int):
        super().__init__()
        self.iterations = iterations
        self.done = 0

    def before_training(self, strategy, **kwargs):
        strategy.iteration_budget = self.iterations

    def before_training_exp(self, strategy, **kwargs):
        self.done = 0
        strategy.train_epochs = math.ceil(self.iterations / max(1, len(strategy.dataloader)))

    def after_training_iteration(self, strategy, **kwargs):
        self.done += 1
        if self.done >= self.iterations:
            strategy.stop_training()  # Avalanche clears the flag when the next `train` call starts


class ResetOptimizerPlugin(AttributeState, SupervisedPlugin):
    """Clears the optimizer's state (SGD momentum, Adam's moments and step counts) before each later experience."""

    state_keys = ("trained",)

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


class OutputMaskPlugin(AttributeState, SupervisedPlugin):
    """Keeps a boolean mask over a single head's outputs in the model buffer `buffer`, applied by `hook`.

    The mask is a buffer of the model, so copies of it (LwF's previous model) keep the mask of their time,
    and a checkpoint of the model holds it; `attach(model)` adds buffer and hook before a model's state
    is loaded into it.
    """

    buffer: str
    hook: Callable
    cumulative: bool  # True: classes stay in the mask once seen; False: only the current experience's

    def __init__(self, n_outputs: int):
        super().__init__()
        self.n_outputs = n_outputs

    def attach(self, model: nn.Module) -> None:
        if not hasattr(model, self.buffer):
            model.register_buffer(self.buffer, torch.zeros(self.n_outputs, dtype=torch.bool,
                                                           device=next(model.parameters()).device))
            model.register_forward_hook(self.hook)

    def before_training_exp(self, strategy, **kwargs):
        model = strategy.model
        self.attach(model)
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


def output_masks(train, scenario: str, n_heads: int, head_size: int) -> list[OutputMaskPlugin]:
    """The output-mask plugins `train` (a TrainConfig) asks for; a UsageError for a multi-head model."""
    masks = []
    for key, plugin in (("seen_classes_only", SeenClassesPlugin), ("current_classes_only", CurrentClassesPlugin)):
        if getattr(train, key):
            if n_heads > 1:
                raise UsageError(f"{key}=true masks a single head; scenario '{scenario}' has one head per "
                                 f"task; valid: --scenario class or domain, or {key}=false.")
            masks.append(plugin(head_size))
    return masks


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""

    def __init__(self, experience: int, iteration: int, loss: float):
        super().__init__(f"non-finite loss {loss} at experience {experience}, iteration {iteration}")
        self.where = {"experience": experience, "iteration": iteration, "loss": str(loss)}


class DivergenceGuardPlugin(AttributeState, SupervisedPlugin):
    """Stops the run at the first non-finite loss."""

    state_keys = ("iteration",)

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


class ProgressPlugin(AttributeState, SupervisedPlugin):
    """Calls `update(done, total)` as training iterations complete."""

    state_keys = ("done", "total")

    def __init__(self, update: Callable[[int, int], None]):
        super().__init__()
        self.update = update
        self.done = self.total = 0

    def before_training_exp(self, strategy, **kwargs):
        self.done = 0
        self.total = getattr(strategy, "iteration_budget", 0) or strategy.train_epochs * len(strategy.dataloader)

    def after_training_iteration(self, strategy, **kwargs):
        self.done += 1
        self.update(min(self.done, self.total), self.total)
