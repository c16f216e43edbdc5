"""The runner: determinism, evaluation paths that agree, iteration budget, divergence."""

import pytest
import torch

from clbench import runner
from clbench.config import resolve
from clbench.registry import BENCHMARKS


def quick(benchmark="split_digits", strategy="naive", **keys):
    keys.setdefault("epochs", "1")
    return resolve(benchmark, strategy, cli_values=keys, device="cpu")


def test_same_seed_same_matrix():
    a, b = runner.run(quick()), runner.run(quick())
    assert a.accuracy_matrix == b.accuracy_matrix and a.initial_accuracy == b.initial_accuracy


def test_different_seed_different_matrix():
    a = runner.run(resolve("split_digits", "naive", seed=0, cli_values={"epochs": "1"}))
    b = runner.run(resolve("split_digits", "naive", seed=1, cli_values={"epochs": "1"}))
    assert a.accuracy_matrix != b.accuracy_matrix


def test_record_shape_and_metrics():
    record = runner.run(quick())
    assert record.status == "ok" and len(record.accuracy_matrix) == 5
    assert all(len(row) == 5 for row in record.accuracy_matrix) and len(record.initial_accuracy) == 5
    assert all(0 <= v <= 1 for row in record.accuracy_matrix for v in row)
    assert record.metrics["acc"] == pytest.approx(sum(record.accuracy_matrix[-1]) / 5)
    assert len(record.timing["train"]) == 5 and record.timing["train_total"] > 0
    assert record.model["parameters"] == 64 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10
    assert record.env["torch"] == torch.__version__
    assert record.env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert record.experiences[1]["classes"] == [2, 3]


def _avalanche_accuracies(strategy, benchmark):
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.training.plugins import EvaluationPlugin

    evaluator = EvaluationPlugin(accuracy_metrics(experience=True), loggers=[])
    strategy.plugins.append(evaluator)
    try:
        strategy.eval(benchmark.test_stream)
    finally:
        strategy.plugins.remove(evaluator)
    metrics = evaluator.get_last_metrics()
    return [next(v for k, v in metrics.items() if k.startswith("Top1_Acc_Exp") and k.endswith(f"Exp{j:03d}"))
            for j in range(benchmark.n_experiences)]


@pytest.mark.parametrize("benchmark,scenario", [("split_digits", "class"), ("split_digits", "task"),
                                                ("permuted_digits", "domain")])
def test_avalanche_evaluation_agrees_with_the_runner(benchmark, scenario):
    from clbench.harness import TensorBatchesPlugin

    cfg = resolve(benchmark, "naive", scenario=scenario, cli_values={"epochs": "1"})
    runner.seed_everything(0)
    bench, strategy = runner.build(cfg)
    strategy.train(list(bench.train_stream)[1])
    ours = runner.evaluate_all(strategy.model, bench, 1000, "cpu")
    fast = _avalanche_accuracies(strategy, bench)  # Avalanche's eval loop on tensor batches
    strategy.plugins = [p for p in strategy.plugins if not isinstance(p, TensorBatchesPlugin)]
    plain = _avalanche_accuracies(strategy, bench)  # Avalanche's own DataLoader
    assert ours == pytest.approx(fast, abs=1e-9) and ours == pytest.approx(plain, abs=1e-9)
    assert max(ours) > 0.5


class Counter:
    def __init__(self):
        self.done = []

    def update(self, done, total):
        self.done.append((done, total))


def test_iteration_budget_is_exact():
    counter = Counter()
    cfg = quick(iterations="7", batch_size="16")
    runner.seed_everything(0)
    bench, strategy = runner.build(cfg)
    from clbench.harness import ProgressPlugin

    strategy.plugins.insert(0, ProgressPlugin(counter.update))
    for exp in list(bench.train_stream)[:2]:
        counter.done.clear()
        strategy.train(exp)
        assert counter.done[-1] == (7, 7) and len(counter.done) == 7


def test_iterations_spanning_several_epochs():
    cfg = quick(iterations="40", batch_size="64")  # ~4 batches per experience: 10 epochs
    runner.seed_everything(0)
    bench, strategy = runner.build(cfg)
    counter = Counter()
    from clbench.harness import ProgressPlugin

    strategy.plugins.insert(0, ProgressPlugin(counter.update))
    strategy.train(list(bench.train_stream)[0])
    assert len(counter.done) == 40


def test_a_non_finite_loss_stops_the_run_and_says_where():
    record = runner.run(quick(optimizer="sgd", lr="1e30"))
    assert record.status == "diverged"
    assert record.error["experience"] == 0 and record.error["iteration"] >= 0
    assert record.metrics["acc"] is None


def test_joint_training_has_one_row():
    record = runner.run(quick(strategy="joint"))
    assert len(record.accuracy_matrix) == 1 and record.extras == {"joint": True}
    assert record.metrics["bwt"] is None and record.metrics["acc"] > 0.5


def test_evaluate_uses_the_task_head():
    cfg = resolve("split_digits", "naive", scenario="task")
    bench = BENCHMARKS.get("split_digits").load_builder()(cfg)
    from clbench.strategies.base import make_model

    model = make_model(cfg, bench)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.net.head.linear.bias.view(5, 2)[3, 1] = 1.0  # head 3 always says "second class"
    accuracy = runner.evaluate(model, bench, bench.test[3], 50)
    assert accuracy == pytest.approx(float((bench.test[3].targets == 1).float().mean()))


def test_plugins_add_their_statistics_to_the_record():
    from avalanche.core import SupervisedPlugin

    class Counting(SupervisedPlugin):
        def __init__(self):
            super().__init__()
            self.seen = 0

        def after_training_exp(self, strategy, **kwargs):
            self.seen += 1

        def record_extras(self, strategy):
            weight_norm = float(strategy.model.head.linear.weight.detach().norm())
            return {"experiences_seen": self.seen, "weight_norm": weight_norm}

    record = runner.run(quick(), plugins=[Counting()])
    assert record.extras["experiences_seen"] == [1, 2, 3, 4, 5]
    assert len(record.extras["weight_norm"]) == 5 and all(v > 0 for v in record.extras["weight_norm"])


def test_the_record_names_the_commit_checked_out_when_the_run_started(monkeypatch):
    from clbench import records

    checkout = {"commit": "a" * 40}
    monkeypatch.setattr(records, "git_commit", lambda: checkout["commit"])
    monkeypatch.setattr(records, "git_dirty", lambda: False)
    train_and_evaluate = runner.train_and_evaluate

    def train_then_commit(*args, **kwargs):
        out = train_and_evaluate(*args, **kwargs)
        checkout["commit"] = "b" * 40  # a commit lands while the run trains
        return out

    monkeypatch.setattr(runner, "train_and_evaluate", train_then_commit)
    record = runner.run(quick())
    assert record.env["git_commit"] == "a" * 40 and record.env["git_dirty"] is False


def test_git_dirty_sees_changes_to_tracked_files_only(tmp_path):
    import subprocess

    from clbench.records import git_dirty

    assert git_dirty(tmp_path) is None  # not a checkout
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "a.txt").write_text("1")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "a"], check=True)
    assert git_dirty(tmp_path) is False
    (tmp_path / "untracked.txt").write_text("x")
    assert git_dirty(tmp_path) is False
    (tmp_path / "a.txt").write_text("2")
    assert git_dirty(tmp_path) is True


@pytest.mark.parametrize("reset,steps", [("false", [7, 14]), ("true", [7, 7])])
def test_reset_optimizer_restarts_adam_each_experience(reset, steps):
    from avalanche.core import SupervisedPlugin

    benchmark, strategy = runner.build(quick(iterations="7", reset_optimizer=reset))
    seen: list[int] = []

    class AdamSteps(SupervisedPlugin):
        def after_training_exp(self, strategy, **kwargs):
            seen.append(max(int(s["step"]) for s in strategy.optimizer.state.values()))

    strategy.plugins.append(AdamSteps())
    for experience in list(benchmark.train_stream)[:2]:
        strategy.train(experience)
    assert seen == steps


def test_seen_classes_only_masks_the_outputs_of_classes_not_seen_yet():
    import copy

    from clbench.harness import UNSEEN_LOGIT

    benchmark, strategy = runner.build(quick(strategy="lwf", iterations="3", seen_classes_only="true"))
    stream, x = list(benchmark.train_stream), torch.zeros(4, 64)
    strategy.train(stream[0])
    earlier = copy.deepcopy(strategy.model)  # as LwF keeps its previous model
    strategy.train(stream[1])
    logits, earlier_logits = strategy.model(x), earlier(x)
    assert (logits[:, 4:] == UNSEEN_LOGIT).all() and (logits[:, :4] > UNSEEN_LOGIT).all()
    assert (earlier_logits[:, 2:] == UNSEEN_LOGIT).all() and (earlier_logits[:, :2] > UNSEEN_LOGIT).all()
    record = runner.run(quick(seen_classes_only="true"))
    assert record.accuracy_matrix[0][1:] == [0.0] * 4  # a class not seen yet is never predicted
    assert record.accuracy_matrix[2][3:] == [0.0] * 2 and record.accuracy_matrix[2][2] > 0


@pytest.mark.parametrize("key", ["seen_classes_only", "current_classes_only"])
def test_output_masks_need_a_single_head(key):
    from clbench.errors import UsageError

    with pytest.raises(UsageError, match=f"{key}=true masks a single head; scenario 'task'"):
        runner.build(resolve("split_digits", "naive", scenario="task", cli_values={key: "true"}))


def test_current_classes_only_trains_the_current_classes_and_leaves_the_others_untouched():
    from clbench.harness import UNSEEN_LOGIT
    from clbench.nn.networks import MultiHead

    benchmark, strategy = runner.build(quick(iterations="5", weight_decay="0.01", reset_optimizer="true",
                                             current_classes_only="true"))
    stream, x = list(benchmark.train_stream), torch.zeros(4, 64)
    head = next(m for m in strategy.model.modules() if isinstance(m, MultiHead)).linear
    strategy.train(stream[0])
    first_rows, second_rows = (head.weight[:2].clone(), head.bias[:2].clone()), head.weight[2:4].clone()
    strategy.train(stream[1])
    assert torch.equal(head.weight[:2], first_rows[0]) and torch.equal(head.bias[:2], first_rows[1])
    assert not torch.equal(head.weight[2:4], second_rows)
    strategy.model.train()
    logits = strategy.model(x)
    assert (logits[:, 2:4] > UNSEEN_LOGIT).all()
    assert (logits[:, :2] == UNSEEN_LOGIT).all() and (logits[:, 4:] == UNSEEN_LOGIT).all()
    strategy.model.eval()
    assert (strategy.model(x) > UNSEEN_LOGIT).all()  # evaluation sees every class


def test_current_classes_only_spares_the_single_head_from_weight_decay():
    from clbench.nn.optim import parameter_groups
    from clbench.strategies.base import output_head_parameters

    model = runner.build(quick())[1].model
    spared = parameter_groups(model, 0.01, output_head_parameters(model, spare_output=True))
    assert [len(g["params"]) for g in spared] == [4, 2] and spared[1]["weight_decay"] == 0.0
    assert output_head_parameters(model) == []  # one head, all decayed


@pytest.mark.parametrize("strategy_name, trained_classes", [("naive", [2, 3]), ("cumulative", [0, 1, 2, 3])])
def test_current_classes_only_keeps_classes_whose_samples_are_in_the_batch(strategy_name, trained_classes):
    from avalanche.core import SupervisedPlugin

    benchmark, strategy = runner.build(quick(strategy=strategy_name, iterations="20", current_classes_only="true"))
    masks: list[torch.Tensor] = []

    class Masks(SupervisedPlugin):
        def after_forward(self, strategy, **kwargs):
            masks.append(strategy.model.current_outputs.clone())

    strategy.plugins.append(Masks())
    stream = list(benchmark.train_stream)
    strategy.train(stream[0])
    masks.clear()
    strategy.train(stream[1])
    assert torch.stack(masks).any(0).nonzero().flatten().tolist() == trained_classes


def test_the_metrics_plan_gives_the_full_plans_metrics_from_o_of_t_passes():
    keys = {"n_experiences": "10", "epochs": "1"}
    full = runner.run(resolve("permuted_digits", "naive", cli_values={**keys, "eval_plan": "full"}))
    cheap = runner.run(resolve("permuted_digits", "naive", cli_values={**keys, "eval_plan": "metrics"}))
    for name in ("acc", "bwt", "fwt", "learning_acc"):
        assert cheap.metrics[name] == full.metrics[name]
    assert cheap.accuracy_matrix[-1] == full.accuracy_matrix[-1]
    assert cheap.accuracy_matrix[3] == [None] * 3 + full.accuracy_matrix[3][3:5] + [None] * 5
    assert full.evaluation == {"plan": "full", "test_passes": 110}
    assert cheap.evaluation == {"plan": "metrics", "test_passes": 10 + 9 * 2 + 10,
                                "forgetting": "max over the evaluated rows"}
