"""Checkpoints: a run stopped after an experience and run again gives the uninterrupted run's record."""

import json

import pytest
import torch
from avalanche.core import SupervisedPlugin

from clbench import checkpoint, runner
from clbench.checkpoint import CheckpointError, Checkpointing
from clbench.config import resolve
from clbench.registry import STRATEGIES


class Stopped(BaseException):
    """What a killed process would leave: nothing after the checkpoint of the last finished experience."""


class StopBefore(SupervisedPlugin):
    """Stops the run when experience `index` is about to train."""

    def __init__(self, index: int):
        super().__init__()
        self.index = index

    def before_training_exp(self, strategy, **kwargs):
        if strategy.experience.current_experience == self.index:
            raise Stopped


RESUMABLE = [e.name for e in STRATEGIES if not e.extra.get("joint")]
EXERCISE = {"path_plastic": {"rewire_every": "3"}}  # rewire within an experience too
CASES = [("split_digits", "class"), ("split_digits", "task"), ("permuted_digits", "domain")]


def measured(extras: dict) -> dict:
    """Extras without the seconds a method measures (they differ between any two runs)."""
    return {key: value for key, value in extras.items() if not key.endswith("_seconds")}


def same_run(a, b) -> None:
    assert a.accuracy_matrix == b.accuracy_matrix and a.initial_accuracy == b.initial_accuracy
    assert measured(a.extras) == measured(b.extras) and a.metrics == b.metrics and a.model == b.model


@pytest.mark.parametrize("strategy", RESUMABLE)
@pytest.mark.parametrize("benchmark, scenario", CASES, ids=lambda v: v)
def test_a_resumed_run_is_the_uninterrupted_run(strategy, benchmark, scenario, tmp_path):
    keys = {"iterations": "12", **EXERCISE.get(strategy, {})}
    cfg = resolve(benchmark, strategy, scenario=scenario, cli_values=keys, device="cpu")
    whole = runner.run(cfg)
    for stop in (2, 4):  # after experience 1 and after experience 3
        saving = Checkpointing(tmp_path / f"stop{stop}.ckpt")
        with pytest.raises(Stopped):
            runner.run(cfg, checkpointing=saving, plugins=[StopBefore(stop)])
        assert saving.path.exists()
        resumed = runner.run(cfg, checkpointing=saving)
        assert resumed.timing["resumed_at_experience"] == stop
        same_run(resumed, whole)


def test_no_resume_starts_over_and_the_last_policy_writes_once(tmp_path):
    cfg = resolve("split_digits", "naive", cli_values={"iterations": "5"}, device="cpu")
    path = tmp_path / "run.ckpt"
    with pytest.raises(Stopped):
        runner.run(cfg, checkpointing=Checkpointing(path, policy="last"), plugins=[StopBefore(2)])
    assert not path.exists()
    record = runner.run(cfg, checkpointing=Checkpointing(path, policy="last"))
    assert path.exists() and "resumed_at_experience" not in record.timing
    again = runner.run(cfg, checkpointing=Checkpointing(path, resume=False))
    assert "resumed_at_experience" not in again.timing and again.accuracy_matrix == record.accuracy_matrix


@pytest.fixture
def stopped_run(tmp_path):
    cfg = resolve("split_digits", "naive", cli_values={"iterations": "3"}, device="cpu")
    path = tmp_path / "run.ckpt"
    with pytest.raises(Stopped):
        runner.run(cfg, checkpointing=Checkpointing(path), plugins=[StopBefore(1)])
    return cfg, path


def test_a_truncated_checkpoint_is_refused(stopped_run):
    cfg, path = stopped_run
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=f"cannot read checkpoint '{path}'.*--no-resume"):
        runner.run(cfg, checkpointing=Checkpointing(path))


def test_a_checkpoint_of_another_config_is_refused(stopped_run):
    cfg, path = stopped_run
    other = resolve("split_digits", "naive", cli_values={"iterations": "3", "lr": "0.5"}, device="cpu")
    other_path = path.with_name("other.ckpt")
    other_path.write_bytes(path.read_bytes())
    with pytest.raises(CheckpointError, match="belongs to another config \\(differs in lr\\)"):
        runner.run(other, checkpointing=Checkpointing(other_path))


def test_a_checkpoint_of_a_future_format_is_refused(stopped_run):
    cfg, path = stopped_run
    state = torch.load(path, weights_only=True)
    state["format"] = checkpoint.FORMAT + 1
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=f"has format {checkpoint.FORMAT + 1}, this clbench"):
        runner.run(cfg, checkpointing=Checkpointing(path))


KILL_AFTER_TWO = '''
import os, signal, sys
from avalanche.core import SupervisedPlugin
from clbench import runner
from clbench.checkpoint import Checkpointing
from clbench.config import resolve

class Kill(SupervisedPlugin):
    def before_training_exp(self, strategy, **kwargs):
        if strategy.experience.current_experience == 2:
            os.kill(os.getpid(), signal.SIGKILL)

cfg = resolve("split_digits", "sparse_syn", cli_values={"iterations": "12"}, device="cpu")
runner.run(cfg, checkpointing=Checkpointing(__import__("pathlib").Path(sys.argv[1])), plugins=[Kill()])
'''


def test_a_killed_process_leaves_its_last_checkpoint_and_nothing_half_written(tmp_path):
    import signal
    import subprocess
    import sys

    path = tmp_path / "run" / "run.ckpt"
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_TWO, str(path)], capture_output=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL
    assert [p.name for p in path.parent.iterdir()] == ["run.ckpt"]  # no temporary file left
    cfg = resolve("split_digits", "sparse_syn", cli_values={"iterations": "12"}, device="cpu")
    resumed = runner.run(cfg, checkpointing=Checkpointing(path))
    assert resumed.timing["resumed_at_experience"] == 2
    same_run(resumed, runner.run(cfg))


def fingerprint(plugin) -> dict[str, str]:
    return {key: repr(value) for key, value in vars(plugin).items() if not key.startswith("_")}


@pytest.mark.parametrize("strategy", [e.name for e in STRATEGIES if not e.extra.get("joint")])
def test_every_plugin_that_keeps_state_has_the_checkpoint_protocol(strategy):
    """A plugin whose attributes change across experiences must save them."""
    cfg = resolve("split_digits", strategy, cli_values={"iterations": "3"}, device="cpu")
    runner.seed_everything(0)
    benchmark, built = runner.build(cfg)
    stream = list(benchmark.train_stream)
    built.train(stream[0])
    before = {id(p): fingerprint(p) for p in built.plugins}
    built.train(stream[1])
    for plugin in built.plugins:
        name = type(plugin).__name__
        if checkpoint.adapter_for(plugin) is None:
            assert fingerprint(plugin) == before[id(plugin)], f"{name} keeps state but has no state_dict"


@pytest.mark.parametrize("strategy", [e.name for e in STRATEGIES])
def test_a_saved_model_gives_the_records_last_row(strategy, tmp_path):
    cfg = resolve("split_digits", strategy, scenario="task", cli_values={"iterations": "6"}, device="cpu")
    path = tmp_path / "model.pt"
    record = runner.run(cfg, model_path=path)
    assert isinstance(checkpoint.load_model(path), torch.nn.Module)
    result = runner.evaluate_model_file(path, device="cpu")
    assert result["accuracy"] == record.accuracy_matrix[-1] and result["run_id"] == record.run_id


def test_run_and_eval_from_the_command_line(cli, tmp_path):
    out = tmp_path / "out"
    args = ("run", "-b", "split_digits", "-s", "naive", "--iterations", "4", "--out", out, "-q", "--device", "cpu")
    assert cli(*args, "--save-model").code == 0
    folder = out / "split_digits" / "naive"
    (model,) = folder.glob("*.model.pt")
    assert not list(folder.glob("*.ckpt"))  # deleted once the record is written
    assert cli(*args, "--keep-checkpoint").code == 0 and len(list(folder.glob("*.ckpt"))) == 1
    resumed = cli(*args)
    assert resumed.code == 0 and "resuming from" in resumed.err and not list(folder.glob("*.ckpt"))
    evaluated = cli("eval", model, "--device", "cpu", "--json")
    assert evaluated.code == 0 and '"benchmark": "split_digits"' in evaluated.out
    not_a_model = cli("eval", next(folder.glob("*.json")), "--device", "cpu")
    assert not_a_model.code == 1 and not_a_model.err.count("\n") == 1
    assert "cannot read model file" in not_a_model.err and "clbench run --save-model" in not_a_model.err
    other_shape = cli("eval", model, "-b", "split_digits", "--scenario", "task", "--device", "cpu")
    assert other_shape.code == 2 and "was built for inputs (1, 8, 8) and 1 head(s) of 10" in other_shape.err
    assert not list(tmp_path.glob("figures")) and sorted(p.suffix for p in folder.iterdir()) == [".json", ".pt"]


def test_a_checkpoint_of_another_clbench_version_is_refused(stopped_run):
    cfg, path = stopped_run
    state = torch.load(path, weights_only=True)
    state["clbench"] = "0.0.1"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="was written by clbench 0.0.1, this is"):
        runner.run(cfg, checkpointing=Checkpointing(path))


class FailBefore(StopBefore):
    """A run that fails (an ordinary exception, recorded) when experience `index` is about to train."""

    def before_training_exp(self, strategy, **kwargs):
        if strategy.experience.current_experience == self.index:
            raise RuntimeError("out of disk")


def test_a_failed_run_keeps_its_checkpoint_and_the_same_command_continues(cli, tmp_path, monkeypatch):
    import functools

    out = tmp_path / "out"
    args = ("run", "-b", "split_digits", "-s", "naive", "--iterations", "4", "--out", out, "-q", "--device", "cpu")
    real_run = runner.run
    monkeypatch.setattr(runner, "run", functools.partial(real_run, plugins=[FailBefore(2)]))
    failed = cli(*args)
    assert failed.code == 1 and "failed" in failed.err and "checkpoint kept at" in failed.err
    (kept,) = (out / "split_digits" / "naive").glob("*.ckpt")
    monkeypatch.setattr(runner, "run", real_run)
    resumed = cli(*args)
    assert resumed.code == 0 and "resuming from" in resumed.err and not kept.exists()
    (record,) = [json.loads(p.read_text()) for p in kept.parent.glob("*.json")]
    assert record["status"] == "ok" and record["timing"]["resumed_at_experience"] == 2


@pytest.mark.parametrize("status", ["ok", "failed", "diverged"])
def test_a_sweep_cell_deletes_its_checkpoint_only_when_it_ends_ok(status, tmp_path, monkeypatch):
    import ray

    from clbench import sweep

    cfg = resolve("split_digits", "naive", cli_values={"iterations": "3"}, device="cpu")
    path = tmp_path / "cell.ckpt"
    path.write_bytes(b"state")

    def finished(cfg, checkpointing):
        record = real_run(cfg)
        record.status = status
        return record

    real_run = runner.run
    monkeypatch.setattr(runner, "run", finished)
    record = sweep.run_cell(cfg.to_dict(), {"device": "cpu"}, str(path))
    assert record["status"] == status and path.exists() == (status != "ok")
    assert record["env"]["node"].endswith("/local") and not ray.is_initialized()  # outside Ray: none started


@pytest.mark.parametrize("resume", [True, False])
def test_a_sweep_cell_resumes_from_its_checkpoint_unless_told_not_to(resume, tmp_path):
    from clbench import sweep

    cfg = resolve("split_digits", "naive", cli_values={"iterations": "4"}, device="cpu")
    path = tmp_path / "cell.ckpt"
    with pytest.raises(Stopped):
        runner.run(cfg, checkpointing=Checkpointing(path), plugins=[StopBefore(2)])
    record = sweep.run_cell(cfg.to_dict(), {"device": "cpu"}, str(path), resume=resume)
    assert record["status"] == "ok" and not path.exists()
    assert record["timing"].get("resumed_at_experience") == (2 if resume else None)
    assert record["accuracy_matrix"] == runner.run(cfg).accuracy_matrix
