"""`clbench sweep` on Ray: every cell of a grid a Ray task, records written by the driver as they arrive.

With no address a local Ray is started for the sweep (as many CPUs as the
machine has, or `cpus`); with `address` ("auto" or HOST:PORT) the sweep joins
a running cluster. Each cell gets `cpus_per_run` CPUs and exactly that many
torch threads, so cells never oversubscribe a node. A Ray worker process runs
cell after cell, so it imports torch and Avalanche once.

Resume and faults: a cell whose record exists with status `ok` is skipped
(the run id hashes the whole config), so an interrupted sweep continues by
running the same command again. A cell that raises, diverges or whose worker
dies is retried `retries` times (on a single machine it resumes from its
checkpoint), then recorded as `failed` with the reason; one bad cell never
stops the sweep. When the cluster itself fails (the local raylet dies, no node
is left) the sweep stops at once without recording the cells it could not
run. Records travel back to the driver as data, so workers on other nodes need
no shared file system.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from clbench.config import RunConfig
from clbench.errors import ClbenchError, UsageError
from clbench.grid import Grid
from clbench.records import CHECKPOINT_SUFFIX, RunRecord, run_file, write_json_atomic


class SweepInterrupted(ClbenchError):
    """Ctrl-C or SIGTERM during a sweep: finished records are kept, the rest can be run by the same command."""

    exit_code = 130


class ClusterLost(ClbenchError):
    """The Ray cluster itself failed (its local raylet died, no node left to run a cell): the sweep stops,
    finished records are kept, and no record is written for the cells it could not run."""


@dataclass(frozen=True)
class SweepOptions:
    """How and where a sweep runs (the CLI flags of `clbench sweep`)."""

    out: Path = Path("results")
    address: str | None = None
    cpus: int | None = None
    cpus_per_run: int = 1
    gpus_per_run: float = 0
    retries: int = 1
    force: bool = False
    retry_failed: bool = False
    checkpoint: str = "every"
    resume: bool = True  # a cell continues from its checkpoint where one exists
    data_root: str | None = None
    download: bool = True
    device: str = "auto"


@dataclass
class SweepResult:
    """The sweep's records (run now or found), and what happened to its cells."""

    records: list[dict] = field(default_factory=list)
    ran: int = 0
    skipped: int = 0
    failed: int = 0
    not_run: int = 0
    ray_start_s: float = 0.0
    warm_up_s: float = 0.0  # the workers' import of torch and Avalanche, once each
    wall_s: float = 0.0


def cell_path(out: Path, cfg: RunConfig, suffix: str = ".json") -> Path:
    return run_file(out, cfg.benchmark, cfg.strategy, cfg.run_id(), suffix)


def existing_record(out: Path, cfg: RunConfig) -> dict | None:
    from clbench.report import read_record

    path = cell_path(out, cfg)
    return read_record(path)[0] if path.exists() else None


def plan(grid: Grid, options: SweepOptions) -> tuple[list[RunConfig], list[dict]]:
    """(cells to run, records kept): an `ok` record is kept unless `force`; a failed one is kept unless
    `retry_failed` or `force`; with `retry_failed` only the failed cells run."""
    to_run, kept = [], []
    for cfg in grid.cells:
        record = existing_record(options.out, cfg)
        status = record.get("status") if record else None
        if options.force or (options.retry_failed and status in ("failed", "diverged")):
            to_run.append(cfg)
        elif record is not None:
            kept.append(record)
        elif not options.retry_failed:
            to_run.append(cfg)
    return to_run, kept


def run_cell(config: dict, run: dict, checkpoint: str | None, resume: bool = True) -> dict:
    """One cell on a Ray worker: the record as data, naming the node it ran on. With `checkpoint`, the cell
    checkpoints there after every experience, and continues from it where it exists if `resume`."""
    started = time.perf_counter()
    from clbench.checkpoint import Checkpointing
    from clbench.config import config_from_dict
    from clbench.runner import run as run_one

    cfg = config_from_dict(config, **run)
    saving = Checkpointing(Path(checkpoint), resume=resume) if checkpoint else None
    record = run_one(cfg, checkpointing=saving).to_dict()
    if saving is not None and record["status"] == "ok":
        saving.discard()  # the record goes back as data: the driver writes it
    # a failed or diverged cell keeps its checkpoint: its retry continues after its last finished experience
    record["env"]["node"] = node_name()
    record["timing"]["worker_wall"] = time.perf_counter() - started
    return record


def warm_up() -> str:
    """Import what a cell needs (torch, Avalanche, every strategy) in a worker before the first cell arrives."""
    import clbench.runner  # noqa: F401
    from clbench.registry import STRATEGIES

    for entry in STRATEGIES:
        entry.load_builder()
    return node_name()


def node_name() -> str:
    """host/Ray node id of the process running a cell; host/local outside Ray (asking Ray would start one)."""
    import ray

    if not ray.is_initialized():
        return f"{socket.gethostname()}/local"
    return f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:12]}"


def cluster_lost(error: BaseException, cpus_per_run: int) -> bool:
    """Whether a task's error says the cluster itself is gone, rather than the cell or its node: the driver's
    own raylet died, or no live node is left with the CPUs a cell needs."""
    import ray
    from ray.exceptions import LocalRayletDiedError

    if isinstance(error, LocalRayletDiedError):
        return True
    try:
        live = [node for node in ray.nodes() if node.get("Alive")]
    except Exception:  # noqa: BLE001 - the cluster does not answer at all
        return True
    return not any(node.get("Resources", {}).get("CPU", 0) >= cpus_per_run for node in live)


def failed_record(cfg: RunConfig, error: BaseException) -> dict:
    """The record of a cell whose task raised or whose worker died, with the reason."""
    from clbench.metrics import summarize

    message = str(error).strip().splitlines()
    return RunRecord(run_id=cfg.run_id(), benchmark=cfg.benchmark, strategy=cfg.strategy, scenario=cfg.scenario,
                     seed=cfg.seed, config=cfg.to_dict(), experiences=[], initial_accuracy=[], accuracy_matrix=[],
                     metrics=summarize([]), timing={}, model={}, status="failed",
                     error={"type": type(error).__name__, "message": message[-1] if message else ""}).to_dict()


def start_ray(options: SweepOptions) -> float:
    """Start a local Ray, or join the cluster at `options.address`; returns the seconds it took."""
    import ray

    started = time.perf_counter()
    common = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    if options.address is None:  # a private single-node cluster on this machine
        ray.init(num_cpus=options.cpus or os.cpu_count(), **common)
    else:
        unreachable = ClbenchError(f"cannot reach a Ray cluster at --address {options.address}; start one with "
                                   "'ray start --head', or leave out --address for a local one.")
        if not reachable(options.address):
            raise unreachable
        try:
            ray.init(address=options.address, **common)
        except (ConnectionError, RuntimeError, ValueError):
            raise unreachable from None
    largest = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"]), default=0)
    if options.cpus_per_run > largest:
        ray.shutdown()
        raise UsageError(f"--cpus-per-run {options.cpus_per_run} is more than the largest node of the cluster has "
                         f"({largest:g} CPUs); valid: 1 to {largest:g}.")
    return time.perf_counter() - started


def reachable(address: str, timeout: float = 3.0) -> bool:
    """Whether HOST:PORT accepts a connection (Ray itself waits minutes for an address that does not answer);
    other forms ("auto", "ray://...") are left to Ray."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "/" in address:
        return True
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


@contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise KeyboardInterrupt, then the previous handlers return.

    So a scheduler's SIGTERM, or `kill -INT` on a sweep a script started in the background (where the
    shell leaves SIGINT ignored), stops a sweep as Ctrl-C does: its cells cancelled, Ray stopped.
    Outside the main thread, where Python cannot set handlers, nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    for number in previous:
        signal.signal(number, interrupt)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)


def run_sweep(grid: Grid, options: SweepOptions, on_event: Callable[[str, dict], None] | None = None) -> SweepResult:
    """Run the cells of `grid` that have no record yet on Ray; returns every record of the sweep.

    `on_event(kind, record)` is called with kind "done" (a record written) or "retry" (a cell
    resubmitted), for progress output.
    """
    import ray

    started = time.perf_counter()
    to_run, kept = plan(grid, options)
    result = SweepResult(records=list(kept), skipped=len(kept))
    result.failed = sum(r.get("status") != "ok" for r in kept)
    if not to_run:
        return result
    result.ray_start_s = start_ray(options)
    try:
        with stop_signals_interrupt():
            _drive(to_run, options, result, on_event or (lambda kind, record: None))
    except KeyboardInterrupt:
        raise SweepInterrupted(f"interrupted: {result.ran} cell(s) finished and kept, {result.not_run} not run; "
                               "run the same command again to continue.") from None
    finally:
        try:
            ray.shutdown()
        except KeyboardInterrupt:  # a second Ctrl-C while Ray stops
            pass
        result.wall_s = time.perf_counter() - started
    return result


def _drive(to_run: list[RunConfig], options: SweepOptions, result: SweepResult,
           on_event: Callable[[str, dict], None]) -> None:
    import ray
    from ray.exceptions import RayError

    resources = dict(num_cpus=options.cpus_per_run, num_gpus=options.gpus_per_run)
    task = ray.remote(run_cell).options(max_retries=0, **resources)
    slots = int(ray.cluster_resources().get("CPU", 1) // options.cpus_per_run)
    warm_started = time.perf_counter()  # every worker imports torch and Avalanche once, before the cells
    ray.get([ray.remote(warm_up).options(**resources).remote() for _ in range(min(slots, len(to_run)))])
    result.warm_up_s = time.perf_counter() - warm_started
    run = {"threads": options.cpus_per_run, "device": options.device, "data_root": options.data_root,
           "download": options.download}
    out = options.out.resolve()

    def submit(cfg: RunConfig, attempt: int):
        checkpoint = str(cell_path(out, cfg, CHECKPOINT_SUFFIX)) if options.checkpoint != "none" else None
        resume = options.resume or attempt > 0  # a retry continues from what its first attempt checkpointed
        pending[task.remote(cfg.to_dict(), run, checkpoint, resume)] = (cfg, attempt)

    pending: dict = {}
    for cfg in to_run:
        submit(cfg, 0)
    result.not_run = len(to_run)
    on_event("start", {"slots": slots})
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                cfg, attempt = pending.pop(ref)
                try:
                    record = ray.get(ref)
                except RayError as exc:
                    if cluster_lost(exc, options.cpus_per_run):
                        raise ClusterLost(f"the Ray cluster failed ({type(exc).__name__}): {result.ran} cell(s) "
                                          f"finished and kept, {result.not_run} not run and not recorded; run the "
                                          "same command again to continue.") from None
                    record = failed_record(cfg, getattr(exc, "cause", None) or exc)
                if record["status"] != "ok" and attempt < options.retries:
                    submit(cfg, attempt + 1)
                    on_event("retry", record)
                    continue
                write_json_atomic(record, cell_path(options.out, cfg))
                result.records.append(record)
                result.ran += 1
                result.not_run -= 1
                result.failed += record["status"] != "ok"
                on_event("done", record)
            if not ready:
                on_event("tick", {})
    except (KeyboardInterrupt, ClusterLost):
        for ref in pending:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - Ctrl-C may have stopped Ray's own processes too
                pass
        raise
