"""The masked-weight interface shared by fixed (`SparseWeights`) and dynamic (`SparseLinear`) sparse layers.

A masked layer holds its connection mask in the buffer `mask` (same shape as
its weight, 1 = connected) and exposes `weight`; `rezero()` makes the masked
weights exactly zero.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class MaskedWeights:
    """Mixin of every layer whose weight is multiplied by a binary connection mask."""

    weight: Tensor
    mask: Tensor

    @torch.no_grad()
    def rezero(self) -> None:
        """Make masked weights exactly zero (after an optimizer step, or after drawing new weights)."""
        self.weight.mul_(self.mask)

    @property
    def density(self) -> float:
        return float(self.mask.mean())

    @property
    def connections(self) -> int:
        return int(self.mask.sum())


def masked_layers(model: nn.Module) -> list[tuple[str, MaskedWeights]]:
    """Every masked layer of `model` with its qualified name."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, MaskedWeights)]


def rezero_weights(model: nn.Module) -> None:
    """Re-apply the mask of every masked layer in `model`."""
    for _, layer in masked_layers(model):
        layer.rezero()
