"""Differentiable Hebbian plasticity (Miconi et al. 2018), batched.

A `PlasticLinear` computes y = f(x·(W + α⊙H) + b): W, α and the plasticity
rate η are trained by backprop, the Hebbian trace H is a fast memory that the
layer writes itself. Matrices are [in, out], as in the papers.

Rules (`plastic_update` applies them to a batch):
  dhp:  H[:, j] ← (1 − η)·H[:, j] + η·mean of x over the batch weighted by y_j,
        for the outputs j active in the batch (Σ y_j > 0); the others keep
        their column. With the one-hot target as y this is DHP Softmax
        (Thangarasa et al. 2019): each class present in the batch writes the
        mean activity of its samples, absent classes are untouched.
  hebb: H ← (1 − η)·H + η·xᵀy (per sample; every column decays every batch)
  oja:  H_ij ← H_ij + η·y_j·(x_i − y_j·H_ij) (per sample)

Trace modes:
  shared:     one H per layer; after every training batch the batch mean of the
              per-sample updates is written (`write_trace`). The last write is
              kept pending and applied inside the next forward, so the loss
              reaches η; H itself is detached between batches.
  per_sample: one H per sample ([B, in, out]), updated inside every forward
              with the layer's own output: Miconi's episodic batching.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator

import torch
from torch import Tensor, nn

from clbench.nn.networks import Classifier, build_model

RULES = ("dhp", "hebb", "oja")
ALPHA_INITS = ("uniform", "constant")
ACTIVATIONS = {"none": lambda t: t, "relu": torch.relu, "tanh": torch.tanh}


def outer_terms(x: Tensor, post: Tensor, per_sample: bool, rule: str = "hebb") -> tuple[Tensor, Tensor]:
    """The two terms of one write of `rule`.

    hebb, oja: (xᵀy, y²), per sample ([B, in, out], [B, 1, out]) or as batch means ([in, out], [1, out]).
    dhp (batches only): (the y-weighted mean of x per output [in, out], which outputs are active [1, out]).
    """
    if rule == "dhp":
        if per_sample:
            raise ValueError("rule 'dhp' writes per batch: use trace='shared'")
        weight = post.sum(0, keepdim=True)
        return x.t() @ post / weight.clamp_min(1e-12), (weight > 0).to(x.dtype)
    if per_sample:
        return x.unsqueeze(2) * post.unsqueeze(1), post.pow(2).unsqueeze(1)
    return x.t() @ post / len(x), post.pow(2).mean(0, keepdim=True)


def plastic_update(rule: str, trace: Tensor, outer: Tensor, post_sq: Tensor, eta: Tensor | float) -> Tensor:
    """The trace after one update of `rule` with the terms of `outer_terms` (for dhp `post_sq` says which
    columns are written: H + η·active·(mean − H))."""
    if rule == "hebb":
        return (1 - eta) * trace + eta * outer
    if rule in ("oja", "dhp"):
        return trace + eta * (outer - trace * post_sq)
    raise ValueError(f"unknown plasticity rule {rule!r}; valid: {', '.join(RULES)}")


def initial_alpha(shape: tuple[int, ...], init: float, dist: str) -> Tensor:
    """α's initial values: `init`·U(0, 1) (DHP) or `init` everywhere."""
    if dist == "uniform":
        return torch.rand(shape) * init
    if dist == "constant":
        return torch.full(shape, float(init))
    raise ValueError(f"unknown alpha_init_dist {dist!r}; valid: {', '.join(ALPHA_INITS)}")


class PlasticLinear(nn.Module):
    """A linear layer with a Hebbian fast-weight trace: y = f(x·(W + α⊙H) + b)."""

    def __init__(self, in_features: int, out_features: int, rule: str = "dhp", alpha: str = "per_connection",
                 eta: float = 0.01, trace: str = "shared", activation: str = "none", alpha_init: float = 0.01,
                 alpha_init_dist: str = "uniform"):
        super().__init__()
        if rule not in RULES:
            raise ValueError(f"unknown plasticity rule {rule!r}; valid: {', '.join(RULES)}")
        if alpha not in ("per_connection", "scalar") or trace not in ("shared", "per_sample"):
            raise ValueError("alpha must be per_connection or scalar, trace shared or per_sample")
        if rule == "dhp" and trace == "per_sample":
            raise ValueError("rule 'dhp' writes per batch: use trace='shared'")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}")
        self.in_features, self.out_features = in_features, out_features
        self.rule, self.trace_mode, self.activation = rule, trace, activation
        bound = 1 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))
        alpha_shape = (in_features, out_features) if alpha == "per_connection" else ()
        self.alpha = nn.Parameter(initial_alpha(alpha_shape, alpha_init, alpha_init_dist))
        self.eta = nn.Parameter(torch.tensor(float(eta)))
        self.register_buffer("trace", torch.zeros(in_features, out_features))  # shared H (before pending)
        self.register_buffer("pending_outer", torch.zeros(in_features, out_features))
        self.register_buffer("pending_post_sq", torch.zeros(1, out_features))
        self.trace_on = True  # False: the layer computes with W alone (what the trace contributes, at test)
        self.episode: Tensor | None = None  # per-sample traces of the current episode
        self.last_input: Tensor | None = None
        self.last_output: Tensor | None = None

    def rate(self) -> Tensor:
        """η clamped to [0, 1] in value, with η's own gradient: a bound must not absorb it.

        A plain clamp has zero gradient outside [0, 1] (and at 0): once an
        optimizer step takes η below 0, nothing could bring it back.
        """
        return self.eta + (self.eta.clamp(0.0, 1.0) - self.eta).detach()

    @torch.no_grad()
    def project_rate(self) -> None:
        """Put η back into [0, 1] after an optimizer step (projected gradient descent)."""
        self.eta.clamp_(0.0, 1.0)

    def current_trace(self) -> Tensor:
        """The shared H with the last written batch applied (differentiable in η)."""
        return plastic_update(self.rule, self.trace, self.pending_outer, self.pending_post_sq, self.rate())

    def forward(self, x: Tensor, drive: Tensor | None = None) -> Tensor:
        """y = f(x·(W + α⊙H) + b + drive); `drive` is an optional external input (recurrent use)."""
        f = ACTIVATIONS[self.activation]
        bias = self.bias if drive is None else self.bias + drive
        if self.trace_mode == "per_sample":
            return self._forward_episode(x, f, bias)
        weight = self.weight + self.alpha * self.current_trace() if self.trace_on else self.weight
        y = f(x @ weight + bias)
        if self.training:
            self.last_input, self.last_output = x.detach(), y.detach()
        return y

    def _forward_episode(self, x: Tensor, f, bias: Tensor) -> Tensor:
        if self.episode is None or self.episode.shape[0] != len(x):
            self.episode = x.new_zeros(len(x), self.in_features, self.out_features)
        effective = self.weight + self.alpha * self.episode
        y = f(torch.bmm(x.unsqueeze(1), effective).squeeze(1) + bias)
        outer, post_sq = outer_terms(x, y, per_sample=True)
        self.episode = plastic_update(self.rule, self.episode, outer, post_sq, self.rate())
        return y

    @torch.no_grad()
    def write_trace(self, post: Tensor | None = None, x: Tensor | None = None) -> None:
        """Shared mode: write one batch into H (post-synaptic activity `post`, default the layer's own output)."""
        x = self.last_input if x is None else x
        post = self.last_output if post is None else post
        if x is None or post is None:
            return
        self.trace.copy_(self.current_trace())
        outer, post_sq = outer_terms(x, post.to(x.dtype), per_sample=False, rule=self.rule)
        self.pending_outer.copy_(outer)
        self.pending_post_sq.copy_(post_sq)

    @torch.no_grad()
    def reset_trace(self) -> None:
        """Forget the shared trace (and any pending write) and the episode."""
        self.trace.zero_()
        self.pending_outer.zero_()
        self.pending_post_sq.zero_()
        self.reset_episode()

    def reset_episode(self) -> None:
        self.episode = None

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, rule={self.rule}, "
                f"trace={self.trace_mode}, activation={self.activation}")


def plastic_layers(model: nn.Module) -> list[tuple[str, PlasticLinear]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, PlasticLinear)]


@contextlib.contextmanager
def traces_off(model: nn.Module) -> Iterator[None]:
    """Within the block every plastic layer of `model` computes with its slow weights alone (W, no α⊙H)."""
    layers = [layer for _, layer in plastic_layers(model)]
    for layer in layers:
        layer.trace_on = False
    try:
        yield
    finally:
        for layer in layers:
            layer.trace_on = True


def hebbian_model(backbone: str, input_shape: tuple[int, ...], hidden: tuple[int, ...], n_heads: int,
                  head_size: int, plastic_hidden: bool = False, **plastic_args) -> Classifier:
    """The benchmark's network with a plastic output layer (DHP Softmax), optionally plastic hidden layers.

    `mlp`: hidden layers are `PlasticLinear(activation="relu")` when `plastic_hidden`, else Linear + ReLU.
    Plastic hidden layers start with α = 0 (a Hebbian trace fed back through α = 1 into a wide ReLU
    layer grows without bound); backprop then sets how much of the trace they use.
    `resnet18_reduced`: the plastic head sits on the CNN features.
    """
    layers = {}
    if plastic_hidden:
        layers = dict(linear=lambda a, b: PlasticLinear(a, b, activation="relu", **{**plastic_args, "alpha_init": 0.0}),
                      act=None)
    return build_model(backbone, input_shape, hidden, n_heads, head_size, **layers,
                       head=lambda a, b: PlasticLinear(a, b, **plastic_args))
