"""kwinners: k-winners-take-all activations with boosting and fixed sparse weights.

`KWinnersPlugin` drives the `clbench.nn.kwinners` modules of any model: it
re-applies the weight masks after every optimizer step, decays the boost
strength once per epoch and records activity statistics. `SparseKWinners`
is an Avalanche `SupervisedTemplate` with the plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from avalanche.models import MultiTaskModule
from torch import Tensor, nn

from clbench.config import RunConfig
from clbench.errors import UsageError
from clbench.nn.kwinners import kwinners_layers, kwinners_model, update_boost_strength
from clbench.nn.masked import rezero_weights
from clbench.nn.optim import clamp_second_moments
from clbench.strategies.base import MethodPlugin, MethodStrategy, given_or_built, template_kwargs
from clbench.strategies.kwinners import KWinnersConfig

if TYPE_CHECKING:
    from clbench.benchmarks.store import Benchmark


def duty_cycle_entropy(duty_cycles: Tensor) -> float:
    """Mean binary entropy (bits) of the units' duty cycles: high when every unit is used evenly."""
    p = duty_cycles.clamp(1e-12, 1 - 1e-12)
    return float((-(p * p.log2()) - (1 - p) * (1 - p).log2()).mean())


class ActivityProbe:
    """Fraction of active (> 0) units per sample at every k-WTA layer, gathered by forward hooks.

    Keeps running sums (count, Σ, Σ²) per layer, so a long experience costs no memory.
    """

    def __init__(self, model: nn.Module):
        self.sums: dict[str, Tensor] = {}
        self.handles = [module.register_forward_hook(self._hook(name)) for name, module in kwinners_layers(model)]

    def _hook(self, name: str):
        def record(module, inputs, output):
            fractions = (output.detach() > 0).flatten(1).double().mean(1)
            batch = torch.stack([fractions.new_tensor(len(fractions)), fractions.sum(), fractions.pow(2).sum()])
            self.sums[name] = self.sums[name] + batch if name in self.sums else batch
        return record

    def summary(self) -> dict[str, list[float]]:
        """{layer: [mean, sample std]} over every sample seen."""
        out = {}
        for name, (count, total, squares) in self.sums.items():
            mean = total / count
            var = (squares - count * mean**2) / (count - 1) if count > 1 else torch.zeros(())
            out[name] = [float(mean), float(var.clamp(min=0).sqrt())]
        return out

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


class KWinnersPlugin(MethodPlugin):
    """Keeps sparse weights sparse, decays boosting per epoch, and measures activity.

    After every step it also lifts Adam's exact-zero second moments (the weights of units that
    never win) to a tiny normal number: square roots of exact zeros are several times slower on
    CPUs, and without this a k-WTA MLP trains ~1.4x slower than its dense twin. Every key of
    `KWinnersConfig` describes the model (its k-WTA and sparse layers); `probe_samples` is how many
    training samples the eval-mode activity is measured on after each experience.
    """

    config_class = KWinnersConfig
    required_layers = "KWinners or KWinners2d layers (clbench.nn.kwinners; kwinners_model builds them)"
    state_keys = ("train_activity", "eval_activity")  # the rest lives in the model's buffers

    def finds_layers(self, model: nn.Module) -> bool:
        return bool(kwinners_layers(model))

    def __init__(self, config: KWinnersConfig | None = None, *, probe_samples: int = 2048, **hparams):
        super().__init__(config, **hparams)
        self.probe_samples = probe_samples
        self._train_probe: ActivityProbe | None = None
        self.train_activity: dict[str, list[float]] = {}
        self.eval_activity: dict[str, list[float]] = {}

    def before_training_exp(self, strategy, **kwargs):
        self._train_probe = ActivityProbe(strategy.model)

    def after_update(self, strategy, **kwargs):
        clamp_second_moments(strategy.optimizer)
        rezero_weights(strategy.model)

    def after_training_epoch(self, strategy, **kwargs):
        update_boost_strength(strategy.model)

    def after_training_exp(self, strategy, **kwargs):
        if self._train_probe is not None:
            self.train_activity = self._train_probe.summary()
            self._train_probe.remove()
            self._train_probe = None
        self.eval_activity = self.measure_eval_activity(strategy)

    @torch.no_grad()
    def measure_eval_activity(self, strategy) -> dict[str, list[float]]:
        """Activity in eval mode on up to `probe_samples` training samples of the experience just learnt."""
        model = strategy.model
        was_training = model.training
        model.eval()
        probe = ActivityProbe(model)
        try:
            seen = 0
            for batch in strategy.dataloader:
                x, t = batch[0].to(strategy.device), batch[-1].to(strategy.device)
                model(x, t) if isinstance(model, MultiTaskModule) else model(x)
                seen += len(x)
                if seen >= self.probe_samples:
                    break
        finally:
            probe.remove()
            model.train(was_training)
        return probe.summary()

    def record_extras(self, strategy) -> dict:
        layers = kwinners_layers(strategy.model)
        return {
            "active_train": self.train_activity,
            "active_eval": self.eval_activity,
            "duty_cycle_entropy": {name: duty_cycle_entropy(layer.duty_cycles) for name, layer in layers},
            "boost_strength": {name: float(layer.boost_strength) for name, layer in layers},
        }


class SparseKWinners(MethodStrategy):
    """An Avalanche strategy for models with k-WTA layers and sparse weights (`KWinnersPlugin`, as `kwinners=`)."""

    plugin_class, plugin_keyword = KWinnersPlugin, "kwinners"


def build(cfg: RunConfig, benchmark: Benchmark, plugins: list, **given) -> SparseKWinners:
    """`given`: a model (with k-WTA layers) or other template keywords to use instead of clbench's."""
    m = cfg.method
    if m.weight_init == "density" and cfg.train.backbone != "mlp":
        raise UsageError(f"weight_init=density is defined for the mlp backbone, not '{cfg.train.backbone}'; "
                         "use weight_init=pytorch or --set backbone=mlp")
    model = given_or_built(given, lambda: kwinners_model(
        cfg.train.backbone, benchmark.input_shape, cfg.train.hidden, benchmark.n_heads, benchmark.head_size,
        percent_on=m.percent_on, sparsity=m.sparsity, percent_on_conv=m.percent_on_conv,
        sparsity_conv=m.sparsity_conv, generator=torch.Generator().manual_seed(cfg.seed),
        sparsity_head=m.sparsity_head, weight_init=m.weight_init, k_inference_factor=m.k_inference_factor,
        boost_strength=m.boost_strength, boost_strength_factor=m.boost_strength_factor,
        duty_cycle_period=m.duty_cycle_period), benchmark)
    return SparseKWinners(**template_kwargs(cfg, benchmark, plugins, model=model, **given),
                          kwinners=KWinnersPlugin.from_config(m))
