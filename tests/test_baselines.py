"""Baseline strategies: what clbench changes or fixes in Avalanche's own."""

import math

import pytest
import torch

from clbench import runner
from clbench.config import resolve


def test_si_accumulates_importance_on_the_cpu():
    from clbench.strategies.baselines import CopyingSIPlugin

    cfg = resolve("split_digits", "si", cli_values={"epochs": "1", "si_lambda": "1000"}, device="cpu")
    runner.seed_everything(0)
    bench, strategy = runner.build(cfg)
    (si,) = [p for p in strategy.plugins if isinstance(p, CopyingSIPlugin)]
    strategy.train(list(bench.train_stream)[0])
    importance = torch.cat([v.data for v in si.ewc_data[1].values()])
    assert float(importance.abs().sum()) > 0  # Avalanche 0.6 alone leaves this at exactly 0 on the CPU
    anchor = torch.cat([v.data for v in si.ewc_data[0].values()])
    live = torch.cat([p.detach().flatten() for _, p in si.allowed_parameters(strategy.model, set())])
    assert torch.equal(anchor, live)
    strategy.train(list(bench.train_stream)[1])
    assert not torch.equal(anchor, torch.cat([v.data for v in si.ewc_data[0].values()]))  # a copy, not a view


def test_si_strength_changes_the_result():
    def acc(lam):
        return runner.run(resolve("split_digits", "si", scenario="task",
                                  cli_values={"epochs": "2", "si_lambda": lam})).metrics["acc"]

    assert acc("0") != pytest.approx(acc("1000000"), abs=1e-6)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_weight_decay_spares_the_heads_of_tasks_not_being_trained(optimizer):
    """Coupled L2 would pull an untrained task's head to zero; its head must come out of a later experience intact."""
    cfg = resolve("split_digits", "naive", scenario="task",
                  cli_values={"iterations": "20", "weight_decay": "0.1", "optimizer": optimizer})
    runner.seed_everything(0)
    bench, strategy = runner.build(cfg)
    stream = list(bench.train_stream)
    strategy.train(stream[0])
    head = strategy.model.net.head
    rows = slice(0, head.head_size)  # task 0's units
    first_head = head.linear.weight.detach()[rows].clone()
    first_layer = strategy.model.net.features[1].weight.detach().clone()
    strategy.train(stream[1])
    later_head = head.linear.weight.detach()[rows]
    if optimizer == "sgd":  # no momentum: no gradient, no decay, no change
        assert torch.equal(later_head, first_head)
    else:  # Adam's running moments still move it, but decay no longer shrinks it (it did: 0.786 -> 0.764)
        assert later_head.norm() >= first_head.norm()
    assert not torch.equal(strategy.model.net.features[1].weight.detach(), first_layer)  # the rest still trains
    groups = strategy.optimizer.param_groups
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]


def test_seen_units_distillation_pads_the_previous_softmax_with_zeros():
    from clbench.strategies.baselines import seen_units_distillation

    out, prev = torch.zeros(1, 3), torch.zeros(1, 3)
    # one previous unit, one new: the target is [1, 0], the current softmax [1/2, 1/2]
    assert float(seen_units_distillation(out, prev, [0], [1], 2.0)) == pytest.approx(math.log(2))
    out, prev = torch.tensor([[2.0, 0.0, 4.0]]), torch.tensor([[1.0, 1.0, -9.0]])
    log_p = torch.log_softmax(out, dim=1)[0]  # over units 0, 1 and the new unit 2; the target [1/2, 1/2, 0]
    expected = 0.5 * (math.log(0.5) - log_p[0]) + 0.5 * (math.log(0.5) - log_p[1])
    assert float(seen_units_distillation(out, prev, [0, 1], [2], 1.0)) == pytest.approx(float(expected))
    # the current experience's units already among the previous ones (domain-IL) change nothing
    assert float(seen_units_distillation(out, prev, [0, 1], [0, 1], 1.0)) == pytest.approx(0.5 * (
        math.log(0.5) - math.log(math.exp(2) / (math.exp(2) + 1))) + 0.5 * (
        math.log(0.5) - math.log(1 / (math.exp(2) + 1))))


@pytest.mark.parametrize("units, weighting, expected", [
    ("previous", "alpha", 1.0 + 0.5 * 0.0),  # Avalanche: the previous unit alone, softmax 1 against 1
    ("seen", "alpha", 1.0 + 0.5 * math.log(2)),
    ("seen", "1/t", 1.0 / 2 + (1 - 1 / 2) * 4.0 * math.log(2)),  # t = 2, T = 2
])
def test_lwf_loss_after_the_second_experience(units, weighting, expected):
    from types import SimpleNamespace

    from clbench.strategies.baselines import LwFVariantsPlugin

    alpha = 0.5 if weighting == "alpha" else 1.0
    plugin = LwFVariantsPlugin(alpha=alpha, temperature=2.0, distill_units=units, weighting=weighting)
    plugin.load_state_dict({"trained": 1, "previous_model": None, "units_by_task": {0: [0]}})
    plugin.previous_model = torch.nn.Identity()  # after an experience of class 0
    plugin.current_units = [1]
    strategy = SimpleNamespace(mb_x=torch.zeros(1, 2), mb_output=torch.zeros(1, 2), model=None,
                               loss=torch.tensor(1.0))
    plugin.before_backward(strategy)
    assert float(strategy.loss) == pytest.approx(expected)


def test_van_de_ven_lwf_keeps_the_first_experience_in_class_incremental_learning():
    def last_row(**keys):
        cfg = resolve("split_digits", "lwf", scenario="class", cli_values=keys, device="cpu")
        return runner.run(cfg).accuracy_matrix[-1]

    assert last_row()[0] == 0.0  # Avalanche's LwF: only the last experience's classes are ever predicted
    assert last_row(distill_units="seen", lwf_weighting="1/t")[0] > 0.5


def test_lwf_alpha_is_refused_with_the_one_over_t_weighting():
    from clbench.errors import UsageError

    cfg = resolve("split_digits", "lwf", scenario="class", cli_values={"lwf_weighting": "1/t", "lwf_alpha": "2"})
    with pytest.raises(UsageError, match="lwf_alpha=2.0 has no effect with lwf_weighting=1/t"):
        runner.build(cfg)


def test_the_merged_ewc_penalty_is_avalanches_sum_over_experiences():
    """After three experiences the merged quadratic has the value and the gradient of Avalanche's separate
    penalties (one per experience), in constant memory."""

    from avalanche.training.plugins import EWCPlugin

    from clbench.strategies.baselines.ewc import MergedEWCPlugin

    class Observer(MergedEWCPlugin):  # merges what Avalanche's plugin sees, without acting on training
        def after_backward(self, strategy, **kwargs):
            pass

    cfg = resolve("split_digits", "naive", cli_values={"epochs": "1"}, device="cpu")
    runner.seed_everything(0)
    bench, strategy = runner.build(cfg)
    avalanche_ewc, merged = EWCPlugin(50.0, mode="separate"), Observer(50.0)
    strategy.plugins += [avalanche_ewc, merged]
    for exp in list(bench.train_stream)[:3]:
        strategy.train(exp)
    assert len(avalanche_ewc.importances) == 3 and len(merged.importances) == 0
    assert len(merged.curvature) == len(list(strategy.model.parameters()))

    assert_same_penalty(strategy.model, avalanche_ewc.before_backward,
                        lambda fake: MergedEWCPlugin.after_backward(merged, fake), atol=1e-6)


def test_fast_si_keeps_avalanches_importances_and_penalty():
    """FastSIPlugin, watching the same training as CopyingSIPlugin (Avalanche's algorithm), ends with the same
    importances and anchors, and its in-place surrogate gradient equals the autograd one."""
    from clbench.strategies.baselines import CopyingSIPlugin, FastSIPlugin

    class Observer(FastSIPlugin):  # tracks the path integral without acting on training
        def after_backward(self, strategy, **kwargs):
            pass

    cfg = resolve("split_digits", "naive", cli_values={"epochs": "1"}, device="cpu")
    runner.seed_everything(0)
    bench, strategy = runner.build(cfg)
    reference, fast = CopyingSIPlugin(si_lambda=100.0), Observer(si_lambda=100.0)
    strategy.plugins += [reference, fast]
    for exp in list(bench.train_stream)[:3]:
        strategy.train(exp)
    for part in (0, 1):  # anchors and importances
        for name, data in reference.ewc_data[part].items():
            assert torch.allclose(fast.ewc_data[part][name].data, data.data, rtol=1e-4, atol=1e-7), name

    model = strategy.model
    with torch.no_grad():  # away from the anchors, where the surrogate loss is 0
        for param in model.parameters():
            param.add_(0.01 * torch.randn_like(param))
    assert_same_penalty(model, lambda fake: CopyingSIPlugin.before_backward(reference, fake),
                        lambda fake: FastSIPlugin.after_backward(fast, fake), atol=1e-7)


def assert_same_penalty(model, through_autograd, in_place, atol: float) -> None:
    """A penalty added to the loss before the backward pass (Avalanche's way) and the same penalty's gradient
    added after it (in place) give the same loss value and the same gradients, after the third experience."""
    from types import SimpleNamespace

    results = []
    for add, backward in ((through_autograd, True), (in_place, False)):
        model.zero_grad(set_to_none=True)
        fake = SimpleNamespace(model=model, loss=torch.zeros(()), clock=SimpleNamespace(train_exp_counter=3),
                               device="cpu")
        add(fake)
        if backward:
            fake.loss.backward()
        results.append((float(fake.loss.detach()), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (expected_value, expected), (value, grads) = results
    assert expected_value != 0 and value == pytest.approx(expected_value, rel=1e-4)
    for name, grad in grads.items():
        assert torch.allclose(grad, expected[name], rtol=1e-4, atol=atol), name
