"""path_plastic: rewiring, optimizer registration, per-experience freezing, plain Avalanche pipelines."""

import pytest
import torch
from avalanche.core import SupervisedPlugin
from torch import nn

from clbench import runner
from clbench.config import resolve
from clbench.errors import ClbenchWarning, UsageError
from clbench.nn.networks import Classifier
from clbench.nn.paths import PathPlasticTrunk, paths_to_prune
from clbench.strategies.path_plastic import PathPlasticPlugin
from clbench.strategies.path_plastic.strategy import (
    check_path_budget,
    find_trunk,
    first_experience_without_free_paths,
)


def built(scenario=None, **keys):
    cfg = resolve("split_digits", "path_plastic", scenario=scenario,
                  cli_values={"epochs": "2", "widths": "8,8,16,16", "stage_lengths": "2,2,2,2", "max_paths": "6",
                              **keys})
    runner.seed_everything(0)
    return runner.build(cfg)


def trunk_of(strategy) -> PathPlasticTrunk:
    return find_trunk(strategy.model)


def optimizer_ids(strategy) -> set[int]:
    return {id(p) for group in strategy.optimizer.param_groups for p in group["params"]}


def test_a_rewire_prunes_one_path_and_regrows_back_to_max_paths():
    bench, strategy = built(rewire_every="5", rewire_last_epoch="true", keep_paths="0")
    strategy.train(list(bench.train_stream)[0])
    plugin, trunk = strategy.paths, trunk_of(strategy)
    assert plugin.rewires == 16 // 5 and plugin.pruned == plugin.rewires  # 2 epochs x 8 batches
    assert len(trunk.paths) == 6
    assert all(id(p) in optimizer_ids(strategy) for p in trunk.paths.parameters())


def test_no_rewire_in_the_last_epoch_unless_asked():
    bench, strategy = built(rewire_every="3", keep_paths="0")
    strategy.train(list(bench.train_stream)[0])
    assert strategy.paths.rewires == 2  # iterations 3 and 6 of epoch 1; epoch 2 (9..16) is the last


@pytest.mark.parametrize("register", [True, False])
def test_new_paths_train_only_when_registered(register):
    bench, strategy = built(rewire_every="4", rewire_last_epoch="true", keep_paths="0",
                            register_new_params=str(register).lower())
    stream = list(bench.train_stream)
    initial = {key: m for key, m in trunk_of(strategy).paths.items()}
    strategy.train(stream[0])
    new = {key: m for key, m in trunk_of(strategy).paths.items() if initial.get(key) is not m}
    assert new
    snapshot = {key: [p.detach().clone() for p in m.parameters()] for key, m in new.items()}
    strategy.train(stream[1])
    for key, module in new.items():
        if key not in trunk_of(strategy).paths:
            continue  # pruned meanwhile
        moved = any(not torch.equal(a, b) for a, b in zip(module.parameters(), snapshot[key]))
        assert moved == register


def test_frozen_paths_do_not_change_in_later_experiences():
    bench, strategy = built(rewire_every="3", keep_paths="2")
    stream = list(bench.train_stream)
    strategy.train(stream[0])
    trunk = trunk_of(strategy)
    frozen = {key: m for key, m in trunk.paths.items() if m.frozen}
    assert len(frozen) == 2
    state = {key: {k: v.clone() for k, v in m.state_dict().items()} for key, m in frozen.items()}
    strategy.train(stream[1])
    strategy.train(stream[2])
    for key, module in frozen.items():
        assert trunk.paths[key] is module  # never pruned
        assert all(torch.equal(v, state[key][k]) for k, v in module.state_dict().items())  # weights, gate, BN
    assert sum(m.frozen for m in trunk.paths.values()) == 4  # 2 per experience, within max_paths - keep_paths
    assert len(trunk.paths) == 6


def test_the_first_experience_without_free_paths_follows_the_candidates_and_the_budget():
    adjacent = PathPlasticTrunk(1, (8, 16), (2, 2), mode="adjacent", max_paths=15, seed=0)  # (0,1) (1,2) (2,3)
    assert len(adjacent.candidates) == 3
    assert first_experience_without_free_paths(2, adjacent) == 3  # 2 frozen after the 1st, 3 after the 2nd
    assert first_experience_without_free_paths(1, adjacent) == 4
    assert first_experience_without_free_paths(0, adjacent) is None  # nothing is ever frozen
    spans = PathPlasticTrunk(1, (8, 16), (2, 2), mode="any", max_paths=5, seed=0)  # 6 candidates, 5 live
    assert len(spans.candidates) == 6
    assert first_experience_without_free_paths(2, spans) is None  # freezing stops at max_paths - keep_paths = 3


@pytest.mark.parametrize("keep_paths, n_experiences, advice", [(1, 4, "keep_paths=0"), (1, 3, None),
                                                               (2, 3, "keep_paths<=1"), (2, 2, None)])
def test_the_warning_names_a_keep_paths_that_serves_the_stream(keep_paths, n_experiences, advice, recwarn):
    trunk = PathPlasticTrunk(1, (8, 16), (2, 2), mode="adjacent", max_paths=15, seed=0)  # 3 candidate paths
    check_path_budget(keep_paths, trunk, n_experiences)
    warned = [str(w.message) for w in recwarn if issubclass(w.category, ClbenchWarning)]
    assert len(warned) == (advice is not None)
    if advice:
        assert f"to train every experience: {advice}, mode=any" in warned[0]


def test_a_stream_longer_than_the_paths_can_serve_warns_and_its_last_experiences_train_only_the_head():
    with pytest.warns(ClbenchWarning, match=r"keep_paths=2 freezes 2 paths per experience and this trunk has 3 "
                                            r"candidate paths \(mode=adjacent\), so from experience 3 of 5 none is "
                                            r"free .* keep_paths=0, mode=any, or longer stage_lengths"):
        bench, strategy = built(rewire_every="0", stage_lengths="1,1,1,1", max_paths="15")
    stream = list(bench.train_stream)
    strategy.train(stream[0])
    strategy.train(stream[1])
    trunk = trunk_of(strategy)
    assert all(m.frozen for m in trunk.paths.values()) and len(trunk.paths) == 3
    trunk_ids = {id(p) for p in trunk.parameters()}
    trainable = {id(p) for p in strategy.model.parameters() if p.requires_grad}
    assert trainable and not trainable & trunk_ids  # the output layer only
    assert {id(p) for group in strategy.optimizer.param_groups for p in group["params"]} == trainable


def test_streams_the_paths_can_serve_build_without_a_warning(recwarn):
    built(rewire_every="0")  # split_digits: 5 experiences, 7 candidate paths over 6 live, keep_paths 2
    assert not [w for w in recwarn if issubclass(w.category, ClbenchWarning)]


@pytest.mark.parametrize("keep_paths", [2, 0])
def test_the_identity_path_is_frozen_after_the_first_experience_when_paths_are_kept(keep_paths):
    bench, strategy = built(rewire_every="0", keep_paths=str(keep_paths))
    stream = list(bench.train_stream)
    strategy.train(stream[0])
    trunk = trunk_of(strategy)
    identity = {k: v.clone() for part in (trunk.stem, trunk.transitions) for k, v in part.state_dict().items()}
    strategy.train(stream[1])
    after = {k: v for part in (trunk.stem, trunk.transitions) for k, v in part.state_dict().items()}
    unchanged = all(torch.equal(v, identity[k]) for k, v in after.items())  # weights and BN statistics
    assert trunk.identity_frozen == bool(keep_paths) and unchanged == bool(keep_paths)
    strategy.model.train()
    assert trunk.stem.training != bool(keep_paths) and trunk.paths.training


def test_record_extras_list_paths_and_counts():
    cfg = resolve("split_digits", "path_plastic", cli_values={"epochs": "1", "n_experiences": "2",
                                                             "rewire_every": "2", "rewire_last_epoch": "true"})
    record = runner.run(cfg)
    extras = record.extras
    assert len(extras["paths"]) == 2 and len(extras["paths"][-1]) == 11  # adjacent: one path per position
    assert all(len(p) == 3 and p[1] == p[0] + 1 for p in extras["paths"][-1])
    assert len(extras["frozen_paths"][-1]) == 4 and extras["pruned_total"][-1] > 0
    assert 0 <= extras["rewire_seconds"][-1] < record.timing["train_total"]
    assert extras["identity_frozen"] == [True, True]


def test_with_routing_old_tasks_keep_their_exact_outputs_and_only_kept_paths_survive_an_experience():
    # reset_optimizer: Adam's stale moments would otherwise move the old heads' rows of the shared output layer
    bench, strategy = built("task", rewire_every="3", keep_paths="2", route_by_task="true", settle_fraction="0.5",
                            reset_optimizer="true")
    stream, test0 = list(bench.train_stream), bench.test[0]
    strategy.train(stream[0])
    trunk = trunk_of(strategy)
    assert strategy.paths.settled and len(trunk.paths) == 2 and all(m.task == 0 for m in trunk.paths.values())
    assert strategy.paths.rewires == 2  # iterations 3 and 6 of 16; from iteration 8 on only the kept paths train
    before = runner.evaluate(strategy.model, bench, test0, 64)
    logits = old_task_logits(strategy, bench)
    strategy.train(stream[1])
    strategy.train(stream[2])
    assert torch.equal(old_task_logits(strategy, bench), logits)
    assert runner.evaluate(strategy.model, bench, test0, 64) == before
    assert sorted(m.task for m in trunk.paths.values() if m.frozen) == [0, 0, 1, 1]  # max_paths - keep_paths


def old_task_logits(strategy, bench):
    x, _ = next(bench.test[0].batches(bench.store, 32))
    strategy.model.eval()
    with torch.no_grad():
        return strategy.model(x, torch.zeros(len(x), dtype=torch.long))


def test_routing_needs_task_labels():
    with pytest.raises(UsageError, match="route_by_task=true .* scenario 'class'.*--scenario task"):
        built("class", route_by_task="true")


def test_split_cifar10_runs_on_generated_data(cli, read_records, tmp_path, generated_root):
    result = cli("run", "-b", "split_cifar10", "-s", "path_plastic", "--iterations", "3", "--n-experiences", "2",
                 "--set", "rewire_every=1", "--set", "rewire_last_epoch=true",
                 "--data-root", generated_root, "-q", "--out", tmp_path / "o")
    assert result.code == 0, result.err
    (record,) = read_records(tmp_path / "o")
    assert record["status"] == "ok" and record["extras"]["rewires_total"][-1] == 6


@pytest.mark.parametrize("form", ["strategy", "plugin"])
def test_in_a_hand_built_avalanche_pipeline(form, avalanche_pipeline):
    from clbench.strategies import PathPlastic, PathPlasticPlugin

    torch.manual_seed(0)
    trunk = PathPlasticTrunk(1, widths=(8, 16), stage_lengths=(3, 3), max_paths=4)
    model = nn.Sequential(nn.Unflatten(1, (1, 8, 8)), Classifier(trunk, 16, 1, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    plugin = PathPlasticPlugin(rewire_every=10, keep_paths=1)
    assert avalanche_pipeline(form, PathPlastic, "paths", plugin, model, optimizer, epochs=8) > 0.8
    assert plugin.rewires > 0 and sum(m.frozen for m in trunk.paths.values()) == 2 and len(trunk.paths) == 4


def test_defaults_are_plasticnets_adjacent_paths_and_signed_pruning():
    from clbench.strategies.path_plastic import PathPlasticConfig

    assert PathPlasticConfig().mode == "adjacent" and PathPlasticConfig().prune == "signed"
    assert paths_to_prune({(0, 1): 0.5, (1, 2): -0.4, (2, 3): 0.1}, {}, "signed") == [(1, 2)]
    assert paths_to_prune({(0, 1): 0.5, (1, 2): -0.4, (2, 3): 0.1}, {}, "lowest") == [(2, 3)]


def early_stopped_pipeline(avalanche_digits, restored: list):
    """Naive + PathPlasticPlugin + Avalanche's EarlyStoppingPlugin that always restores the first snapshot of an
    experience (taken before any rewiring: no later epoch counts as better)."""
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.training import Naive
    from avalanche.training.plugins import EarlyStoppingPlugin, EvaluationPlugin

    class Restoring(EarlyStoppingPlugin):
        def before_training_epoch(self, strategy, **kwargs):
            snapshot = None if self.best_state is None else self.best_state["1.features._extra_state"]["paths"]
            super().before_training_epoch(strategy, **kwargs)
            if strategy._stop_training and snapshot is not None:
                restored.append((snapshot, find_trunk(strategy.model).path_list))

    trunk = PathPlasticTrunk(1, (8, 16), (3, 3), max_paths=5, seed=0)
    model = nn.Sequential(nn.Unflatten(1, (1, 8, 8)), Classifier(trunk, trunk.out_features, 1, 10))
    stopper = Restoring(patience=2, val_stream_name="test_stream", metric_name="Top1_Acc_Stream", margin=2.0)
    evaluator = EvaluationPlugin(accuracy_metrics(stream=True), loggers=[])
    return Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), 1e-3), criterion=nn.CrossEntropyLoss(),
                 train_mb_size=32, train_epochs=4, eval_mb_size=256, evaluator=evaluator, eval_every=1,
                 plugins=[PathPlasticPlugin(rewire_every=3, rewire_last_epoch=True), stopper])


def test_early_stopping_restores_a_snapshot_taken_before_rewiring(avalanche_digits):
    restored: list = []
    strategy = early_stopped_pipeline(avalanche_digits, restored)
    seen: list = []
    strategy.plugins.append(OptimizerCounter(seen))
    for exp in avalanche_digits.train_stream[:2]:
        strategy.train(exp, eval_streams=[avalanche_digits.test_stream[:1]])
        trunk = find_trunk(strategy.model)
        assert next(p for p in strategy.plugins if isinstance(p, PathPlasticPlugin)).rewires > 0
    assert len(restored) == 2
    for snapshot, now in restored:  # the topology of the snapshot is back, whatever rewiring did since
        assert [tuple(p[:2]) for p in snapshot] == now
    assert seen and all(count == 1 for counts in seen for count in counts.values())
    assert trunk.path_list == [tuple(p[:2]) for p in restored[-1][0]]


class OptimizerCounter(SupervisedPlugin):
    """A plugin that records, at every iteration, how often each trainable parameter is in the optimizer."""

    def __init__(self, seen: list):
        super().__init__()
        self.seen = seen

    def before_training_iteration(self, strategy, **kwargs):
        ids = [id(p) for group in strategy.optimizer.param_groups for p in group["params"]]
        self.seen.append({name: ids.count(id(p)) for name, p in strategy.model.named_parameters()
                          if p.requires_grad})


def test_experiences_without_a_task_label_attribute():
    from types import SimpleNamespace

    from clbench.strategies.path_plastic.strategy import experience_task

    assert experience_task(SimpleNamespace(task_label=3)) == 3
    assert experience_task(SimpleNamespace(task_labels=[2])) == 2
    assert experience_task(SimpleNamespace()) == 0


def test_the_command_prints_the_warning_as_one_line(tmp_path):
    import subprocess
    import sys

    command = [sys.executable, "-m", "clbench", "run", "-b", "split_digits", "-s", "path_plastic", "--iterations",
               "1", "--set", "stage_lengths=1,1,1,1", "--set", "widths=8,8,16,16", "--out", str(tmp_path), "-q"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if "keep_paths" in line]
    assert len(warned) == 1 and warned[0].startswith("clbench: warning: path_plastic: keep_paths=2 freezes 2 ")
    assert "Warning" not in result.stderr and "warnings.warn" not in result.stderr  # no category, no source line
