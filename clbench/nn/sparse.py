"""Sparse dynamic synapses: masked layers and stateless prune/regrow functions.

A `SparseLinear` / `SparseConv2d` keeps a binary connection mask in a buffer
and computes with `weight * mask`, so masked weights get exactly zero
gradient; `rezero()` zeroes them after an optimizer step. The topology
functions below act on flat views of one weight tensor and return indices,
leaving the bookkeeping (what is frozen, what may be pruned) to the caller.

Sources: SET (Mocanu et al. 2018) for the prune criterion and random
regrowth; RigL (Evci et al. 2020) for gradient regrowth and the cosine decay
of the update fraction.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from clbench.nn.kwinners import KWinners, KWinners2d
from clbench.nn.masked import MaskedWeights
from clbench.nn.networks import Classifier, build_model, relu

REGROW_INITS = ("zero", "he", "normal")


def erdos_renyi_density(fan_in: int, fan_out: int, epsilon: float) -> float:
    """SET's initial density ε(n_in + n_out) / (n_in · n_out), capped at 1."""
    return min(1.0, epsilon * (fan_in + fan_out) / (fan_in * fan_out))


def random_mask(shape: tuple[int, ...], density: float, generator: torch.Generator | None = None) -> Tensor:
    """A {0, 1} float mask with exactly round(density · numel) ones at random places."""
    numel = math.prod(shape)
    mask = torch.zeros(numel)
    mask[torch.randperm(numel, generator=generator)[: round(density * numel)]] = 1.0
    return mask.view(shape)


def set_prune(weight: Tensor, mask: Tensor, zeta: float, prunable: Tensor | None = None) -> Tensor:
    """Flat indices SET removes: every connection whose weight is exactly zero, and the fraction ζ of positive
    and of negative weights closest to zero.

    Only active connections (mask = 1) that are `prunable` (default: all) are candidates; round(ζ · count)
    of each sign go. SET's own code removes everything between the largest negative and the smallest positive
    weight it keeps, zeros included: a connection regrown at zero that never received a gradient (an input
    pixel that is always 0, a unit that never fires) is pruned again, not kept at zero for good.
    """
    w, m = weight.detach().flatten(), mask.flatten().bool()
    candidates = m if prunable is None else m & prunable.flatten().bool()
    removed = [torch.nonzero(candidates & (w == 0)).flatten()]
    for sign_mask, key in ((candidates & (w > 0), w), (candidates & (w < 0), -w)):
        idx = torch.nonzero(sign_mask).flatten()
        k = round(zeta * len(idx))
        if k:
            removed.append(idx[torch.topk(key[idx], k, largest=False).indices])
    return torch.cat(removed)


def random_regrow(mask: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
    """Flat indices of `n` empty (mask = 0) positions drawn uniformly (SET)."""
    empty = ~mask.flatten().bool()
    idx = torch.nonzero(empty).flatten()
    return idx[torch.randperm(len(idx), generator=generator)[: min(n, len(idx))]]


def free_unit_regrow(mask: Tensor, frozen: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
    """Flat indices of `n` empty positions drawn uniformly among the units (rows) without a frozen synapse;
    the remainder, when those units have too few empty positions, anywhere."""
    free_units = ~frozen.flatten(1).any(1)
    preferred = (~mask.bool() & free_units.view(-1, *[1] * (mask.dim() - 1))).float()
    first = random_regrow(1 - preferred, n, generator)
    if len(first) == n:
        return first
    taken = mask.clone()
    taken.view(-1)[first] = 1
    return torch.cat([first, random_regrow(taken, n - len(first), generator)])


def gradient_regrow(mask: Tensor, dense_grad: Tensor, n: int) -> Tensor:
    """Flat indices of the `n` empty positions with the largest |dense gradient| (RigL)."""
    empty = ~mask.flatten().bool()
    idx = torch.nonzero(empty).flatten()
    scores = dense_grad.detach().flatten()[idx].abs()
    return idx[torch.topk(scores, min(n, len(idx))).indices]


def cosine_zeta(zeta: float, step: int, total: int) -> float:
    """RigL's update fraction: ζ/2 · (1 + cos(π · step / total)), 0 from `total` on."""
    if step >= total:
        return 0.0
    return zeta / 2 * (1 + math.cos(math.pi * step / total))


def regrow_values(n: int, mode: str, fan_in: int, generator: torch.Generator | None = None) -> Tensor:
    """Initial weights of `n` new connections: zero (SET Keras), he (synapses), normal/10 (SET SciPy)."""
    if mode == "zero":
        return torch.zeros(n)
    if mode == "he":
        return torch.randn(n, generator=generator) * math.sqrt(2.0 / fan_in)
    if mode == "normal":
        return torch.randn(n, generator=generator) / 10
    raise ValueError(f"unknown regrow_init {mode!r}; valid: {', '.join(REGROW_INITS)}")


class SparseMixin(MaskedWeights):
    """Mask drawing and dense-gradient tracking shared by the dynamic sparse layers (the weight lives in the nn
    layer); masked weights get exactly zero gradient, because the forward pass uses weight * mask."""

    def _init_mask(self, density: float | None, epsilon: float | None, fan_in: int, fan_out: int,
                   generator: torch.Generator | None) -> None:
        if (density is None) == (epsilon is None):
            raise ValueError("give exactly one of density and epsilon")
        if density is None:
            density = erdos_renyi_density(fan_in, fan_out, epsilon)
        if not 0 < density <= 1:
            raise ValueError(f"density must be in (0, 1], got {density}")
        self.register_buffer("mask", random_mask(tuple(self.weight.shape), density, generator))
        self.rezero()

    track_dense_grad: bool = False  # keep the gradient of the masked weight (RigL regrowth)
    dense_grad: Tensor | None = None

    def _effective_weight(self) -> Tensor:
        weight = self.weight * self.mask
        if self.track_dense_grad and weight.requires_grad:
            weight.register_hook(self._store_dense_grad)
        return weight

    def _store_dense_grad(self, grad: Tensor) -> None:
        self.dense_grad = grad.detach()


class SparseLinear(SparseMixin, nn.Linear):
    """A linear layer whose weight is masked by a binary connection mask."""

    def __init__(self, in_features: int, out_features: int, density: float | None = None,
                 epsilon: float | None = None, bias: bool = True, generator: torch.Generator | None = None):
        nn.Linear.__init__(self, in_features, out_features, bias=bias)
        self._init_mask(density, epsilon, in_features, out_features, generator)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self._effective_weight(), self.bias)


class SparseConv2d(SparseMixin, nn.Conv2d):
    """A 2-d convolution whose kernel is masked by a binary connection mask."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 density: float | None = None, epsilon: float | None = None, bias: bool = True,
                 generator: torch.Generator | None = None):
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        k = kernel_size * kernel_size
        self._init_mask(density, epsilon, in_channels * k, out_channels * k, generator)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self._effective_weight(), self.bias)


def sparse_model(backbone: str, input_shape: tuple[int, ...], hidden: tuple[int, ...], n_heads: int, head_size: int,
                 density: float | None, epsilon: float | None, generator: torch.Generator | None = None,
                 percent_on: float = 1.0) -> Classifier:
    """The sparse twin of `build_model`: sparse hidden layers or convolutions, a dense (multi-)head output.

    `percent_on` < 1 replaces every ReLU by k-winners-take-all (local over channels in a CNN).
    """
    kwta = percent_on < 1
    return build_model(
        backbone, input_shape, hidden, n_heads, head_size,
        linear=functools.partial(SparseLinear, density=density, epsilon=epsilon, generator=generator),
        act=functools.partial(KWinners, percent_on=percent_on) if kwta else relu,
        conv=functools.partial(SparseConv2d, density=density, epsilon=epsilon, generator=generator),
        conv_act=functools.partial(KWinners2d, percent_on=percent_on, local=True) if kwta else relu)


def square_profile(counts: Tensor) -> list[float]:
    """Mean of a [H, W] map inside centred squares of side 2, 4, ... (up to the map's size)."""
    height, width = counts.shape
    profile = []
    for side in range(2, min(height, width) + 1, 2):
        top, left = (height - side) // 2, (width - side) // 2
        profile.append(float(counts[top:top + side, left:left + side].float().mean()))
    return profile
