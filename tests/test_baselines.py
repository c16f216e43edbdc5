"""Baseline strategies: what clbench changes or fixes in Avalanche's own."""

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
