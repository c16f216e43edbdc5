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
