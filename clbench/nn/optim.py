"""Optimizers and their per-parameter state: building them, and editing their state in place.

Every helper that reads or writes an optimizer's state lives here, so a method
that changes its model's topology (new connections, new paths) edits the
optimizer the same way as every other.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

OPTIMIZERS = ("sgd", "adam")
SECOND_MOMENT_FLOOR = 1e-20  # a normal float32 for the ~40k steps it takes beta2 = 0.999 to decay it


def make_optimizer(name: str, params, lr: float, momentum: float = 0.0,
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """`adam` or `sgd` (with `momentum`) over `params`, with coupled L2 `weight_decay`."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")


def parameter_groups(model: nn.Module, weight_decay: float, exempt: list[nn.Parameter]) -> list:
    """The model's parameters for the optimizer, with `exempt` ones (output heads) taking no weight decay."""
    if weight_decay == 0 or not exempt:
        return list(model.parameters())
    exempt_ids = {id(p) for p in exempt}
    return [{"params": [p for p in model.parameters() if id(p) not in exempt_ids]},
            {"params": list(exempt), "weight_decay": 0.0}]


@torch.no_grad()
def reset_optimizer_state(optimizer: torch.optim.Optimizer, param: Tensor, flat_idx: Tensor) -> None:
    """Zero every per-element state of `param` (momentum, Adam moments) at `flat_idx`."""
    state = optimizer.state.get(param, {})
    for value in state.values():
        if torch.is_tensor(value) and value.shape == param.shape:
            value.view(-1)[flat_idx] = 0


@torch.no_grad()
def floor_second_moments(optimizer: torch.optim.Optimizer, param: Tensor, mask: Tensor) -> None:
    """Set Adam's second moment of masked positions to a tiny normal number instead of exact zero.

    A masked weight has zero gradient and zero first moment, so its Adam update stays exactly 0
    either way; but square roots of exact zeros run several times slower than of normal numbers
    on CPUs, and at 5% density they are 95% of the tensor.
    """
    second = optimizer.state.get(param, {}).get("exp_avg_sq")
    if second is not None and second.shape == mask.shape:
        second.masked_fill_(mask == 0, SECOND_MOMENT_FLOOR)


@torch.no_grad()
def clamp_second_moments(optimizer: torch.optim.Optimizer) -> None:
    """Raise every Adam second moment below `SECOND_MOMENT_FLOOR` to it (see `floor_second_moments`).

    For networks whose zero gradients are not known in advance (units that never win a k-WTA
    competition, inputs that are always 0). Below the floor sqrt(v) < 1e-10 is far under Adam's
    eps (1e-8), so the update changes by less than 1%; parameters whose gradient has always been 0
    keep an update of exactly 0. A no-op for optimizers without second moments.
    """
    for state in optimizer.state.values():
        if "exp_avg_sq" in state:
            state["exp_avg_sq"].clamp_(min=SECOND_MOMENT_FLOOR)


def sync_optimizer(optimizer: torch.optim.Optimizer, model: nn.Module) -> dict[str, nn.Parameter]:
    """Make the optimizer hold exactly the model's trainable parameters, each once (new ones join the first
    group); returns them by name, in the form Avalanche's optimizer bookkeeping keeps."""
    keep = {id(p) for p in model.parameters() if p.requires_grad}
    present: set[int] = set()
    for group in optimizer.param_groups:
        for p in group["params"]:
            if id(p) not in keep:
                optimizer.state.pop(p, None)
        unique = {id(p): p for p in group["params"] if id(p) in keep and id(p) not in present}
        group["params"] = list(unique.values())
        present |= set(unique)
    optimizer.param_groups[0]["params"] += [p for p in model.parameters() if p.requires_grad and id(p) not in present]
    return {name: p for name, p in model.named_parameters() if p.requires_grad}
