"""Optimizer-state helpers on small optimizers: resets at given positions, Adam's second-moment floor."""

import pytest
import torch

from clbench.nn.optim import (
    SECOND_MOMENT_FLOOR,
    clamp_second_moments,
    make_optimizer,
    reset_optimizer_state,
    sync_optimizer,
)
from clbench.nn.sparse import SparseLinear


def test_reset_optimizer_state_zeroes_the_changed_positions_only():
    torch.manual_seed(0)
    layer = SparseLinear(4, 3, density=1.0)
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.01)
    layer(torch.randn(8, 4)).sum().backward()
    optimizer.step()
    state = optimizer.state[layer.weight]
    before = state["exp_avg"].clone()
    reset_optimizer_state(optimizer, layer.weight, torch.tensor([0, 5]))
    assert state["exp_avg"].view(-1)[[0, 5]].tolist() == [0.0, 0.0]
    assert state["exp_avg_sq"].view(-1)[[0, 5]].tolist() == [0.0, 0.0]
    keep = torch.ones(12, dtype=torch.bool)
    keep[[0, 5]] = False
    assert torch.equal(state["exp_avg"].view(-1)[keep], before.view(-1)[keep])
    assert state["step"].ndim == 0  # scalar state untouched


def test_clamp_second_moments_lifts_exact_zeros_and_keeps_zero_updates_zero():
    weight = torch.nn.Parameter(torch.ones(2, 2))
    optimizer = torch.optim.Adam([weight], lr=0.1)
    weight.grad = torch.tensor([[0.0, 1.0], [0.0, 1e-12]])
    optimizer.step()
    clamp_second_moments(optimizer)
    second = optimizer.state[weight]["exp_avg_sq"]
    floor = torch.tensor(SECOND_MOMENT_FLOOR).item()  # as float32
    assert second.tolist() == [[floor, pytest.approx(1e-3)], [floor, floor]]  # 0 and 1e-27 lifted
    weight.grad = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    optimizer.step()
    assert weight[:, 0].tolist() == [1.0, 1.0]  # never a gradient: never moved


def test_clamp_second_moments_ignores_optimizers_without_them():
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([weight], lr=0.1, momentum=0.9)
    weight.grad = torch.zeros(3)
    optimizer.step()
    clamp_second_moments(optimizer)
    assert set(optimizer.state[weight]) == {"momentum_buffer"}


def test_sgd_momentum_is_reset_too():
    layer = SparseLinear(3, 2, density=1.0)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
    layer(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    reset_optimizer_state(optimizer, layer.weight, torch.tensor([2]))
    assert optimizer.state[layer.weight]["momentum_buffer"].view(-1)[2] == 0


def test_make_optimizer_refuses_an_unknown_name():
    with pytest.raises(ValueError, match="valid: sgd, adam"):
        make_optimizer("rmsprop", [torch.nn.Parameter(torch.ones(1))], lr=0.1)


def test_sync_optimizer_holds_exactly_the_trainable_parameters_once():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    optimizer = torch.optim.Adam(model[0].parameters(), lr=0.1)
    model[0].bias.requires_grad_(False)
    sync_optimizer(optimizer, model)
    held = [p for group in optimizer.param_groups for p in group["params"]]
    assert [id(p) for p in held] == [id(model[0].weight), id(model[1].weight), id(model[1].bias)]
    sync_optimizer(optimizer, model)
    assert len([p for group in optimizer.param_groups for p in group["params"]]) == 3
