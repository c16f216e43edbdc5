"""sparse_syn: consolidation, growth, density bookkeeping, and use in plain Avalanche pipelines."""

import dataclasses
import math

import pytest
import torch
from torch import nn

from clbench import runner
from clbench.config import resolve
from clbench.errors import UsageError
from clbench.nn.sparse import SparseLinear


def built(scenario="class", **keys):
    cfg = resolve("split_digits", "sparse_syn", scenario=scenario, cli_values={"epochs": "2", **keys})
    runner.seed_everything(0)
    return runner.build(cfg)


def layers_of(strategy):
    from clbench.strategies.sparse_syn.strategy import sparse_layers

    return sparse_layers(strategy.model)


def test_consolidated_synapses_do_not_change_in_later_experiences():
    bench, strategy = built()
    stream = list(bench.train_stream)
    strategy.train(stream[0])
    before = {name: (layer.weight.detach().clone(), layer.bias.detach().clone(), layer.mask.clone())
              for name, layer in layers_of(strategy)}
    strategy.train(stream[1])
    strategy.train(stream[2])
    for name, layer in layers_of(strategy):
        weight, bias, mask = before[name]
        kept, units = mask.bool(), mask.bool().any(1)
        assert torch.equal(layer.mask[kept], mask[kept])  # never pruned
        assert torch.equal(layer.weight.detach()[kept], weight[kept])  # never moved
        assert units.any() and torch.equal(layer.bias.detach()[units], bias[units])  # nor the biases of their units


def test_consolidated_parts_are_the_frozen_synapses_and_the_biases_of_their_units():
    from clbench.strategies.sparse_syn.strategy import consolidated_parts

    layer = SparseLinear(3, 3, density=1.0)
    frozen = torch.tensor([[False, True, False], [False, False, False], [True, False, True]])
    (weight, synapses), (bias, units) = consolidated_parts(layer, frozen)
    assert weight is layer.weight and torch.nonzero(synapses.flatten()).flatten().tolist() == [1, 6, 8]
    assert bias is layer.bias and units.tolist() == [True, False, True]
    assert consolidated_parts(layer, torch.zeros(3, 3, dtype=torch.bool)) == []


def test_slowed_synapses_move_less_than_free_ones():
    bench, strategy = built(old_lr_scale="0.1")
    stream = list(bench.train_stream)
    strategy.train(stream[0])
    (name, layer), *_ = layers_of(strategy)
    old_mask, old_weight = layer.mask.bool().clone(), layer.weight.detach().clone()
    strategy.train(stream[1])
    moved_old = (layer.weight.detach() - old_weight)[old_mask].abs().mean()
    new = layer.mask.bool() & ~old_mask
    moved_new = layer.weight.detach()[new].abs().mean()  # new synapses start at zero
    assert 0 < moved_old < moved_new


def test_growth_per_experience_and_the_density_cap():
    bench, strategy = built(grow="0.05", density="0.05")
    strategy.sparse.config = dataclasses.replace(strategy.sparse.config, max_density=0.12)  # a plugin's own cap
    stream = list(bench.train_stream)
    counts = []
    for exp in stream[:4]:
        strategy.train(exp)
        counts.append({name: layer.connections for name, layer in layers_of(strategy)})
    for name, layer in layers_of(strategy):
        numel = layer.mask.numel()
        assert counts[0][name] == round(0.05 * numel)  # topology steps keep the count
        assert counts[1][name] == counts[0][name] + round(0.05 * numel)
        assert counts[3][name] == int(0.12 * numel)  # capped


def test_without_a_cap_every_experience_grows():
    bench, strategy = built(grow="0.05", density="0.05")
    stream = list(bench.train_stream)
    for exp in stream:
        strategy.train(exp)
    for _, layer in layers_of(strategy):
        assert layer.connections == 5 * round(0.05 * layer.mask.numel())


def test_a_cap_too_low_for_the_stream_is_refused_before_training():
    with pytest.raises(UsageError, match=r"max_density=0.12 cannot serve 5 experiences.*needing 0.250"):
        built(grow="0.05", density="0.05", max_density="0.12")
    built(grow="0.05", density="0.05", max_density="0.25")  # exactly enough


@pytest.mark.parametrize("iterations, every, per_epoch, steps", [
    (12, 5, 100, 1), (10, 5, 100, 1), (2000, 100, 469, 19), (4, 5, 100, 0),  # per evolve_every iterations
    (938, 0, 469, 1), (2000, 0, 469, 4), (469, 0, 469, 0),  # per epoch: none after the last one
])
def test_no_topology_step_in_the_last_window(iterations, every, per_epoch, steps):
    from clbench.strategies.sparse_syn.strategy import topology_steps

    assert topology_steps(iterations, every, per_epoch) == steps


@pytest.mark.parametrize("keys", [{"epochs": "3"}, {"iterations": "12", "evolve_every": "5"}])
def test_consolidated_connections_were_trained_after_their_last_regrowth(keys):
    bench, strategy = built(**keys)
    evolved_at = []
    evolve = strategy.sparse.evolve
    strategy.sparse.evolve = lambda s: (evolved_at.append(strategy.sparse.iteration), evolve(s))
    strategy.train(list(bench.train_stream)[0])
    iterations = strategy.sparse.iterations
    assert evolved_at and max(evolved_at) < iterations  # no connection regrown at the end, frozen untrained
    assert len(evolved_at) == strategy.sparse.steps_total


def test_rigl_schedule_spans_the_iteration_budget():
    bench, strategy = built(iterations="20", evolve_every="5", regrow="gradient")
    zetas = []
    evolve = strategy.sparse.evolve
    strategy.sparse.evolve = lambda s: (zetas.append(strategy.sparse.zeta_now()), evolve(s))
    strategy.train(list(bench.train_stream)[0])
    assert strategy.sparse.steps_total == 3
    assert zetas == pytest.approx([0.3, 0.15 * (1 + math.cos(math.pi / 3)), 0.15 * (1 + math.cos(2 * math.pi / 3))])


def test_growth_into_free_units_avoids_units_with_consolidated_synapses():
    from clbench.nn.sparse import free_unit_regrow

    mask = torch.tensor([[1., 0., 0.], [0., 0., 0.], [0., 1., 0.]])
    frozen = torch.tensor([[True, False, False], [False, False, False], [False, True, False]])
    chosen = free_unit_regrow(mask, frozen, 3, torch.Generator().manual_seed(0))
    assert sorted(chosen.tolist()) == [3, 4, 5]  # unit 1 is the only one without a frozen synapse
    more = free_unit_regrow(mask, frozen, 5, torch.Generator().manual_seed(0)).tolist()
    assert len(set(more)) == 5 and {3, 4, 5} <= set(more) <= {1, 2, 3, 4, 5, 6, 8}  # unit 1 first, then any


def test_topology_steps_prune_and_regrow_the_same_number():
    bench, strategy = built()
    strategy.train(list(bench.train_stream)[0])
    plugin = strategy.sparse
    assert plugin.pruned > 0 and plugin.pruned == plugin.regrown and plugin.grown == 0
    strategy.train(list(bench.train_stream)[1])
    assert plugin.pruned == plugin.regrown and plugin.grown > 0


def test_gradient_regrowth_keeps_dense_gradients_and_decays_zeta():
    bench, strategy = built(regrow="gradient")
    strategy.train(list(bench.train_stream)[0])
    assert all(layer.dense_grad is not None for _, layer in layers_of(strategy))
    assert strategy.sparse.zeta_now() < strategy.sparse.config.zeta


def test_record_extras_topology_and_profile():
    record = runner.run(resolve("split_digits", "sparse_syn", cli_values={"epochs": "1"}))
    extras = record.extras
    assert len(extras["density"]) == 5 and len(extras["topology"]) == 5
    assert len(extras["topology"][0]) == 8 and len(extras["topology"][0][0]) == 8
    assert len(extras["square_profile"][0]) == 4
    first = list(extras["connections"][0])[0]
    assert sum(map(sum, extras["topology"][0])) == extras["connections"][0][first]
    assert extras["frozen_fraction"][-1][first] > 0
    assert record.model["density"] < 0.5


@pytest.mark.parametrize("form", ["strategy", "plugin"])
def test_in_a_hand_built_avalanche_pipeline(form, avalanche_pipeline):
    from clbench.strategies import SparseSynapses, SparseSynapsesPlugin

    torch.manual_seed(0)
    model = nn.Sequential(SparseLinear(64, 64, density=0.2), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    plugin = SparseSynapsesPlugin(grow=0.05, max_density=0.5)
    assert avalanche_pipeline(form, SparseSynapses, "sparse", plugin, model, optimizer, epochs=8) > 0.8
    assert plugin.frozen["0"].sum() > 0 and plugin.pruned > 0
    assert model[0].connections == round(0.2 * 64 * 64) + round(0.05 * 64 * 64)


def centre_profile(weight_decay: str) -> list[float]:
    keys = {"n_experiences": "1", "epochs": "60", "density": "0.2", "evolve_every": "5", "regrow_init": "he",
            "weight_decay": weight_decay}
    return runner.run(resolve("split_digits", "sparse_syn", cli_values=keys)).extras["square_profile"][-1]


def test_weight_decay_moves_connections_to_the_informative_centre():
    """Untrained border weights shrink under L2 and are pruned; without it they survive."""
    with_decay, without = centre_profile("1e-3"), centre_profile("0")
    assert all(inner > outer for inner, outer in zip(with_decay, with_decay[1:]))  # decreases outward
    assert with_decay[0] - with_decay[-1] > 2 * (without[0] - without[-1])


def test_topology_figure(cli, tmp_path):
    from clbench.records import write_record

    record = runner.run(resolve("split_digits", "sparse_syn", cli_values={"epochs": "1"}))
    path = write_record(record, tmp_path / "runs")
    result = cli("plot", path, "--kind", "topology", "--out", tmp_path / "figs")
    assert result.code == 0, result.err
    (figure,) = (tmp_path / "figs").iterdir()
    assert figure.name == f"topology_split_digits_class_sparse_syn_{record.run_id}.png"


def test_split_cifar10_uses_sparse_convolutions(cli, read_records, tmp_path, generated_root):
    from clbench.nn.sparse import SparseConv2d

    cfg = resolve("split_cifar10", "sparse_syn", data_root=str(generated_root), download=False)
    _, strategy = runner.build(cfg)
    convs = [m for m in strategy.model.modules() if isinstance(m, SparseConv2d)]
    assert len(convs) == 20 and all(abs(c.density - 0.05) < 0.01 for c in convs)
    result = cli("run", "-b", "split_cifar10", "-s", "sparse_syn", "--iterations", "3", "--n-experiences", "2",
                 "--data-root", generated_root, "-q", "--out", tmp_path / "o")
    assert result.code == 0, result.err
    (record,) = read_records(tmp_path / "o")
    assert record["status"] == "ok" and "topology" not in record["extras"] and len(record["extras"]["density"]) == 2


def test_masked_weights_are_exactly_zero_after_a_run_with_weight_decay():
    bench, strategy = built(scenario="task")
    for exp in list(bench.train_stream)[:3]:
        strategy.train(exp)
    for _, layer in layers_of(strategy):
        assert torch.all(layer.weight[layer.mask == 0] == 0)


def test_optional_kwinners_activations_keep_activity_sparse():
    from clbench.nn.kwinners import KWinners

    cfg = resolve("split_digits", "sparse_syn", cli_values={"epochs": "2", "n_experiences": "2", "percent_on": "0.2"})
    _, strategy = runner.build(cfg)
    assert [m.k for m in strategy.model.modules() if isinstance(m, KWinners)] == [20, 20]
    record = runner.run(cfg)
    assert record.status == "ok" and len(record.extras["density"]) == 2
    assert all(mean <= 0.2 + 1e-6 for mean, _ in record.extras["active_train"][-1].values())


def test_adam_second_moments_of_masked_weights_are_floored_not_zero():
    """Square roots of exact zeros are slow on CPUs; the floor leaves masked updates at exactly 0."""
    from clbench.nn.optim import SECOND_MOMENT_FLOOR

    bench, strategy = built(scenario="class")
    strategy.train(list(bench.train_stream)[0])
    for _, layer in layers_of(strategy):
        second = strategy.optimizer.state[layer.weight]["exp_avg_sq"]
        masked = layer.mask == 0
        assert torch.all(second[masked] > 0) and torch.all(second[masked] <= SECOND_MOMENT_FLOOR)
        assert torch.all(layer.weight[masked] == 0)
