"""Backbones with single- or multi-head outputs.

`Classifier(x, task_labels=None)`: in task-incremental mode the output layer
holds one head per task and each sample is read out from its task's head.
"""

from __future__ import annotations

import math

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


def mlp_features(in_features: int, hidden: tuple[int, ...]) -> nn.Sequential:
    """Flatten, then Linear + ReLU per hidden width."""
    layers: list[nn.Module] = [nn.Flatten()]
    for width_in, width_out in zip((in_features, *hidden), hidden):
        layers += [nn.Linear(width_in, width_out), nn.ReLU()]
    return nn.Sequential(*layers)


def build_model(backbone: str, input_shape: tuple[int, ...], hidden: tuple[int, ...],
                n_heads: int, head_size: int) -> Classifier:
    """The default network of a benchmark: `mlp` or `resnet18_reduced`."""
    if backbone == "mlp":
        in_features = math.prod(input_shape)
        return Classifier(mlp_features(in_features, hidden), hidden[-1] if hidden else in_features,
                          n_heads, head_size)
    if backbone == "resnet18_reduced":
        from clbench.nn.resnet import reduced_resnet18_features

        features, dim = reduced_resnet18_features(input_shape[0])
        return Classifier(features, dim, n_heads, head_size)
    raise ValueError(f"unknown backbone {backbone!r}")
