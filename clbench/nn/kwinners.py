"""k-winners-take-all activations with boosting, and fixed sparse weights.

The functions are stateless; the modules keep duty cycles and the boost
strength in buffers. Semantics (Ahmad & Scheinkman 2019, "How Can We Be So
Dense?"): winners are chosen on the boosted values x·exp(−β·duty_cycle), the
unboosted x is passed on, every other unit outputs 0 and gets no gradient.
Ties at the k-th boosted value all win unless `break_ties`.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn

from clbench.nn.masked import MaskedWeights
from clbench.nn.networks import Classifier, build_model


def kwinners_mask(boosted: Tensor, k: int, break_ties: bool = False) -> Tensor:
    """Boolean mask of the winners along the last dimension of `boosted` ([..., n]).

    Every value >= the k-th largest wins (ties may give more than k winners);
    with `break_ties` exactly k win (the first ones in `torch.topk`'s order).
    """
    n = boosted.shape[-1]
    if k <= 0:
        return torch.zeros_like(boosted, dtype=torch.bool)
    if k >= n:
        return torch.ones_like(boosted, dtype=torch.bool)
    if break_ties:
        idx = torch.topk(boosted, k, dim=-1, sorted=False).indices
        return torch.zeros_like(boosted, dtype=torch.bool).scatter_(-1, idx, True)
    threshold = torch.topk(boosted, k, dim=-1, sorted=False).values.min(dim=-1, keepdim=True).values
    return boosted >= threshold


def kwinners(x: Tensor, duty_cycles: Tensor, k: int, boost_strength: float, break_ties: bool = False,
             relu: bool = False) -> Tensor:
    """k-WTA over the last dimension of `x` ([..., n]) with boosting by `duty_cycles` ([n]).

    Returns x at the winners and 0 elsewhere (losers get zero gradient). `relu`
    also silences winners whose value is not positive, as if a ReLU came first.
    """
    boosted = x.detach() * torch.exp(-boost_strength * duty_cycles) if boost_strength > 0 else x.detach()
    winners = kwinners_mask(boosted, k, break_ties)
    if relu:
        winners &= x.detach() > 0
    return x * winners


def kwinners2d(x: Tensor, duty_cycles: Tensor, k: int, boost_strength: float, local: bool = False,
               break_ties: bool = False, relu: bool = False) -> Tensor:
    """k-WTA on [B, C, H, W] maps: over all of C·H·W (global) or over the channels at each location (local).

    `duty_cycles` has one entry per channel.
    """
    batch, channels, height, width = x.shape
    if local:  # the channel axis last, one competition per (sample, location)
        moved = x.permute(0, 2, 3, 1)
        return kwinners(moved, duty_cycles, k, boost_strength, break_ties, relu).permute(0, 3, 1, 2)
    per_unit = duty_cycles.view(channels, 1, 1).expand(channels, height, width).reshape(-1)
    flat = kwinners(x.reshape(batch, -1), per_unit, k, boost_strength, break_ties, relu)
    return flat.view_as(x)


def update_duty_cycles(duty_cycles: Tensor, active: Tensor, seen: int, batch: int, period: int) -> Tensor:
    """New duty cycles after a batch of `batch` samples whose per-unit active count is `active`.

    period = min(duty_cycle_period, seen); duty = (duty·(period − B) + active) / period,
    with `seen` already including this batch (a period shorter than the batch counts as the batch).
    """
    period = max(min(period, seen), batch)
    return (duty_cycles * (period - batch) + active) / period


class _KWinnersBase(nn.Module):
    """Duty-cycle and boost bookkeeping shared by the 1-d and 2-d modules."""

    def __init__(self, n_units: int, k: int, k_inference_factor: float, boost_strength: float,
                 boost_strength_factor: float, duty_cycle_period: int, break_ties: bool, relu: bool):
        super().__init__()
        if boost_strength < 0 or not 0 <= boost_strength_factor <= 1:
            raise ValueError("boost_strength must be >= 0 and boost_strength_factor in [0, 1]")
        self.k, self.k_inference_factor = k, k_inference_factor
        self.boost_strength_factor, self.duty_cycle_period = boost_strength_factor, duty_cycle_period
        self.break_ties, self.relu = break_ties, relu
        self.register_buffer("duty_cycles", torch.zeros(n_units))
        self.register_buffer("boost_strength", torch.tensor(float(boost_strength)))
        self.register_buffer("learning_iterations", torch.tensor(0, dtype=torch.long))

    @property
    def k_now(self) -> int:
        """k in training mode, int(k · k_inference_factor) at eval (never more than every unit)."""
        k = self.k if self.training else int(self.k * self.k_inference_factor)
        return min(k, self.n_competing)

    n_competing: int

    def update_boost_strength(self) -> None:
        """β ← β · boost_strength_factor (once per epoch)."""
        self.boost_strength.mul_(self.boost_strength_factor)

    @torch.no_grad()
    def _update(self, active: Tensor, batch: int) -> None:
        self.learning_iterations += batch
        self.duty_cycles.copy_(update_duty_cycles(self.duty_cycles, active, int(self.learning_iterations), batch,
                                                  self.duty_cycle_period))

    def extra_repr(self) -> str:
        return (f"k={self.k}, n={self.n_competing}, k_inference_factor={self.k_inference_factor}, "
                f"boost_strength={float(self.boost_strength):g}, break_ties={self.break_ties}, relu={self.relu}")


class KWinners(_KWinnersBase):
    """k-WTA over the units of a [B, n] activation, k = round(n · percent_on)."""

    def __init__(self, n: int, percent_on: float, k_inference_factor: float = 1.5, boost_strength: float = 1.0,
                 boost_strength_factor: float = 0.9, duty_cycle_period: int = 1000, break_ties: bool = False,
                 relu: bool = False):
        if not 0 < percent_on <= 1:
            raise ValueError(f"percent_on must be in (0, 1], got {percent_on}")
        super().__init__(n, round(n * percent_on), k_inference_factor, boost_strength, boost_strength_factor,
                         duty_cycle_period, break_ties, relu)
        self.n_competing = n

    def forward(self, x: Tensor) -> Tensor:
        out = kwinners(x, self.duty_cycles, self.k_now, float(self.boost_strength), self.break_ties, self.relu)
        if self.training:
            self._update((out.detach() > 0).sum(0).to(self.duty_cycles.dtype), len(x))
        return out


class KWinners2d(_KWinnersBase):
    """k-WTA on conv maps [B, C, H, W]: `local=False` over C·H·W, `local=True` over C at each location.

    k = round(percent_on · C·H·W) (global, `spatial` = H·W needed up front) or round(percent_on · C)
    (local). Duty cycles are per channel: the fraction of its positions active, averaged over samples.
    """

    def __init__(self, channels: int, percent_on: float, spatial: int = 1, local: bool = False,
                 k_inference_factor: float = 1.5, boost_strength: float = 1.0, boost_strength_factor: float = 0.9,
                 duty_cycle_period: int = 1000, break_ties: bool = False, relu: bool = False):
        if not 0 < percent_on <= 1:
            raise ValueError(f"percent_on must be in (0, 1], got {percent_on}")
        n_competing = channels if local else channels * spatial
        super().__init__(channels, round(n_competing * percent_on), k_inference_factor, boost_strength,
                         boost_strength_factor, duty_cycle_period, break_ties, relu)
        self.n_competing, self.local, self.percent_on = n_competing, local, percent_on

    def forward(self, x: Tensor) -> Tensor:
        if not self.local and x.shape[1] * x.shape[2] * x.shape[3] != self.n_competing:
            raise ValueError(f"KWinners2d was built for {self.n_competing} units, got a map of shape "
                             f"{tuple(x.shape[1:])}")
        out = kwinners2d(x, self.duty_cycles, self.k_now, float(self.boost_strength), self.local,
                         self.break_ties, self.relu)
        if self.training:
            positions = x.shape[2] * x.shape[3]
            self._update((out.detach() > 0).sum((0, 2, 3)).to(self.duty_cycles.dtype) / positions, len(x))
        return out


def fixed_row_mask(out_units: int, fan_in: int, sparsity: float, generator: torch.Generator | None = None) -> Tensor:
    """[out_units, fan_in] {0, 1} mask with round((1 − sparsity) · fan_in) ones per row at random places."""
    on = round((1 - sparsity) * fan_in)
    scores = torch.rand(out_units, fan_in, generator=generator)
    mask = torch.zeros(out_units, fan_in)
    if on:
        mask.scatter_(1, torch.topk(scores, on, dim=1).indices, 1.0)
    return mask


class SparseWeights(MaskedWeights, nn.Module):
    """Wraps an `nn.Linear` or `nn.Conv2d` with a fixed random mask of its weight.

    Every output unit keeps round((1 − sparsity) · fan_in) inputs (fan_in = in_ch·kh·kw
    for convolutions). As in nupic.torch the forward pass is the wrapped module's: the
    masked weights are zeroed at construction and by `rezero()`, which must follow every
    optimizer step (`KWinnersPlugin` does). Masking in the forward pass instead would leave
    Adam's second moments at exact zeros, whose square roots are several times slower on CPUs.
    """

    def __init__(self, module: nn.Linear | nn.Conv2d, sparsity: float, generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(module, (nn.Linear, nn.Conv2d)):
            raise TypeError(f"SparseWeights wraps nn.Linear or nn.Conv2d, got {type(module).__name__}")
        if not 0 <= sparsity < 1:
            raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
        self.module, self.sparsity = module, sparsity
        out_units, fan_in = module.weight.shape[0], math.prod(module.weight.shape[1:])
        mask = fixed_row_mask(out_units, fan_in, sparsity, generator).view_as(module.weight)
        self.register_buffer("mask", mask)
        self.rezero()

    @property
    def weight(self) -> Tensor:
        return self.module.weight

    def forward(self, x: Tensor) -> Tensor:
        return self.module(x)


@torch.no_grad()
def density_scaled_init_(layer: nn.Module, input_density: float = 1.0) -> None:
    """Numenta's sparse Kaiming init: weights ~ U(±1/sqrt(input_density · weight_density · fan_in)).

    A unit of a sparse layer sums about input_density · weight_density · fan_in non-zero terms;
    the bound gives its output the scale PyTorch's default bound 1/sqrt(fan_in) gives a dense
    layer's. `layer` is a `SparseWeights` (weight_density = 1 − sparsity, re-masked after) or a
    plain `nn.Linear` / `nn.Conv2d` (weight_density = 1); the bias keeps its initial values.
    """
    if not 0 < input_density <= 1:
        raise ValueError(f"input_density must be in (0, 1], got {input_density}")
    module = layer.module if isinstance(layer, SparseWeights) else layer
    weight_density = 1 - layer.sparsity if isinstance(layer, SparseWeights) else 1.0
    fan_in = math.prod(module.weight.shape[1:])
    bound = 1 / math.sqrt(input_density * weight_density * fan_in)
    module.weight.uniform_(-bound, bound)
    if isinstance(layer, SparseWeights):
        layer.rezero()


def update_boost_strength(model: nn.Module) -> None:
    """Decay the boost strength of every k-WTA module in `model` (once per epoch)."""
    for module in model.modules():
        if isinstance(module, _KWinnersBase):
            module.update_boost_strength()


def kwinners_layers(model: nn.Module) -> list[tuple[str, _KWinnersBase]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, _KWinnersBase)]


def kwinners_model(backbone: str, input_shape: tuple[int, ...], hidden: tuple[int, ...], n_heads: int,
                   head_size: int, *, percent_on: float, sparsity: float, percent_on_conv: float,
                   sparsity_conv: float, sparsity_head: float, weight_init: str,
                   generator: torch.Generator | None = None, **kwinners_args) -> Classifier:
    """The k-WTA twin of `build_model`: sparse weights and k-WTA in the hidden layers, then the head.

    Every setting is required (the strategy's registered config holds the defaults);
    `kwinners_args` go to every `KWinners` / `KWinners2d`.

    `mlp`: SparseWeights(Linear) -> KWinners per hidden width (Numenta's sparse MLP).
    `resnet18_reduced`: every convolution SparseWeights(Conv2d, sparsity_conv), every ReLU a local
    KWinners2d (percent_on_conv of the channels at each location).
    `sparsity_head` > 0 gives the head a fixed mask too. `weight_init="density"` (MLP only) draws
    every weight with `density_scaled_init_`, the input density being percent_on after a k-WTA
    layer and 1 for the image, as Numenta's permuted MNIST MLP does; "pytorch" keeps nn.Linear's.
    """
    if weight_init not in ("pytorch", "density"):
        raise ValueError(f"unknown weight_init {weight_init!r}; valid: pytorch, density")
    if backbone != "mlp" and weight_init != "pytorch":
        raise ValueError("weight_init='density' is defined for the mlp backbone only")
    depth = itertools.count()

    def input_density() -> float:  # of the layer being built: the image, then k-WTA outputs
        return 1.0 if next(depth) == 0 else percent_on

    def linear(width_in: int, width_out: int) -> SparseWeights:
        layer = SparseWeights(nn.Linear(width_in, width_out), sparsity, generator)
        if weight_init == "density":
            density_scaled_init_(layer, input_density())
        return layer

    def head(width_in: int, width_out: int) -> nn.Module | None:
        layer = sparse_head(width_in, width_out, sparsity_head, generator)
        if weight_init == "density":
            layer = layer if layer is not None else nn.Linear(width_in, width_out)
            density_scaled_init_(layer, input_density())
        return layer

    return build_model(backbone, input_shape, hidden, n_heads, head_size, linear=linear,
                       act=lambda width: KWinners(width, percent_on, **kwinners_args),
                       conv=lambda *args, **kw: SparseWeights(nn.Conv2d(*args, **kw), sparsity_conv, generator),
                       conv_act=lambda channels: KWinners2d(channels, percent_on_conv, local=True, **kwinners_args),
                       head=head)


def sparse_head(in_features: int, out_features: int, sparsity: float,
                generator: torch.Generator | None = None) -> SparseWeights | None:
    """The output layer with a fixed mask, or None (the default dense head) at sparsity 0."""
    return SparseWeights(nn.Linear(in_features, out_features), sparsity, generator) if sparsity else None
