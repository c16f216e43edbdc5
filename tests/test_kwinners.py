"""kwinners: the plugin, its statistics, the shipped reference configuration, plain Avalanche pipelines."""

from pathlib import Path

import pytest
import torch
from torch import nn

from clbench import runner
from clbench.config import load_toml, resolve
from clbench.errors import UsageError
from clbench.nn.kwinners import KWinners, KWinners2d, SparseWeights

CONFIGS = Path(__file__).resolve().parents[1] / "results" / "reference" / "configs"


def test_a_run_keeps_weights_sparse_and_records_activity():
    cfg = resolve("split_digits", "kwinners", cli_values={"epochs": "2", "n_experiences": "2"})
    record = runner.run(cfg)
    assert record.status == "ok"
    extras = record.extras
    assert set(extras["active_train"][-1]) == {"features.2", "features.4"}
    for mean, std in extras["active_train"][-1].values():
        assert 0 < mean <= 0.1 + 1e-6 and std >= 0  # at most k = 10 of 100 units active in training
    for mean, _ in extras["active_eval"][-1].values():
        assert mean <= 0.15 + 1e-6  # int(10 * 1.5) of 100 at evaluation
    assert all(0 <= h <= 1 for h in extras["duty_cycle_entropy"][-1].values())
    assert extras["boost_strength"][-1]["features.2"] == pytest.approx(0.9 ** 4)  # 2 epochs x 2 experiences


def test_the_built_model_has_the_configured_sparsity_and_k():
    cfg = resolve("split_digits", "kwinners", cli_values={"percent_on": "0.2", "sparsity": "0.75", "hidden": "40"})
    _, strategy = runner.build(cfg)
    sparse = [m for m in strategy.model.modules() if isinstance(m, SparseWeights)]
    winners = [m for m in strategy.model.modules() if isinstance(m, KWinners)]
    assert len(sparse) == 1 and (sparse[0].weight != 0).sum(1).tolist() == [16] * 40  # round(0.25 * 64)
    assert [w.k for w in winners] == [8]
    head = strategy.model.head.linear
    assert bool((head.weight != 0).all())  # the output layer stays dense


def test_density_init_is_refused_for_the_convolutional_backbone():
    cfg = resolve("split_digits", "kwinners", cli_values={"backbone": "resnet18_reduced"},
                  file_values={"weight_init": "density"})
    with pytest.raises(UsageError, match="weight_init=density is defined for the mlp backbone"):
        runner.build(cfg)


def test_weights_stay_sparse_after_training():
    cfg = resolve("permuted_digits", "kwinners", cli_values={"epochs": "1", "n_experiences": "2",
                                                              "weight_decay": "1e-3", "sparsity_head": "0.5"})
    bench, strategy = runner.build(cfg)
    for exp in bench.train_stream:
        strategy.train(exp)
    layers = [m for m in strategy.model.modules() if isinstance(m, SparseWeights)]
    assert strategy.model.head.linear in layers
    for layer in layers:
        assert torch.all(layer.weight[layer.mask == 0] == 0)


def test_split_cifar10_uses_sparse_convolutions_and_local_kwinners(cli, read_records, tmp_path, generated_root):
    cfg = resolve("split_cifar10", "kwinners", data_root=str(generated_root), download=False)
    _, strategy = runner.build(cfg)
    convs = [m for m in strategy.model.modules() if isinstance(m, SparseWeights)]
    acts = [m for m in strategy.model.modules() if isinstance(m, KWinners2d)]
    assert len(convs) == 20 and all(isinstance(c.module, nn.Conv2d) for c in convs)
    assert len(acts) == 17 and all(a.local for a in acts)
    result = cli("run", "-b", "split_cifar10", "-s", "kwinners", "--iterations", "3", "--n-experiences", "2",
                 "--data-root", generated_root, "-q", "--out", tmp_path / "o")
    assert result.code == 0, result.err
    (record,) = read_records(tmp_path / "o")
    assert record["status"] == "ok" and len(record["extras"]["active_eval"]) == 2


@pytest.mark.parametrize("name, strategy", [("kwinners_permuted_numenta.toml", "kwinners"),
                                            ("dense_permuted_numenta.toml", "naive")])
def test_the_numenta_reference_configurations_resolve(name, strategy):
    values = load_toml(CONFIGS / name)
    bench, strat = values.pop("benchmark"), values.pop("strategy")
    cfg = resolve(bench, strat, file_values=values)
    assert (cfg.benchmark, cfg.strategy, cfg.bench.n_experiences) == ("permuted_mnist", strategy, 10)
    assert (cfg.train.hidden, cfg.train.batch_size, cfg.train.optimizer) == ((2048, 2048), 256, "adam")
    assert cfg.train.iterations == 0 and cfg.train.epochs == 3
    if strategy == "kwinners":
        assert (cfg.method.percent_on, cfg.method.sparsity) == (0.05, 0.5)


def test_numenta_mlp_configuration_is_their_network_on_their_schedule():
    values = load_toml(CONFIGS / "kwinners_permuted_numenta_mlp.toml")
    cfg = resolve(values.pop("benchmark"), values.pop("strategy"), file_values=values)
    assert (cfg.train.hidden, cfg.train.batch_size, cfg.train.epochs, cfg.train.lr) == ((2048, 2048), 128, 1, 5e-4)
    assert (cfg.method.percent_on, cfg.method.sparsity, cfg.method.sparsity_head) == (0.05, 0.5, 0.5)
    assert (cfg.method.weight_init, cfg.method.boost_strength, cfg.method.k_inference_factor) == ("density", 0, 1)


@pytest.mark.parametrize("form", ["strategy", "plugin"])
def test_in_a_hand_built_avalanche_pipeline(form, avalanche_pipeline):
    from clbench.strategies import KWinnersPlugin, SparseKWinners

    torch.manual_seed(0)
    model = nn.Sequential(SparseWeights(nn.Linear(64, 128), 0.5), KWinners(128, 0.2), nn.Linear(128, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    plugin = KWinnersPlugin()
    assert avalanche_pipeline(form, SparseKWinners, "kwinners", plugin, model, optimizer, epochs=5) > 0.8
    assert float(model[1].boost_strength) == pytest.approx(0.9 ** 10)
    assert torch.all(model[0].weight[model[0].mask == 0] == 0)
    assert plugin.train_activity["1"][0] <= 26 / 128 + 1e-6 and plugin.eval_activity["1"][0] > 0


def test_activity_probe_mean_and_std_by_hand():
    from clbench.strategies.kwinners.strategy import ActivityProbe

    model = nn.Sequential(KWinners(4, 0.5, boost_strength=0.0))
    probe = ActivityProbe(model)
    model(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))  # winners 3, 4: both active -> 0.5
    model(torch.tensor([[-1.0, -2.0, 3.0, -4.0], [-1.0, -2.0, 3.0, -4.0]]))  # winners 3, -1: one active -> 0.25
    probe.remove()
    model(torch.ones(1, 4))  # no longer recorded
    (mean, std), = probe.summary().values()
    assert mean == pytest.approx(1 / 3) and std == pytest.approx((3 / 144) ** 0.5)
