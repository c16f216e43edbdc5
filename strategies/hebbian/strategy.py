"""hebbian: batched differentiable Hebbian plasticity as a continual learner (DHP Softmax).

`HebbianPlugin` writes the shared Hebbian traces of a model's `PlasticLinear`
layers after every training batch: the output layer with the one-hot target
as post-synaptic activity (`post="target"`, DHP Softmax) or its own softmax
output (`post="output"`), hidden layers with their own activity. Traces are
never written during evaluation, and are kept across experiences unless
`reset_per_experience`. `Hebbian` is an Avalanche `SupervisedTemplate` with
the plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from clbench.config import RunConfig
from clbench.nn.hebbian import PlasticLinear, hebbian_model, plastic_layers, traces_off
from clbench.nn.networks import MultiHead
from clbench.strategies.base import MethodPlugin, MethodStrategy, given_or_built, template_kwargs
from clbench.strategies.hebbian import HebbianConfig

if TYPE_CHECKING:
    from clbench.benchmarks.store import Benchmark


def output_layer(model: nn.Module) -> tuple[PlasticLinear | None, MultiHead | None]:
    """The plastic layer that produces the logits (the last one), and the multi-head around it if any."""
    heads = [m for m in model.modules() if isinstance(m, MultiHead) and isinstance(m.linear, PlasticLinear)]
    if heads:
        return heads[-1].linear, heads[-1]
    layers = plastic_layers(model)
    return (layers[-1][1] if layers else None), None


class HebbianPlugin(MethodPlugin):
    """Writes Hebbian traces after each training batch and handles them at experience boundaries.

    Hyperparameters: the keys of `HebbianConfig` that act on training (post, reset_per_experience);
    the others describe the model's plastic layers.

    `flush_denormals`: while training, treat floats below 1.2e-38 as zero on the CPU
    (`torch.set_flush_denormal`, switched off again after training; torch cannot read the
    setting back; a training that raises leaves it on, and clbench's runner resets it before
    every run). Early in training the trace term makes the logits span more than 87, the
    softmax of the other classes underflows to denormal numbers, and their arithmetic made the
    first experience 2-3x slower than the others.
    """

    config_class = HebbianConfig
    required_layers = "PlasticLinear layers (clbench.nn.hebbian; hebbian_model builds them)"
    state_keys = ("writes",)  # the traces live in the model's buffers

    def finds_layers(self, model: nn.Module) -> bool:
        return bool(plastic_layers(model))

    def __init__(self, config: HebbianConfig | None = None, *, flush_denormals: bool = True, **hparams):
        super().__init__(config, **hparams)
        self.flush_denormals = flush_denormals
        self.writes = 0

    def before_training(self, strategy, **kwargs):
        super().before_training(strategy, **kwargs)
        if self.flush_denormals:
            torch.set_flush_denormal(True)

    def after_training(self, strategy, **kwargs):
        if self.flush_denormals:
            torch.set_flush_denormal(False)

    def before_training_exp(self, strategy, **kwargs):
        if self.config.reset_per_experience:
            for _, layer in plastic_layers(strategy.model):
                layer.reset_trace()

    def after_update(self, strategy, **kwargs):
        out_layer, head = output_layer(strategy.model)
        for _, layer in plastic_layers(strategy.model):
            layer.project_rate()
            if layer is out_layer:
                layer.write_trace(post=self._output_post(layer, head, strategy))
            else:
                layer.write_trace()
        self.writes += 1

    def _output_post(self, layer: PlasticLinear, head: MultiHead | None, strategy) -> torch.Tensor | None:
        if self.config.post == "output":
            return None if layer.last_output is None else F.softmax(layer.last_output, dim=1)
        y = strategy.mb_y
        units = head.units(y, strategy.mb_task_id) if head is not None else y
        return F.one_hot(units, layer.out_features).float()

    def evaluation_ablations(self, strategy) -> dict:
        """Evaluations the runner adds to the record: the accuracy with every trace zeroed at test time (what
        the fast weights contribute on top of the slow ones)."""
        return {"accuracy_without_trace": lambda: traces_off(strategy.model)}

    def record_extras(self, strategy) -> dict:
        layers = plastic_layers(strategy.model)
        return {
            "trace_norm": {name: float(layer.current_trace().detach().norm()) for name, layer in layers},
            "alpha_norm": {name: float(layer.alpha.detach().norm()) for name, layer in layers},
            "eta": {name: float(layer.rate().detach()) for name, layer in layers},
        }


class Hebbian(MethodStrategy):
    """An Avalanche strategy for models with plastic layers (`HebbianPlugin`, as `hebbian=`)."""

    plugin_class, plugin_keyword = HebbianPlugin, "hebbian"


def consolidation_plugins(cfg: RunConfig) -> list:
    """EWC (merged penalty) and (copying) SI plugins when `ewc_lambda` / `si_lambda` ask for them: DHP combined
    with a synaptic consolidation method, as in DHP's own experiments."""
    from clbench.strategies.baselines.ewc import MergedEWCPlugin
    from clbench.strategies.baselines.strategy import FastSIPlugin

    m = cfg.method
    return [*([MergedEWCPlugin(m.ewc_lambda)] if m.ewc_lambda else []),
            *([FastSIPlugin(si_lambda=m.si_lambda)] if m.si_lambda else [])]


def build(cfg: RunConfig, benchmark: Benchmark, plugins: list, **given) -> Hebbian:
    """`given`: a model (with a plastic layer) or other template keywords to use instead of clbench's."""
    m = cfg.method
    model = given_or_built(given, lambda: hebbian_model(
        cfg.train.backbone, benchmark.input_shape, cfg.train.hidden, benchmark.n_heads, benchmark.head_size,
        plastic_hidden=m.plastic_hidden, rule=m.rule, alpha=m.alpha, eta=m.eta, alpha_init=m.alpha_init,
        alpha_init_dist=m.alpha_init_dist), benchmark)
    return Hebbian(**template_kwargs(cfg, benchmark, [*plugins, *consolidation_plugins(cfg)], model=model, **given),
                   hebbian=HebbianPlugin.from_config(m))
