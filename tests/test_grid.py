"""Sweep grids: products of names, seeds and keys, from flags and files, and the usage errors."""

import pytest

from clbench.config import resolve
from clbench.errors import UsageError
from clbench.grid import Group, axis, build_grid, group_from_flags, groups_from_file, varied_keys


def cells(*groups, **kwargs):
    return build_grid(list(groups), {"device": "cpu"}, **kwargs).cells


def test_flags_expand_as_a_product_and_a_key_multiplies_only_the_cells_that_have_it():
    group = group_from_flags("split_digits,permuted_digits", "naive,ewc", "task", "0-1", ["ewc_lambda=1e3,1e4"])
    grid = build_grid([group], {"device": "cpu"})
    pairs = [(c.benchmark, c.strategy, c.seed, c.method.ewc_lambda if c.strategy == "ewc" else None)
             for c in grid.cells]
    assert len(pairs) == 2 * (2 + 2 * 2) and len(set(pairs)) == len(pairs)
    assert ("split_digits", "naive", 1, None) in pairs and ("permuted_digits", "ewc", 0, 1e4) in pairs
    first = grid.cells[0]
    assert first == resolve("split_digits", "naive", scenario="task", seed=0, device="cpu")


def test_unsupported_scenarios_are_left_out_and_said():
    grid = build_grid([group_from_flags("split_digits,permuted_digits", "naive", "class", None)], {})
    assert [c.benchmark for c in grid.cells] == ["split_digits"]
    assert grid.left_out == ("permuted_digits/naive/class: permuted_digits has no class scenario",)


def test_a_list_valued_key_takes_alternatives_separated_by_slashes():
    assert axis("400,400/1000,1000", list_valued=True) == ("400,400", "1000,1000")
    assert axis("1e3,1e4", list_valued=False) == ("1e3", "1e4")
    assert axis([400, 400], list_valued=True) == ([400, 400],)
    assert axis([[400], [800]], list_valued=True) == ([400], [800])
    assert axis([0.1, 0.2], list_valued=False) == (0.1, 0.2)
    grid = build_grid([group_from_flags("split_digits", "naive", None, None, ["hidden=32,32/64"])], {})
    assert [c.train.hidden for c in grid.cells] == [(32, 32), (64,)]


@pytest.mark.parametrize("flags, message", [
    (("split_digits", "naiv", None, None, ()), "unknown strategy 'naiv'. Did you mean 'naive'?"),
    (("split_digits", "naive", "clas", None, ()), "unknown scenario 'clas'"),
    (("split_digits", "naive", None, None, ("ewc_lambda=1",)), "key 'ewc_lambda' belongs to none"),
    (("split_digits", "naive", None, None, ("lr=-1",)), "bad value for 'lr'"),
    (("permuted_digits", "naive", "class", None, ()), "the sweep has no cells (permuted_digits/naive/class"),
    ((None, "naive", None, None, ()), "the sweep names no benchmark"),
])
def test_bad_grids_are_usage_errors(flags, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_grid([group_from_flags(*flags[:4], flags[4])], {})


def test_more_than_ten_thousand_cells_need_yes():
    group = Group(("split_digits",), ("naive",), seeds=tuple(range(10_001)))
    with pytest.raises(UsageError, match="more than 10,000 cells; narrow its axes, or add --yes"):
        build_grid([group], {})
    assert len(build_grid([group], {}, allow_large=True).cells) == 10_001


def test_a_missing_sweep_file_or_config_is_named_as_such(tmp_path):
    with pytest.raises(UsageError, match="cannot read sweep file '.*absent.toml': no such file"):
        groups_from_file(tmp_path / "absent.toml")
    sweep = tmp_path / "table.toml"
    sweep.write_text('[[cells]]\nbenchmark = "split_digits"\nstrategy = "naive"\nconfig = "gone.toml"\n')
    with pytest.raises(UsageError, match="cannot read the config of \\[\\[cells\\]\\] entry 1 of '.*table.toml'"):
        groups_from_file(sweep)


def test_a_config_files_names_fill_in_the_flags_left_out(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('benchmark = "split_digits"\nstrategy = "naive"\nseeds = "1-2"\niterations = 3\n')
    grid = build_grid([group_from_flags(None, None, None, None, (), str(config))], {})
    assert [(c.benchmark, c.strategy, c.seed, c.train.iterations) for c in grid.cells] == [
        ("split_digits", "naive", 1, 3), ("split_digits", "naive", 2, 3)]
    grid = build_grid([group_from_flags(None, "ewc", None, "5", (), str(config))], {})
    assert [(c.strategy, c.seed) for c in grid.cells] == [("ewc", 5)]
    config.write_text("benchmark = 3\n")
    with pytest.raises(UsageError, match="bad value for 'benchmark' in --config '.*run.toml': received 3, expected a "
                                         "benchmark name"):
        group_from_flags(None, "naive", None, None, (), str(config))


def test_a_sweep_file_with_axes_cells_and_a_config_file(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "fast.toml").write_text('benchmark = "split_digits"\nstrategy = "ewc"\niterations = 7\n')
    sweep = tmp_path / "sweeps" / "table.toml"
    sweep.parent.mkdir()
    sweep.write_text('benchmark = "split_digits"\nstrategy = ["naive", "si"]\nscenario = ["task", "class"]\n'
                     'seeds = "0-1"\n[set]\niterations = 5\nsi_lambda = [1.0, 10.0]\n\n'
                     '[[cells]]\nbenchmark = "split_digits"\nstrategy = "ewc"\nconfig = "../configs/fast.toml"\n'
                     'seeds = [2]\n')
    grid = build_grid(groups_from_file(sweep), {})
    assert len(grid.cells) == 2 * 2 * (1 + 2) + 1
    ewc = grid.cells[-1]
    assert (ewc.strategy, ewc.seed, ewc.train.iterations) == ("ewc", 2, 7)
    assert {c.train.iterations for c in grid.cells[:-1]} == {5}
    labels = varied_keys(grid)
    assert labels[ewc.run_id()] == "" and "si_lambda=10.0" in labels[grid.cells[-2].run_id()]


@pytest.mark.parametrize("text, message", [
    ("benchmark = 'split_digits'\nstrategy = 'naive'\nseeds = '0-1'\nlr = 0.1\n", "unknown entry 'lr'"),
    ("cells = 3\n", "'cells' in sweep file"),
    ("", "names no cells"),
])
def test_bad_sweep_files(tmp_path, text, message):
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        build_grid(groups_from_file(path), {})


def test_duplicate_cells_run_once():
    group = group_from_flags("split_digits", "naive,naive", None, "0,0", ["lr=0.001,1e-3"])
    assert len(build_grid([group], {}).cells) == 1
