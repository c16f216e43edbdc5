"""hebbian: trace writes by the plugin, experience boundaries, statistics, plain Avalanche pipelines."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from clbench import runner
from clbench.config import resolve
from clbench.nn.hebbian import PlasticLinear
from clbench.nn.networks import Classifier


def fake_strategy(model, y, task_labels=None):
    return SimpleNamespace(model=model, mb_y=y, mb_task_id=task_labels)


def test_the_output_trace_is_written_with_the_one_hot_target():
    from clbench.strategies import HebbianPlugin

    head = PlasticLinear(2, 3, eta=0.5, rule="hebb")
    model = nn.Sequential(head)
    x = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    model(x)
    HebbianPlugin(post="target").after_update(fake_strategy(model, torch.tensor([2, 0])))
    # 0.5 * mean of x_b ⊗ onehot(y_b): sample 0 -> column 2, sample 1 -> column 0
    expected = 0.5 * torch.tensor([[3.0, 0.0, 1.0], [0.0, 0.0, 2.0]]) / 2
    assert torch.allclose(head.current_trace(), expected)


def test_dhp_writes_the_class_means_into_the_columns_of_the_classes_present_only():
    from clbench.strategies import HebbianPlugin

    head = PlasticLinear(2, 3, eta=0.5)  # rule dhp, the default
    model, plugin = nn.Sequential(head), HebbianPlugin()
    model(torch.tensor([[1.0, 2.0], [3.0, 0.0], [5.0, 4.0]]))
    plugin.after_update(fake_strategy(model, torch.tensor([2, 0, 2])))
    # column 0: 0.5 * sample 1; column 2: 0.5 * mean(samples 0, 2) = 0.5 * (3, 3); class 1 absent: zero
    assert torch.allclose(head.current_trace(), torch.tensor([[1.5, 0.0, 1.5], [0.0, 0.0, 1.5]]))
    model(torch.tensor([[2.0, 2.0]]))
    plugin.after_update(fake_strategy(model, torch.tensor([0])))
    # column 0: 0.5 * (1.5, 0) + 0.5 * (2, 2); column 2 untouched (no decay of an absent class)
    assert torch.allclose(head.current_trace(), torch.tensor([[1.75, 0.0, 1.5], [1.0, 0.0, 1.5]]))


def test_alpha_starts_small_and_uniform_like_dhp():
    torch.manual_seed(0)
    alpha = PlasticLinear(50, 20).alpha.detach()
    assert alpha.min() >= 0 and alpha.max() < 0.01 and alpha.std() > 0.002
    assert torch.equal(PlasticLinear(3, 2, alpha_init=1.0, alpha_init_dist="constant").alpha.detach(),
                       torch.ones(3, 2))


def test_traces_off_evaluates_the_slow_weights_alone():
    from clbench.nn.hebbian import traces_off

    head = PlasticLinear(2, 3, eta=1.0, alpha_init=1.0, alpha_init_dist="constant")
    head(torch.ones(1, 2))
    head.write_trace(post=torch.ones(1, 3))
    x = torch.tensor([[1.0, -2.0]])
    with traces_off(nn.Sequential(head)):
        assert torch.allclose(head(x), x @ head.weight + head.bias)
    assert not torch.allclose(head(x), x @ head.weight + head.bias)  # back on after the block


def test_a_run_records_the_accuracy_without_the_trace():
    record = runner.run(resolve("split_digits", "hebbian", cli_values={"epochs": "1", "n_experiences": "2"}))
    without = record.extras["accuracy_without_trace"]
    assert len(without) == 2 and all(len(row) == 2 for row in without)
    assert all(0 <= acc <= 1 for row in without for acc in row)
    assert without != record.accuracy_matrix  # the trace changes some outputs


@pytest.mark.parametrize("keys, plugin", [({"ewc_lambda": "100"}, "MergedEWCPlugin"),
                                          ({"si_lambda": "1"}, "FastSIPlugin")])
def test_dhp_combines_with_ewc_and_si(keys, plugin):
    cfg = resolve("split_digits", "hebbian", scenario="task", cli_values={"epochs": "1", **keys})
    _, strategy = runner.build(cfg)
    assert [type(p).__name__ for p in strategy.plugins].count(plugin) == 1
    assert "ewc_lambda" not in resolve("split_digits", "hebbian").to_dict()  # absent at its default


def test_multi_head_targets_are_written_into_their_task_head():
    from clbench.strategies import HebbianPlugin

    model = Classifier(nn.Identity(), 2, n_heads=3, head_size=2, head=PlasticLinear(2, 6, eta=1.0))
    x, tasks = torch.tensor([[1.0, 1.0]]), torch.tensor([2])
    model(x, tasks)
    HebbianPlugin().after_update(fake_strategy(model, torch.tensor([1]), tasks))
    written = model.head.linear.current_trace().abs().sum(0)
    assert written.nonzero().flatten().tolist() == [5]  # task 2, class 1 -> unit 2 * 2 + 1


def test_the_output_post_is_the_softmax_of_the_layer_output():
    from clbench.strategies import HebbianPlugin

    head = PlasticLinear(2, 3, eta=1.0, rule="hebb")
    x = torch.tensor([[1.0, -1.0]])
    logits = head(x)
    HebbianPlugin(post="output").after_update(fake_strategy(nn.Sequential(head), torch.tensor([0])))
    assert torch.allclose(head.current_trace(), x.t() @ torch.softmax(logits.detach(), 1))


@pytest.mark.parametrize("reset", [True, False])
def test_traces_reset_or_kept_at_experience_boundaries(reset):
    from clbench.strategies import HebbianPlugin

    head = PlasticLinear(2, 3, eta=0.5)
    head(torch.ones(1, 2))
    head.write_trace(post=torch.ones(1, 3))
    before = head.current_trace().clone()
    HebbianPlugin(reset_per_experience=reset).before_training_exp(fake_strategy(nn.Sequential(head), None))
    after = head.current_trace()
    assert torch.equal(after, torch.zeros(2, 3)) if reset else torch.equal(after, before)


def test_a_run_writes_traces_in_training_only_and_records_statistics():
    cfg = resolve("split_digits", "hebbian", cli_values={"epochs": "1", "n_experiences": "2",
                                                         "plastic_hidden": "true"})
    bench, strategy = runner.build(cfg)
    strategy.train(list(bench.train_stream)[0])
    layers = {name: m for name, m in strategy.model.named_modules() if isinstance(m, PlasticLinear)}
    assert sorted(layers) == ["features.1", "features.2", "head.linear"]
    traces = {name: layer.current_trace().clone() for name, layer in layers.items()}
    assert all(t.abs().sum() > 0 for t in traces.values())
    runner.evaluate_all(strategy.model, bench, 500, "cpu")
    assert all(torch.equal(layers[name].current_trace(), t) for name, t in traces.items())
    record = runner.run(cfg)
    extras = record.extras
    assert set(extras["trace_norm"][-1]) == set(layers) and len(extras["eta"]) == 2
    assert all(value > 0 for value in extras["alpha_norm"][-1].values())


def test_the_plugin_projects_eta_back_into_its_range():
    cfg = resolve("split_digits", "hebbian", cli_values={"epochs": "1", "n_experiences": "2"})
    bench, strategy = runner.build(cfg)
    head = next(m for m in strategy.model.modules() if isinstance(m, PlasticLinear))
    with torch.no_grad():
        head.eta.fill_(-0.5)  # where a plain clamp would have frozen it for good
    strategy.train(list(bench.train_stream)[0])
    assert 0.0 <= float(head.eta.detach()) <= 1.0


def flushes_denormals() -> bool:
    return torch.tensor([1e-39]).mul(1.0).item() == 0.0


@pytest.mark.parametrize("flush", [True, False])
def test_denormals_are_flushed_while_training_only(flush):
    from avalanche.core import SupervisedPlugin

    from clbench.strategies import HebbianPlugin

    seen = []

    class Probe(SupervisedPlugin):
        def after_training_iteration(self, strategy, **kwargs):
            seen.append(flushes_denormals())

    cfg = resolve("split_digits", "hebbian", cli_values={"iterations": "2", "n_experiences": "1"})
    bench, strategy = runner.build(cfg)
    plugin = next(p for p in strategy.plugins if isinstance(p, HebbianPlugin))
    plugin.flush_denormals = flush
    strategy.plugins.append(Probe())
    assert not flushes_denormals()
    strategy.train(list(bench.train_stream)[0])
    assert seen == [flush, flush]
    assert not flushes_denormals()  # torch's default again for whatever runs next


def test_every_run_starts_without_flushing_denormals():
    torch.set_flush_denormal(True)  # as a hebbian training that raised would leave it
    try:
        runner.run(resolve("split_digits", "naive", cli_values={"iterations": "1", "n_experiences": "1"}))
        assert not flushes_denormals()
    finally:
        torch.set_flush_denormal(False)


def test_split_cifar10_puts_a_plastic_head_on_the_cnn(cli, read_records, tmp_path, generated_root):
    result = cli("run", "-b", "split_cifar10", "-s", "hebbian", "--iterations", "3", "--n-experiences", "2",
                 "--data-root", generated_root, "-q", "--out", tmp_path / "o")
    assert result.code == 0, result.err
    (record,) = read_records(tmp_path / "o")
    assert record["status"] == "ok" and list(record["extras"]["trace_norm"][-1]) == ["head.linear"]


@pytest.mark.parametrize("form", ["strategy", "plugin"])
def test_in_a_hand_built_avalanche_pipeline(form, avalanche_pipeline):
    from clbench.strategies import Hebbian, HebbianPlugin

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), PlasticLinear(64, 10, alpha_init=0.1))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    plugin = HebbianPlugin()
    assert avalanche_pipeline(form, Hebbian, "hebbian", plugin, model, optimizer, epochs=5) > 0.8
    written = model[2].current_trace().abs().sum(0)
    assert (written[:4] > 0).all() and (written[4:] == 0).all()  # classes 0-3 seen, 4-9 never written
    assert plugin.writes > 0 and model[2].eta.grad is not None
