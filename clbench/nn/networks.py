"""Backbones with single- or multi-head outputs.

`Classifier(x, task_labels=None)`: in task-incremental mode the output layer
holds one head per task and each sample is read out from its task's head.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn


class MultiHead(nn.Module):
    """A linear layer of `n_heads` heads of `head_size` units; one head per sample.

    `linear` replaces the default `nn.Linear(in_features, n_heads * head_size)` (e.g. a plastic layer).
    """

    def __init__(self, in_features: int, n_heads: int, head_size: int, linear: nn.Module | None = None):
        super().__init__()
        self.n_heads, self.head_size = n_heads, head_size
        self.linear = linear if linear is not None else nn.Linear(in_features, n_heads * head_size)

    def units(self, targets: Tensor, task_labels: Tensor | None = None) -> Tensor:
        """Index of each target's output unit in the full (all-heads) layer."""
        if self.n_heads == 1 or task_labels is None:
            return targets
        return task_labels.to(targets.device) * self.head_size + targets

    def forward(self, h: Tensor, task_labels: Tensor | None = None) -> Tensor:
        out = self.linear(h)
        if self.n_heads == 1:
            return out
        if task_labels is None:
            raise ValueError("a multi-head model needs task labels")
        heads = out.view(len(h), self.n_heads, self.head_size)
        return heads[torch.arange(len(h), device=h.device), task_labels.to(h.device)]


class Classifier(nn.Module):
    """Feature extractor followed by a (multi-)head output layer."""

    def __init__(self, features: nn.Module, feature_dim: int, n_heads: int = 1, head_size: int = 10,
                 head: nn.Module | None = None):
        super().__init__()
        self.features = features
        self.head = MultiHead(feature_dim, n_heads, head_size, head)

    def forward(self, x: Tensor, task_labels: Tensor | None = None) -> Tensor:
        return self.head(self.features(x), task_labels)


def relu(width: int) -> nn.Module:
    """The default activation factory (its argument, the layer's width, is unused)."""
    return nn.ReLU()


Factory = Callable[..., nn.Module]


def mlp_features(in_features: int, hidden: tuple[int, ...], linear: Factory = nn.Linear,
                 act: Callable[[int], nn.Module] | None = relu) -> nn.Sequential:
    """Flatten, then `linear(width_in, width_out)` and `act(width_out)` per hidden width (no `act` if None).

    Layers are built in order, first layer first, so a factory that draws random numbers draws them in
    the order of the network.
    """
    layers: list[nn.Module] = [nn.Flatten()]
    for width_in, width_out in zip((in_features, *hidden), hidden):
        layers.append(linear(width_in, width_out))
        if act is not None:
            layers.append(act(width_out))
    return nn.Sequential(*layers)


BACKBONES = ("mlp", "resnet18_reduced")


def build_model(backbone: str, input_shape: tuple[int, ...], hidden: tuple[int, ...], n_heads: int, head_size: int,
                *, linear: Factory = nn.Linear, act: Callable[[int], nn.Module] | None = relu,
                conv: Factory = nn.Conv2d, conv_act: Callable[[int], nn.Module] = relu,
                head: Callable[[int, int], nn.Module | None] | None = None) -> Classifier:
    """A benchmark's network: `mlp` (built by `linear` and `act`) or `resnet18_reduced` (by `conv`, `conv_act`).

    `head(in_features, out_features)` builds the output layer after the features (None: a plain
    `nn.Linear`); it spans every head of a multi-head model.
    """
    if backbone == "mlp":
        in_features = math.prod(input_shape)
        features, width = mlp_features(in_features, hidden, linear, act), hidden[-1] if hidden else in_features
    elif backbone == "resnet18_reduced":
        from clbench.nn.resnet import reduced_resnet18_features

        features, width = reduced_resnet18_features(input_shape[0], conv=conv, act=conv_act)
    else:
        raise ValueError(f"unknown backbone {backbone!r}; valid: {', '.join(BACKBONES)}")
    output = head(width, n_heads * head_size) if head is not None else None
    return Classifier(features, width, n_heads, head_size, output)
