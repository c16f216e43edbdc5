"""k-winners-take-all and fixed sparse weights on hand-written tensors."""

import math

import pytest
import torch
from torch import nn

from clbench.nn.kwinners import (
    KWinners,
    KWinners2d,
    SparseWeights,
    density_scaled_init_,
    kwinners,
    kwinners2d,
    kwinners_model,
    update_duty_cycles,
)
from clbench.nn.masked import rezero_weights
from clbench.strategies.kwinners import KWinnersConfig

CONFIG = KWinnersConfig()
CONV_DEFAULTS = dict(percent_on_conv=CONFIG.percent_on_conv, sparsity_conv=CONFIG.sparsity_conv)
MODEL_DEFAULTS = dict(CONV_DEFAULTS, sparsity_head=CONFIG.sparsity_head, weight_init=CONFIG.weight_init)


def test_exactly_k_winners_pass_their_unboosted_values():
    x = torch.tensor([[1.0, 5.0, 3.0, 2.0], [4.0, 0.5, 0.1, 6.0]])
    out = kwinners(x, torch.zeros(4), k=2, boost_strength=0.0)
    assert torch.equal(out, torch.tensor([[0.0, 5.0, 3.0, 0.0], [4.0, 0.0, 0.0, 6.0]]))


def test_ties_at_the_threshold_all_win_unless_broken():
    x = torch.tensor([[3.0, 3.0, 1.0, 3.0]])
    assert torch.equal(kwinners(x, torch.zeros(4), 2, 0.0), torch.tensor([[3.0, 3.0, 0.0, 3.0]]))
    broken = kwinners(x, torch.zeros(4), 2, 0.0, break_ties=True)
    assert int((broken != 0).sum()) == 2 and broken[0, 2] == 0


def test_losers_get_zero_gradient():
    x = torch.tensor([[1.0, 5.0, 3.0, 2.0]], requires_grad=True)
    (kwinners(x, torch.zeros(4), 2, 0.0) * torch.tensor([10.0, 20.0, 30.0, 40.0])).sum().backward()
    assert torch.equal(x.grad, torch.tensor([[0.0, 20.0, 30.0, 0.0]]))


def test_boosting_selects_on_boosted_values_but_passes_the_raw_ones():
    x = torch.tensor([[1.0, 0.9, 0.1]])
    duty = torch.tensor([0.5, 0.0, 0.0])  # boosted: 1 * exp(-0.5) = 0.607 < 0.9
    assert torch.equal(kwinners(x, duty, 1, boost_strength=1.0), torch.tensor([[0.0, 0.9, 0.0]]))
    assert torch.equal(kwinners(x, duty, 1, boost_strength=0.0), torch.tensor([[1.0, 0.0, 0.0]]))


def test_relu_silences_non_positive_winners():
    x = torch.tensor([[-1.0, -2.0, 0.5]])
    assert torch.equal(kwinners(x, torch.zeros(3), 2, 0.0), torch.tensor([[-1.0, 0.0, 0.5]]))
    assert torch.equal(kwinners(x, torch.zeros(3), 2, 0.0, relu=True), torch.tensor([[0.0, 0.0, 0.5]]))


def test_k_at_inference_is_scaled():
    layer = KWinners(4, percent_on=0.5, k_inference_factor=1.5, boost_strength=0.0)
    x = torch.tensor([[4.0, 3.0, 2.0, 1.0]])
    assert int((layer(x) != 0).sum()) == 2
    layer.eval()
    assert torch.equal(layer(x), torch.tensor([[4.0, 3.0, 2.0, 0.0]]))  # int(2 * 1.5) = 3


def test_duty_cycles_follow_the_running_average_by_hand():
    layer = KWinners(3, percent_on=1 / 3, boost_strength=0.0, duty_cycle_period=4)
    layer(torch.tensor([[3.0, 1.0, 2.0], [1.0, 3.0, 2.0]]))  # active [1, 1, 0], period 2
    assert torch.allclose(layer.duty_cycles, torch.tensor([0.5, 0.5, 0.0]))
    layer(torch.tensor([[3.0, 1.0, 2.0], [3.0, 1.0, 2.0]]))  # active [2, 0, 0], period 4
    assert torch.allclose(layer.duty_cycles, torch.tensor([0.75, 0.25, 0.0]))
    layer(torch.tensor([[1.0, 1.0, 5.0], [1.0, 1.0, 5.0]]))  # active [0, 0, 2], period min(4, 6) = 4
    assert torch.allclose(layer.duty_cycles, torch.tensor([0.375, 0.125, 0.5]))
    assert int(layer.learning_iterations) == 6


def test_duty_cycles_do_not_move_at_eval():
    layer = KWinners(3, percent_on=1 / 3).eval()
    layer(torch.tensor([[3.0, 1.0, 2.0]]))
    assert torch.equal(layer.duty_cycles, torch.zeros(3)) and int(layer.learning_iterations) == 0


def test_update_duty_cycles_formula():
    new = update_duty_cycles(torch.tensor([0.2]), torch.tensor([3.0]), seen=20, batch=4, period=10)
    assert torch.allclose(new, torch.tensor([(0.2 * 6 + 3) / 10]))


def test_boosting_moves_the_winner_as_duty_cycles_grow():
    layer = KWinners(2, percent_on=0.5, boost_strength=10.0, duty_cycle_period=10)
    x = torch.tensor([[1.0, 0.9]])
    assert torch.equal(layer(x), torch.tensor([[1.0, 0.0]]))
    assert torch.equal(layer(x), torch.tensor([[0.0, 0.9]]))  # unit 0 now has duty 1: boosted by exp(-10)


def test_boost_strength_decays_by_its_factor():
    layer = KWinners(4, 0.5, boost_strength=2.0, boost_strength_factor=0.5)
    layer.update_boost_strength()
    layer.update_boost_strength()
    assert float(layer.boost_strength) == 0.5


def test_kwinners2d_global_competes_over_all_positions_and_channels():
    x = torch.tensor([[[[5.0, 1.0], [1.0, 1.0]], [[4.0, 1.0], [1.0, 2.0]]]])  # [1, 2, 2, 2]
    layer = KWinners2d(2, percent_on=0.25, spatial=4, boost_strength=0.0)  # k = 2 of 8
    out = layer(x)
    expected = torch.zeros_like(x)
    expected[0, 0, 0, 0], expected[0, 1, 0, 0] = 5.0, 4.0
    assert torch.equal(out, expected)
    assert torch.allclose(layer.duty_cycles, torch.tensor([0.25, 0.25]))  # 1 of 4 positions per channel


def test_kwinners2d_local_picks_the_best_channel_at_each_location():
    x = torch.tensor([[[[5.0, 1.0], [1.0, 1.0]], [[4.0, 2.0], [3.0, 0.5]]]])
    out = KWinners2d(2, percent_on=0.5, local=True, boost_strength=0.0)(x)  # k = 1 of 2 channels
    expected = torch.tensor([[[[5.0, 0.0], [0.0, 1.0]], [[0.0, 2.0], [3.0, 0.0]]]])
    assert torch.equal(out, expected)
    assert torch.equal(kwinners2d(x, torch.zeros(2), 1, 0.0, local=True), expected)


def test_kwinners2d_refuses_a_map_of_another_size():
    with pytest.raises(ValueError, match="built for 8 units"):
        KWinners2d(2, 0.25, spatial=4)(torch.ones(1, 2, 3, 3))


@pytest.mark.parametrize("module, fan_in", [(nn.Linear(10, 6), 10), (nn.Conv2d(3, 4, 3), 27)])
@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.9])
def test_sparse_weights_keep_a_fixed_count_per_output_unit(module, fan_in, sparsity):
    layer = SparseWeights(module, sparsity, torch.Generator().manual_seed(0))
    per_unit = (layer.weight != 0).flatten(1).sum(1)
    assert per_unit.tolist() == [round((1 - sparsity) * fan_in)] * module.weight.shape[0]
    assert torch.equal(layer.mask.flatten(1).sum(1), per_unit.float())


@pytest.mark.parametrize("make_optimizer", [
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-2),
    lambda p: torch.optim.Adam(p, lr=0.1, weight_decay=1e-2),
])
def test_masked_weights_stay_zero_through_optimizer_steps(make_optimizer):
    torch.manual_seed(0)
    net = nn.Sequential(SparseWeights(nn.Linear(8, 16), 0.5), nn.ReLU(), SparseWeights(nn.Linear(16, 3), 0.5))
    optimizer = make_optimizer(net.parameters())
    for _ in range(5):
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(torch.randn(4, 8)), torch.tensor([0, 1, 2, 0])).backward()
        optimizer.step()
        rezero_weights(net)
    for layer in (net[0], net[2]):
        assert torch.all(layer.weight[layer.mask == 0] == 0)
        assert torch.any(layer.weight[layer.mask == 1] != 0)


def test_sparse_weights_conv_forward_matches_a_masked_convolution():
    conv = nn.Conv2d(2, 3, 3, padding=1)
    layer = SparseWeights(conv, 0.5, torch.Generator().manual_seed(1))
    x = torch.randn(2, 2, 5, 5)
    expected = nn.functional.conv2d(x, conv.weight * layer.mask, conv.bias, padding=1)
    assert torch.allclose(layer(x), expected)
    assert math.isclose(float(layer.mask.mean()), 9 / 18)


def test_a_duty_cycle_period_shorter_than_the_batch_averages_over_the_batch():
    new = update_duty_cycles(torch.tensor([0.9]), torch.tensor([1.0]), seen=4, batch=4, period=2)
    assert torch.allclose(new, torch.tensor([0.25]))


@pytest.mark.parametrize("input_density, sparsity, bound", [(1.0, 0.5, 1 / math.sqrt(0.5 * 8)),
                                                            (0.25, 0.5, 1 / math.sqrt(0.25 * 0.5 * 8)),
                                                            (0.5, 0.0, 1 / math.sqrt(0.5 * 8))])
def test_density_scaled_init_bound_counts_the_live_inputs(input_density, sparsity, bound):
    torch.manual_seed(0)
    linear = nn.Linear(8, 400)
    layer = SparseWeights(linear, sparsity) if sparsity else linear
    bias = linear.bias.clone()
    density_scaled_init_(layer, input_density)
    weight = linear.weight
    assert weight.abs().max() <= bound and weight.abs().max() > 0.95 * bound  # the whole range is used
    assert torch.equal(linear.bias, bias)
    if sparsity:
        assert torch.all(weight[layer.mask == 0] == 0) and ((weight != 0).sum(1) == 4).all()


def test_density_scaled_init_refuses_an_empty_input():
    with pytest.raises(ValueError, match="input_density"):
        density_scaled_init_(nn.Linear(3, 2), 0.0)


def test_numenta_mlp_init_and_sparse_head():
    """2x2048-style MLP (here 784-200-200-10, 5% on, half the weights): the bounds of Numenta's MLP."""
    torch.manual_seed(0)
    net = kwinners_model("mlp", (1, 28, 28), (200, 200), 1, 10, percent_on=0.05, sparsity=0.5,
                         sparsity_head=0.5, weight_init="density", **CONV_DEFAULTS)
    first, second, head = net.features[1], net.features[3], net.head.linear
    assert isinstance(head, SparseWeights) and ((head.weight != 0).sum(1) == 100).all()
    for layer, bound in ((first, 1 / math.sqrt(0.5 * 784)), (second, 1 / math.sqrt(0.05 * 0.5 * 200)),
                         (head, 1 / math.sqrt(0.05 * 0.5 * 200))):
        assert 0.9 * bound < layer.weight.abs().max() <= bound
    assert net(torch.randn(3, 1, 28, 28)).shape == (3, 10)


def test_the_default_kwinners_mlp_is_unchanged_by_the_new_options():
    """sparsity_head=0 and weight_init='pytorch' build exactly the network built before they existed."""
    torch.manual_seed(0)
    plain = kwinners_model("mlp", (1, 4, 4), (6,), 1, 3, percent_on=0.5, sparsity=0.5,
                           generator=torch.Generator().manual_seed(1), **MODEL_DEFAULTS)
    torch.manual_seed(0)
    explicit = kwinners_model("mlp", (1, 4, 4), (6,), 1, 3, percent_on=0.5, sparsity=0.5,
                              generator=torch.Generator().manual_seed(1), sparsity_head=0.0, weight_init="pytorch",
                              **CONV_DEFAULTS)
    assert type(plain.head.linear) is nn.Linear
    for a, b in zip(plain.state_dict().values(), explicit.state_dict().values()):
        assert torch.equal(a, b)
