"""Sparse layers and the SET/RigL topology functions on small hand-written tensors."""

import math

import pytest
import torch

from clbench.nn.sparse import (
    SparseConv2d,
    SparseLinear,
    cosine_zeta,
    erdos_renyi_density,
    gradient_regrow,
    random_mask,
    random_regrow,
    regrow_values,
    set_prune,
)

W = torch.tensor([[0.5, -0.1, 0.0, 0.2],
                  [-0.7, 0.05, -0.3, 0.0],
                  [0.9, -0.02, 0.4, -0.6]])
M = torch.tensor([[1.0, 1.0, 0.0, 1.0],
                  [1.0, 1.0, 1.0, 0.0],
                  [1.0, 1.0, 1.0, 1.0]])


def test_erdos_renyi_density():
    assert erdos_renyi_density(784, 400, 20) == pytest.approx(20 * 1184 / (784 * 400))
    assert erdos_renyi_density(4, 4, 20) == 1.0


def test_random_mask_has_exactly_the_requested_count():
    mask = random_mask((10, 7), 0.3, torch.Generator().manual_seed(0))
    assert int(mask.sum()) == 21 and set(mask.unique().tolist()) <= {0.0, 1.0}


def test_set_prune_removes_the_weights_closest_to_zero_of_each_sign():
    # active positives: 0.5(0), 0.2(3), 0.05(5), 0.9(8), 0.4(10) -> round(0.4*5)=2 go: 0.05, 0.2
    # active negatives: -0.1(1), -0.7(4), -0.3(6), -0.02(9), -0.6(11) -> 2 go: -0.02, -0.1
    removed = set_prune(W, M, zeta=0.4)
    assert sorted(removed.tolist()) == [1, 3, 5, 9]


def test_set_prune_spares_what_is_not_prunable():
    prunable = torch.ones_like(M)
    prunable.view(-1)[[5, 9]] = 0  # consolidated synapses
    removed = set_prune(W, M, zeta=0.4, prunable=prunable)
    # positives left: 0.5, 0.2, 0.9, 0.4 -> round(1.6)=2: 0.2(3), 0.4(10); negatives: -0.1, -0.7, -0.3, -0.6 -> 0.1, 0.3
    assert sorted(removed.tolist()) == [1, 3, 6, 10]


def test_random_regrow_only_fills_empty_positions():
    mask = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    grown = random_regrow(mask, 10, torch.Generator().manual_seed(0))
    assert sorted(grown.tolist()) == [1, 2, 3, 5]
    assert len(random_regrow(mask, 2, torch.Generator().manual_seed(0))) == 2


def test_gradient_regrow_takes_the_largest_dense_gradients():
    mask = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0])
    grad = torch.tensor([9.0, -0.5, 3.0, -4.0, 8.0])
    assert gradient_regrow(mask, grad, 2).tolist() == [3, 2]


def test_cosine_zeta_decays_to_zero():
    assert cosine_zeta(0.3, 0, 100) == pytest.approx(0.3)
    assert cosine_zeta(0.3, 50, 100) == pytest.approx(0.15)
    assert cosine_zeta(0.3, 100, 100) == 0.0


def test_regrow_values():
    assert regrow_values(3, "zero", 10).tolist() == [0.0, 0.0, 0.0]
    he = regrow_values(20000, "he", fan_in=50, generator=torch.Generator().manual_seed(0))
    assert he.std().item() == pytest.approx(math.sqrt(2 / 50), rel=0.05)
    normal = regrow_values(20000, "normal", 1, torch.Generator().manual_seed(0))
    assert normal.std().item() == pytest.approx(0.1, rel=0.05)
    with pytest.raises(ValueError, match="valid: zero, he, normal"):
        regrow_values(1, "xavier", 1)


@pytest.mark.parametrize("make_optimizer", [
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3),
    lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=1e-3),
    lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=1e-2),
])
def test_masked_weights_stay_zero_and_get_no_gradient(make_optimizer):
    torch.manual_seed(0)
    layer = SparseLinear(8, 5, density=0.3)
    optimizer = make_optimizer(layer.parameters())
    for _ in range(5):
        optimizer.zero_grad()
        layer(torch.randn(16, 8)).pow(2).sum().backward()
        assert torch.all(layer.weight.grad[layer.mask == 0] == 0)
        optimizer.step()
        assert torch.all(layer.weight[layer.mask == 0] == 0)  # exact zeros even with weight decay


def test_layers_need_exactly_one_density_rule():
    with pytest.raises(ValueError, match="exactly one"):
        SparseLinear(4, 4)
    with pytest.raises(ValueError, match="exactly one"):
        SparseLinear(4, 4, density=0.5, epsilon=1.0)


def test_sparse_conv_masks_its_kernel():
    torch.manual_seed(0)
    conv = SparseConv2d(2, 3, 3, padding=1, density=0.25)
    assert conv.connections == round(0.25 * 3 * 2 * 9)
    dense = torch.nn.functional.conv2d(x := torch.randn(1, 2, 5, 5), conv.weight * conv.mask, conv.bias, padding=1)
    assert torch.allclose(conv(x), dense)
    assert torch.all(conv.weight[conv.mask == 0] == 0)


def test_dense_gradient_is_kept_when_asked():
    torch.manual_seed(0)
    layer = SparseLinear(4, 3, density=0.5)
    layer.track_dense_grad = True
    x = torch.randn(5, 4)
    layer(x).sum().backward()
    expected = torch.ones(5, 3).T @ x  # d(sum)/dW for every position, connected or not
    assert torch.allclose(layer.dense_grad, expected)
    assert torch.allclose(layer.weight.grad, expected * layer.mask)


def test_square_profile_hand_computed():
    from clbench.nn.sparse import square_profile

    counts = torch.tensor([[0, 0, 0, 0],
                           [0, 4, 2, 0],
                           [0, 2, 4, 0],
                           [0, 0, 0, 0]])
    assert square_profile(counts) == [3.0, 12 / 16]


def test_set_prune_removes_connections_that_sit_at_exactly_zero():
    """A connection regrown at zero that never received a gradient is pruned again (SET removes everything
    between the largest negative and the smallest positive weight it keeps), not kept at zero for good."""
    weight = W.clone()
    weight.view(-1)[[2, 7]] = 0.0  # active (mask 1) at exactly zero; position 7 is masked out
    mask = M.clone()
    mask.view(-1)[2] = 1.0
    removed = set_prune(weight, mask, zeta=0.4)
    assert 2 in removed.tolist() and 7 not in removed.tolist()
    assert sorted(removed.tolist()) == [1, 2, 3, 5, 9]
