"""Avalanche loggers on clbench runs (`--logger`) and the method statistics as an Avalanche `PluginMetric`."""

from __future__ import annotations

import csv

import pytest
import torch

from clbench import runner
from clbench.config import resolve
from clbench.loggers import MethodStatistics, close_loggers, logging_evaluator, make_loggers, scalar_items
from clbench.registry import STRATEGIES


def test_scalar_items_flattens_numbers_and_leaves_out_the_rest():
    extras = {"a": 1, "b": {"x": 0.5, "y": [1, 2], "z": {"deep": True}}, "c": None, "d": "text", "e": float("nan")}
    assert list(scalar_items(extras)) == [("a", 1.0), ("b/x", 0.5), ("b/z/deep", 1.0)]


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_a_run_evaluated_through_avalanche_has_the_same_matrix(name, tmp_path):
    cfg = resolve("split_digits", name, cli_values={"iterations": "8", "n_experiences": "2"})
    plain = runner.run(cfg)
    logged = runner.run(cfg, evaluator=logging_evaluator(make_loggers(["csv"], tmp_path, cfg.run_id())))
    assert logged.status == plain.status == "ok"
    assert logged.initial_accuracy == plain.initial_accuracy
    assert logged.accuracy_matrix == plain.accuracy_matrix


def test_csv_logger_gets_every_evaluation_and_every_epoch(tmp_path):
    cfg = resolve("split_digits", "naive", cli_values={"epochs": "2", "iterations": "0"})
    record = runner.run(cfg, evaluator=logging_evaluator(make_loggers(["csv"], tmp_path, cfg.run_id())))
    with open(tmp_path / "csv" / "eval_results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5 * 6  # 5 test experiences, before training and after each of 5 experiences
    final = {int(r["eval_exp"]): float(r["eval_accuracy"]) for r in rows[-5:]}
    assert final == {j: pytest.approx(acc, abs=5e-5) for j, acc in enumerate(record.accuracy_matrix[-1])}
    with open(tmp_path / "csv" / "training_results.csv") as f:
        assert len(list(csv.DictReader(f))) == 5 * 2


def test_tensorboard_logger_records_the_method_statistics(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = resolve("split_digits", "kwinners", cli_values={"iterations": "5", "n_experiences": "2"})
    evaluator = logging_evaluator(make_loggers(["tensorboard"], tmp_path, cfg.run_id()))
    runner.run(cfg, evaluator=evaluator)
    evaluator.loggers[0].writer.flush()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    entropy = [t for t in tags if t.startswith("Method/duty_cycle_entropy/")]
    assert entropy and all(len(events.Scalars(t)) == 2 for t in entropy)  # one value per experience
    assert any(t.startswith("Top1_Acc_Exp/eval_phase/test_stream") for t in tags)


def test_wandb_logs_offline_without_an_account(tmp_path, monkeypatch):
    for key in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = resolve("split_digits", "naive", cli_values={"iterations": "3", "n_experiences": "2"})
    evaluator = logging_evaluator(make_loggers(["wandb"], tmp_path, cfg.run_id()))
    runner.run(cfg, evaluator=evaluator)
    assert close_loggers(evaluator) == []  # the W&B run finished
    runs = list((tmp_path / "wandb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))


def test_method_statistics_reach_a_plain_avalanche_evaluator(avalanche_digits):
    from avalanche.training.plugins import EvaluationPlugin

    import clbench

    torch.manual_seed(0)
    evaluator = EvaluationPlugin(MethodStatistics(), loggers=[])
    strategy = clbench.make_strategy("sparse_syn", benchmark=avalanche_digits, evaluator=evaluator, train_epochs=1)
    for experience in avalanche_digits.train_stream[:2]:
        strategy.train(experience)
    history = evaluator.get_all_metrics()
    grown = history["Method/grown_total/train_phase/train_stream"]
    assert len(grown[1]) == 2 and grown[1][0] == 0 and grown[1][1] > 0  # growth starts at the second experience
    density = [name for name in history if name.startswith("Method/density/")]
    assert density


def test_cli_logger_writes_beside_the_record(cli, tmp_path):
    result = cli("run", "-b", "split_digits", "-s", "naive", "--iterations", "3", "--logger", "csv", "--out",
                 str(tmp_path), "-q")
    assert result.code == 0, result.err
    logs = list(tmp_path.glob("split_digits/naive/*.logs/csv/eval_results.csv"))
    assert len(logs) == 1
    assert f"logs in {logs[0].parent.parent}" in result.err


def test_cli_refuses_an_unknown_logger(cli, tmp_path):
    result = cli("run", "-b", "split_digits", "-s", "naive", "--logger", "mlflow", "--out", str(tmp_path))
    assert result.code == 2 and "'mlflow' is not one of 'csv', 'tensorboard', 'wandb'" in result.err


@pytest.mark.parametrize("method, statistic", [
    ("kwinners", "duty_cycle_entropy/"), ("hebbian", "trace_norm/"), ("sparse_syn", "frozen_fraction/"),
    ("path_plastic", "live_paths_count"),
])
def test_each_plastic_learner_reports_its_statistics_as_metrics(method, statistic):
    cfg = resolve("split_digits", method, cli_values={"iterations": "3", "n_experiences": "2"})
    evaluator = logging_evaluator([])
    runner.run(cfg, evaluator=evaluator)
    names = evaluator.get_all_metrics()
    assert any(name.startswith(f"Method/{statistic}") for name in names), sorted(names)


def test_a_logger_that_fails_to_close_is_reported_not_raised():
    class Broken:
        def close(self):
            raise OSError("disk full")

    class Evaluator:
        loggers = [Broken()]

    assert close_loggers(Evaluator()) == ["Broken did not close: disk full"]


def test_without_an_evaluator_the_plastic_templates_report_their_statistics(avalanche_digits):
    """Avalanche's default evaluator, plus the method statistics, when none is given (template or factory)."""
    from torch import nn

    import clbench
    from clbench.nn.sparse import SparseLinear
    from clbench.strategies import SparseSynapses

    torch.manual_seed(0)
    model = nn.Sequential(SparseLinear(64, 32, density=0.5), nn.ReLU(), nn.Linear(32, 10))
    strategies = [SparseSynapses(model=model, optimizer=torch.optim.Adam(model.parameters()), train_epochs=1),
                  clbench.make_strategy("kwinners", benchmark=avalanche_digits, train_epochs=1)]
    for strategy, statistic in zip(strategies, ("Method/density/", "Method/duty_cycle_entropy/")):
        strategy.train(avalanche_digits.train_stream[0])
        names = strategy.evaluator.get_all_metrics()
        assert any(name.startswith(statistic) for name in names)
        assert any(name.startswith("Top1_Acc_Epoch") for name in names)  # Avalanche's own default metrics
