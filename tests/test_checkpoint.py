"""Checkpoints: a run stopped after an experience and run again gives the uninterrupted run's record."""

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


RESUMABLE = [e.name for e in STRATEGIES if not e.extra.get("joint")
             and e.name not in ("replay", "path_plastic")]
CASES = [("split_digits", "class"), ("split_digits", "task"), ("permuted_digits", "domain")]


def same_run(a, b) -> None:
    assert a.accuracy_matrix == b.accuracy_matrix and a.initial_accuracy == b.initial_accuracy
    assert a.extras == b.extras and a.metrics == b.metrics and a.model == b.model


@pytest.mark.parametrize("strategy", RESUMABLE)
@pytest.mark.parametrize("benchmark, scenario", CASES, ids=lambda v: v)
def test_a_resumed_run_is_the_uninterrupted_run(strategy, benchmark, scenario, tmp_path):
    cfg = resolve(benchmark, strategy, scenario=scenario, cli_values={"iterations": "12"}, device="cpu")
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


@pytest.mark.parametrize("strategy", ["replay", "path_plastic"])
def test_strategies_without_checkpoints_say_so_and_run(strategy, tmp_path):
    cfg = resolve("split_digits", strategy, cli_values={"iterations": "2"}, device="cpu")
    with pytest.warns(checkpoint.CheckpointWarning, match="cannot resume"):
        record = runner.run(cfg, checkpointing=Checkpointing(tmp_path / "run.ckpt"))
    assert record.status == "ok" and not (tmp_path / "run.ckpt").exists()


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
    """A plugin whose attributes change across experiences must save them (or be listed as unsupported)."""
    cfg = resolve("split_digits", strategy, cli_values={"iterations": "3"}, device="cpu")
    runner.seed_everything(0)
    benchmark, built = runner.build(cfg)
    stream = list(benchmark.train_stream)
    built.train(stream[0])
    before = {id(p): fingerprint(p) for p in built.plugins}
    built.train(stream[1])
    for plugin in built.plugins:
        name = type(plugin).__name__
        if checkpoint.adapter_for(plugin) is None and name not in checkpoint.UNSUPPORTED:
            assert fingerprint(plugin) == before[id(plugin)], f"{name} keeps state but has no state_dict"
