"""Parsing and checking of keys, values, seeds and config files."""

import pytest

from clbench.config import TrainConfig, coerce, load_toml, parse_assignments, parse_seeds, resolve
from clbench.errors import UsageError


@pytest.mark.parametrize("key,raw,expected", [
    ("epochs", "3", 3),
    ("lr", "1e-2", 0.01),
    ("lr", 2, 2.0),
    ("optimizer", "sgd", "sgd"),
    ("hidden", "400,200", (400, 200)),
    ("hidden", [10, 20], (10, 20)),
    ("hidden", "", ()),
])
def test_coerce_parses_by_field_type(key, raw, expected):
    assert coerce(TrainConfig, key, raw) == expected


@pytest.mark.parametrize("key,raw,fragment", [
    ("epochs", "two", "expected an integer"),
    ("epochs", "1.5", "expected an integer"),
    ("epochs", "0", ">= 1"),
    ("lr", "-1", "> 0"),
    ("lr", "fast", "expected a number"),
    ("lr", "inf", "expected a number"),
    ("weight_decay", "nan", "expected a number"),
    ("optimizer", "rmsprop", "one of sgd, adam"),
    ("hidden", "400,x", "comma-separated list of ints"),
    ("momentum", "1.5", "<= 1"),
])
def test_coerce_rejects_bad_values_with_what_was_received(key, raw, fragment):
    with pytest.raises(UsageError) as err:
        coerce(TrainConfig, key, raw)
    assert fragment in str(err.value) and repr(raw) in str(err.value)


def test_bool_values():
    from clbench.benchmarks.catalog import PermutedConfig

    assert coerce(PermutedConfig, "identity_first", "false") is False
    assert coerce(PermutedConfig, "identity_first", "yes") is True
    with pytest.raises(UsageError):
        coerce(PermutedConfig, "identity_first", "maybe")


def test_parse_assignments():
    assert parse_assignments(["lr=0.1", "ewc-lambda=10"]) == {"lr": "0.1", "ewc_lambda": "10"}
    with pytest.raises(UsageError, match="key=value"):
        parse_assignments(["lr"])


@pytest.mark.parametrize("text,seeds", [("0-4", [0, 1, 2, 3, 4]), ("3", [3]), ("0-1,5", [0, 1, 5]), ("2,2", [2])])
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["a-b", "", "-1"])
def test_parse_seeds_rejects_garbage(text):
    with pytest.raises(UsageError):
        parse_seeds(text)


def test_precedence_defaults_protocol_file_cli():
    cfg = resolve("split_mnist", "ewc")
    assert cfg.train.iterations == 2000 and cfg.train.hidden == (400, 400)  # protocol
    assert cfg.train.momentum == 0.0  # registered default
    cfg = resolve("split_mnist", "ewc", file_values={"lr": 0.5, "ewc_lambda": 7}, cli_values={"lr": "0.25"})
    assert cfg.train.lr == 0.25  # CLI beats file
    assert cfg.method.ewc_lambda == 7.0  # file beats default
    assert cfg.scenario == "class"


def test_unknown_key_suggests_and_lists_valid_keys():
    with pytest.raises(UsageError) as err:
        resolve("split_digits", "ewc", cli_values={"ewc_lamda": "1"})
    message = str(err.value)
    assert "Did you mean 'ewc_lambda'?" in message and "Valid keys:" in message


def test_scenario_must_be_supported():
    with pytest.raises(UsageError, match="does not support scenario 'domain'"):
        resolve("split_digits", "naive", scenario="domain")


def test_n_experiences_must_divide_the_classes():
    with pytest.raises(UsageError, match="divisor of the 10 classes: 1, 2, 5, 10"):
        resolve("split_digits", "naive", cli_values={"n_experiences": "3"})


def test_run_id_depends_on_config_and_seed():
    a = resolve("split_digits", "naive", seed=0)
    assert a.run_id() == resolve("split_digits", "naive", seed=0).run_id()
    assert a.run_id() != resolve("split_digits", "naive", seed=1).run_id()
    assert a.run_id() != resolve("split_digits", "naive", seed=0, cli_values={"lr": "0.01"}).run_id()


def test_a_key_added_later_counts_only_away_from_its_default():
    import dataclasses

    from clbench.config import param

    @dataclasses.dataclass(frozen=True)
    class Before:
        lr_scale: float = param(1.0, "a first-release key")

    @dataclasses.dataclass(frozen=True)
    class After(Before):
        extra: int = param(0, "a key added later", since=2)

    base = resolve("split_digits", "naive")
    before = dataclasses.replace(base, method=Before())
    after = dataclasses.replace(base, method=After())
    assert after.to_dict() == before.to_dict() and "extra" not in after.to_dict()
    assert after.run_id() == before.run_id()  # records made before the key existed keep their ids
    changed = dataclasses.replace(base, method=After(extra=3))
    assert changed.to_dict()["extra"] == 3 and changed.run_id() != before.run_id()
    moved = dataclasses.replace(base, method=Before(lr_scale=2.0))
    assert moved.run_id() != before.run_id()  # a first-release key always counts


def test_record_config_is_json_ready_and_has_no_paths():
    cfg = resolve("split_digits", "naive", data_root="/somewhere")
    data = cfg.to_dict()
    assert data["hidden"] == [100, 100] and "data_root" not in data


def test_load_toml_errors(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        load_toml(tmp_path / "missing.toml")
    with pytest.raises(UsageError, match="it is a folder"):
        load_toml(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text("lr = = 3")
    with pytest.raises(UsageError, match="cannot parse"):
        load_toml(bad)
    good = tmp_path / "good.toml"
    good.write_text('strategy = "ewc"\newc_lambda = 10.0\nhidden = [50, 50]\n')
    assert load_toml(good) == {"strategy": "ewc", "ewc_lambda": 10.0, "hidden": [50, 50]}


def test_tuned_defaults_apply_to_their_benchmark_and_scenario_only():
    from clbench.registry import STRATEGIES

    entry = STRATEGIES.get("ewc")
    tuned = entry.tuned["split_mnist/task"]["ewc_lambda"]
    assert resolve("split_mnist", "ewc", scenario="task").method.ewc_lambda == tuned
    assert resolve("split_mnist", "ewc", scenario="class").method.ewc_lambda == 5000.0
    assert resolve("split_digits", "ewc", scenario="task").method.ewc_lambda == 5000.0
    cfg = resolve("split_mnist", "ewc", scenario="task", file_values={"ewc_lambda": 3.0})
    assert cfg.method.ewc_lambda == 3.0  # a config file still wins over tuned values


def test_a_later_key_set_back_to_its_field_default_survives_the_round_trip_through_a_record():
    """permuted_mnist's protocol sets normalize=false and pad=2; a config asking for the field defaults
    (normalize=true, pad=0: Numenta's pixels) leaves them out of its dict (so old records keep their ids),
    and rebuilding it from that dict (a sweep worker, a record, a checkpoint) must give them back, not the
    protocol's values."""
    from clbench.config import config_from_dict

    cfg = resolve("permuted_mnist", "naive", file_values={"normalize": True, "pad": 0})
    assert "normalize" not in cfg.to_dict() and "pad" not in cfg.to_dict()
    rebuilt = config_from_dict(cfg.to_dict())
    assert (rebuilt.bench.normalize, rebuilt.bench.pad) == (True, 0)
    assert rebuilt.run_id() == cfg.run_id()
    default = resolve("permuted_mnist", "naive")
    assert (default.bench.normalize, default.bench.pad) == (False, 2)
    assert config_from_dict(default.to_dict()) == default
