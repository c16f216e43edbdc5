"""Per-experience checkpoints: a stopped run continues where it stopped, with the same accuracy matrix.

A checkpoint holds only tensors and plain data (written with `torch.save`,
read with `torch.load(..., weights_only=True)`; never a pickle of an object):
the model's and optimizer's state, every plugin's state, the RNG states and
the rows, timings and extras of the run so far. Plugins take part through a
small protocol, `state_dict() -> dict` and `load_state_dict(state)`; the
Avalanche plugins clbench uses (its clock, EWC, SI) are read and written by
the adapters below. A plugin that keeps state without either is refused by a
test over the registry.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from clbench import __version__
from clbench.errors import ClbenchError
from clbench.records import MODEL_SUFFIX, write_atomic

FORMAT = 1
POLICIES = ("every", "last", "none")


class CheckpointError(ClbenchError):
    """A checkpoint that cannot be used: corrupt, from another config, version or format."""

    exit_code = 1


@dataclass(frozen=True)
class Checkpointing:
    """Where a run keeps its checkpoint and when it writes it (`every` experience, the `last`, or `none`)."""

    path: Path
    policy: str = "every"
    resume: bool = True

    def writes_after(self, index: int, count: int) -> bool:
        return self.policy == "every" or (self.policy == "last" and index == count - 1)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


# ------------------------------------------------------------------ RNG states
def rng_state() -> dict[str, Any]:
    numpy_state = np.random.get_state(legacy=False)
    version, internal, gauss = random.getstate()
    return {"torch": torch.get_rng_state(),
            "numpy": {"key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
                      "pos": int(numpy_state["state"]["pos"]), "has_gauss": int(numpy_state["has_gauss"]),
                      "gauss": float(numpy_state["gauss"])},
            "python": [version, list(internal), gauss]}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937",
                         "state": {"key": numpy_state["key"].numpy().astype(np.uint32), "pos": numpy_state["pos"]},
                         "has_gauss": numpy_state["has_gauss"], "gauss": numpy_state["gauss"]})
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


# --------------------------------------------------------- Avalanche's plugins
def _param_tensors(params: dict) -> dict[str, torch.Tensor]:
    return {name: value.data.clone() for name, value in params.items()}


def _param_data(tensors: dict[str, torch.Tensor]) -> dict:
    from avalanche.training.utils import ParamData

    return {name: ParamData(name, tensor.shape, init_tensor=tensor) for name, tensor in tensors.items()}


def _clock_state(clock) -> dict:
    return {key: getattr(clock, key) for key in ("train_iterations", "train_exp_counter", "train_exp_epochs",
                                                 "train_exp_iterations", "train_epoch_iterations",
                                                 "total_iterations")}


def _set_attributes(plugin, state: dict) -> None:
    for key, value in state.items():
        setattr(plugin, key, value)


def _ewc_state(ewc) -> dict:
    return {"saved_params": {exp: _param_tensors(p) for exp, p in ewc.saved_params.items()},
            "importances": {exp: _param_tensors(p) for exp, p in ewc.importances.items()}}


def _load_ewc(ewc, state: dict) -> None:
    for key in ("saved_params", "importances"):
        target = getattr(ewc, key)
        target.clear()
        target.update({exp: _param_data(tensors) for exp, tensors in state[key].items()})


def _si_state(si) -> dict:
    return {"ewc_data": [_param_tensors(part) for part in si.ewc_data],
            "syn_data": {key: _param_tensors(part) for key, part in si.syn_data.items()}}


def _load_si(si, state: dict) -> None:
    si.ewc_data = tuple(_param_data(part) for part in state["ewc_data"])
    si.syn_data = {key: _param_data(part) for key, part in state["syn_data"].items()}


@functools.lru_cache(maxsize=1)
def _adapters() -> dict[type, tuple[Callable, Callable]]:
    """Avalanche plugin class -> (state of a plugin, load a state into one)."""
    from avalanche.training.plugins import EWCPlugin, SynapticIntelligencePlugin
    from avalanche.training.plugins.clock import Clock

    return {Clock: (_clock_state, _set_attributes), EWCPlugin: (_ewc_state, _load_ewc),
            SynapticIntelligencePlugin: (_si_state, _load_si)}


def adapter_for(plugin) -> tuple[Callable, Callable] | None:
    """(state_dict, load_state_dict) for `plugin`: its own methods, an adapter, or None if it keeps no state."""
    if callable(getattr(plugin, "state_dict", None)) and callable(getattr(plugin, "load_state_dict", None)):
        return type(plugin).state_dict, type(plugin).load_state_dict
    for cls in type(plugin).__mro__:
        found = _adapters().get(cls)
        if found:
            return found
    return None


def keyed_plugins(strategy) -> dict[str, Any]:
    """The strategy's plugins that keep state, keyed by class name and rank among those of their class."""
    keyed: dict[str, Any] = {}
    for plugin in strategy.plugins:
        if adapter_for(plugin) is not None and not getattr(plugin, "restores_checkpoint", False):
            name = type(plugin).__name__
            keyed[f"{name}#{sum(k.startswith(name + '#') for k in keyed)}"] = plugin
    return keyed


def plugins_state(strategy) -> dict[str, Any]:
    return {key: adapter_for(plugin)[0](plugin) for key, plugin in keyed_plugins(strategy).items()}


def load_plugins_state(strategy, states: dict[str, Any], path: Path) -> None:
    plugins = keyed_plugins(strategy)
    if set(plugins) != set(states):
        raise CheckpointError(f"checkpoint '{path}' holds plugins {', '.join(sorted(states))}, this run has "
                              f"{', '.join(sorted(plugins))}: delete it, or run with --no-resume.")
    for key, plugin in plugins.items():
        adapter_for(plugin)[1](plugin, states[key])


# ----------------------------------------------------------------- optimizer
def optimizer_state(optimizer: torch.optim.Optimizer, model: torch.nn.Module) -> dict[str, Any]:
    """The optimizer's state dict and the names of its parameters, group by group (the order it indexes)."""
    names = {id(p): name for name, p in model.named_parameters()}
    return {"state": optimizer.state_dict(),
            "params": [[names[id(p)] for p in group["params"]] for group in optimizer.param_groups]}


def load_optimizer_state(optimizer: torch.optim.Optimizer, model: torch.nn.Module, state: dict[str, Any]) -> None:
    params = dict(model.named_parameters())
    for group, names in zip(optimizer.param_groups, state["params"]):
        group["params"] = [params[name] for name in names]
    optimizer.load_state_dict(state["state"])


def restore_optimizer_plugin(state: dict[str, Any]):
    """A plugin that loads the saved optimizer state when the resumed run starts its first experience.

    Avalanche resets the optimizer's state the first time a strategy trains, before its plugins'
    `before_training_exp`; this plugin goes first among them, so the run continues with the saved
    moments, and every other plugin sees them.
    """
    from avalanche.core import SupervisedPlugin

    class RestoreOptimizerPlugin(SupervisedPlugin):
        restores_checkpoint = True

        def __init__(self):
            super().__init__()
            self.pending: dict[str, Any] | None = state

        def before_training_exp(self, strategy, **kwargs):
            if self.pending is not None:
                load_optimizer_state(strategy.optimizer, strategy.model, self.pending)
                self.pending = None

        def state_dict(self) -> dict:
            return {}

        def load_state_dict(self, state: dict) -> None:
            pass

    return RestoreOptimizerPlugin()


# ------------------------------------------------------------ whole strategy
def capture(strategy, progress: dict[str, Any], cfg) -> dict[str, Any]:
    """Everything a run needs to continue after the experience just evaluated (`progress`: the run so far)."""
    return {"run_id": cfg.run_id(), "config": cfg.to_dict(), "progress": progress,
            "model": strategy.model.state_dict(), "optimizer": optimizer_state(strategy.optimizer, strategy.model),
            "plugins": plugins_state(strategy), "rng": rng_state()}


def restore(strategy, saved: dict[str, Any], stream: list, path: Path) -> None:
    """Put a freshly built strategy (and the RNGs) in the state `saved` was captured in."""
    from avalanche.benchmarks.utils import concat_datasets
    from avalanche.models.utils import avalanche_model_adaptation
    from avalanche.training import Cumulative

    trained = stream[:len(saved["progress"]["matrix"])]
    load_plugins_state(strategy, saved["plugins"], path)  # first: a plugin may add buffers to the model
    strategy.model.train()
    for experience in trained:  # dynamic modules learn the tasks (and grow the heads) they had seen
        avalanche_model_adaptation(strategy.model, experience)
    strategy.model.load_state_dict(saved["model"])
    strategy.plugins.insert(0, restore_optimizer_plugin(saved["optimizer"]))
    if isinstance(strategy, Cumulative):  # its union of the experiences seen so far
        strategy.dataset = concat_datasets([exp.dataset for exp in trained])
    set_rng_state(saved["rng"])


# ------------------------------------------------------------------ on disk
def save(path: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint atomically (temp file in the same folder, then a rename)."""
    write_atomic(path, lambda handle: torch.save({"format": FORMAT, "clbench": __version__, **state}, handle))


def load(path: Path, run_id: str, config: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint of the run `run_id` with `config`, or a CheckpointError naming the file and the fix."""
    state = _read(path)
    if state.get("run_id") != run_id or state.get("config") != config:
        saved = state.get("config") or {}
        differ = sorted(k for k in set(config) | set(saved) if config.get(k) != saved.get(k))
        raise CheckpointError(f"checkpoint '{path}' belongs to another config (differs in "
                              f"{', '.join(differ) or 'its run id'}): {RESTART}.")
    return state


RESTART = "delete it, or run with --no-resume to start over"


def _read(path: Path) -> dict[str, Any]:
    """A checkpoint's contents, or a CheckpointError: unreadable, not a checkpoint, another format or version."""
    fix = RESTART
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # truncated, corrupt, or not a checkpoint at all
        raise CheckpointError(f"cannot read checkpoint '{path}' ({type(exc).__name__}): {fix}.") from None
    if not isinstance(state, dict) or "format" not in state:
        raise CheckpointError(f"'{path}' is not a clbench checkpoint: {fix}.")
    if state["format"] != FORMAT:
        raise CheckpointError(f"checkpoint '{path}' has format {state['format']}, this clbench {__version__} "
                              f"reads format {FORMAT}: {fix}.")
    if state.get("clbench") != __version__:
        raise CheckpointError(f"checkpoint '{path}' was written by clbench {state.get('clbench')}, this is "
                              f"{__version__}: {fix}.")
    return state


# --------------------------------------------------------------- saved models
@dataclass(frozen=True)
class ModelShape:
    """What a strategy's builder reads of a benchmark to build its model: the input and the output heads."""

    input_shape: tuple[int, ...]
    n_heads: int
    head_size: int


def save_model(path: Path, model: torch.nn.Module, cfg, shape: ModelShape) -> Path:
    """Keep a trained model: its weights (and topology), the resolved config and the shape it was built for."""
    save(path, {"kind": "model", "run_id": cfg.run_id(), "config": cfg.to_dict(), "model": model.state_dict(),
                "shape": {"input_shape": list(shape.input_shape), "n_heads": shape.n_heads,
                          "head_size": shape.head_size}})
    return path


def read_model_file(path: Path) -> dict[str, Any]:
    """The contents of a `--save-model` file, or a CheckpointError that says what the file is not."""
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise CheckpointError(f"no model file '{path}': give the {MODEL_SUFFIX} file that "
                              "'clbench run --save-model' wrote.") from None
    except Exception as exc:
        raise CheckpointError(f"cannot read model file '{path}' ({type(exc).__name__}): give the {MODEL_SUFFIX} "
                              "file that 'clbench run --save-model' wrote.") from None
    if not isinstance(state, dict) or state.get("kind") != "model" or state.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is not a clbench model file (format {FORMAT}): give the {MODEL_SUFFIX} "
                              "file that 'clbench run --save-model' wrote.")
    return state


def build_saved_model(state: dict[str, Any], **run: Any) -> tuple[Any, torch.nn.Module]:
    """(its RunConfig, the model with its weights) for the contents of a model file."""
    from clbench.config import config_from_dict
    from clbench.harness import output_masks
    from clbench.registry import STRATEGIES

    cfg = config_from_dict(state["config"], **run)
    shape = ModelShape(tuple(state["shape"]["input_shape"]), state["shape"]["n_heads"], state["shape"]["head_size"])
    model = STRATEGIES.get(cfg.strategy).load_builder()(cfg, shape, []).model
    for mask in output_masks(cfg.train, cfg.scenario, shape.n_heads, shape.head_size):
        mask.attach(model)
    model.load_state_dict(state["model"])
    return cfg, model.eval()


def load_model(path: str | Path) -> torch.nn.Module:
    """The model a `clbench run --save-model` kept, rebuilt from its config, in eval mode."""
    return build_saved_model(read_model_file(Path(path)), device="cpu")[1]
