"""`clbench bench`: what a training iteration costs per strategy, whether the cost stays flat as tasks
accumulate, and the harness against a bare PyTorch loop of the same work — on one thread, so anyone can
re-measure on their machine.

Iteration time is measured from `before_training_iteration` to `after_training_iteration` (forward,
backward, the method's per-step work, the optimizer step); the rest of an experience's training time is
per-experience work (EWC's Fisher pass, growth, consolidation), reported apart.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from avalanche.core import SupervisedPlugin
from torch import nn

from clbench import runner
from clbench.config import resolve


def rss_mb() -> float:
    """This process's resident memory in MiB (Linux: /proc/self/statm; elsewhere the peak so far)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class IterationTimer(SupervisedPlugin):
    """Per experience: the seconds spent inside training iterations, their count, and RSS after it.

    `clock`: wall time by default; `time.thread_time` counts only this thread's CPU time, which other jobs
    on a busy machine do not inflate (with one torch thread, the training step runs on this thread)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        super().__init__()
        self.clock = clock
        self.seconds: list[float] = []
        self.iterations: list[int] = []
        self.rss: list[float] = []
        self._start = 0.0

    def before_training_exp(self, strategy, **kwargs):
        self.seconds.append(0.0)
        self.iterations.append(0)

    def before_training_iteration(self, strategy, **kwargs):
        self._start = self.clock()

    def after_training_iteration(self, strategy, **kwargs):
        self.seconds[-1] += self.clock() - self._start
        self.iterations[-1] += 1

    def after_training_exp(self, strategy, **kwargs):
        self.rss.append(rss_mb())

    def ms_per_iteration(self, experience: int) -> float:
        return 1000 * self.seconds[experience] / max(1, self.iterations[experience])


@dataclass
class Measurement:
    """One strategy's run under the timer."""

    strategy: str
    ms_per_it: list[float]
    per_experience_s: list[float]  # training time outside the iterations, per experience
    rss_mb: list[float]
    train_ms_per_it: list[float]  # all of an experience's training time over its iterations
    extra: dict[str, Any] = field(default_factory=dict)


def measure(benchmark: str, strategy: str, experiences: int, iterations: int, keys: dict | None = None,
            data_root: str | None = None, clock: Callable[[], float] = time.perf_counter) -> Measurement:
    """Train `strategy` for `experiences` x `iterations` on one thread (evaluation plan `metrics`); iterations
    timed with `clock` (see `IterationTimer`)."""
    values = {"n_experiences": experiences, "iterations": iterations, "eval_plan": "metrics", **(keys or {})}
    cfg = resolve(benchmark, strategy, cli_values={k: str(v) for k, v in values.items()}, threads=1,
                  data_root=data_root, download=False)
    timer = IterationTimer(clock)
    record = runner.run(cfg, plugins=[timer])
    if record.status != "ok":
        raise RuntimeError(f"{strategy} {record.status}: {record.error}")
    outside = [train - seconds for train, seconds in zip(record.timing["train"], timer.seconds)]
    return Measurement(strategy, [timer.ms_per_iteration(i) for i in range(len(timer.seconds))], outside,
                       timer.rss, [1000 * t / max(1, n) for t, n in zip(record.timing["train"], timer.iterations)])


def bare_loop_ms(benchmark: str, iterations: int, data_root: str | None = None, seed: int = 0) -> float:
    """ms per iteration of the bare PyTorch loop on the benchmark's protocol: its MLP, Adam, batches sliced
    from the same image store, first experience, no plugins."""
    cfg = resolve(benchmark, "naive", cli_values={"n_experiences": "1"}, threads=1, data_root=data_root,
                  download=False)
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    from clbench.registry import BENCHMARKS

    data = BENCHMARKS.get(benchmark).load_builder()(cfg)
    exp = data.train[0]
    sizes = [int(torch.tensor(data.input_shape).prod()), *cfg.train.hidden]
    layers: list[nn.Module] = [nn.Flatten()]
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(sizes[-1], data.head_size * data.n_heads))
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    loss_fn = nn.CrossEntropyLoss()
    rows, targets = exp.rows, exp.targets
    size, done, start = cfg.train.batch_size, 0, time.perf_counter()
    while done < iterations:
        order = torch.randperm(len(rows))
        for i in range(0, len(rows), size):
            pick = order[i:i + size]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(data.store.fetch(rows[pick], exp.permutation)), targets[pick]).backward()
            optimizer.step()
            done += 1
            if done == iterations:
                break
    return 1000 * (time.perf_counter() - start) / iterations


def harness_ratio(benchmark: str, iterations: int, pairs: int = 3, data_root: str | None = None) -> dict:
    """naive's training ms/iteration (batches, callbacks and all) against the bare loop's, `pairs`
    back-to-back pairs; the median ratio."""
    ratios = []
    for _ in range(pairs):
        naive = measure(benchmark, "naive", 1, iterations, data_root=data_root).train_ms_per_it[0]
        bare = bare_loop_ms(benchmark, iterations, data_root)
        ratios.append((naive, bare, naive / bare))
    return {"pairs": ratios, "median_ratio": statistics.median(r for _, _, r in ratios)}


SPEED_HEADER = f"{'strategy':<14}{'ms/it':>9}{'x naive':>9}{'s/exp outside its':>19}{'RSS MiB':>10}"


def speed_row(m: Measurement, naive_ms: float) -> str:
    """ms per iteration (mean over the experiences after the first), × naive, per-experience seconds, peak RSS."""
    ms = statistics.fmean(m.ms_per_it[1:] or m.ms_per_it)
    return (f"{m.strategy:<14}{ms:9.2f}{ms / naive_ms:9.2f}{statistics.fmean(m.per_experience_s):19.2f}"
            f"{max(m.rss_mb):10.0f}")


def rss_points(last: int) -> list[int]:
    """The experiences (1-based) after which the scaling table shows resident memory: 1, 10, 100, ..., last."""
    points = [1]
    while points[-1] * 10 < last:
        points.append(points[-1] * 10)
    return points + [last]


def scaling_header(last: int) -> str:
    rss = "".join(f"{f'RSS exp {n}' if n == 1 else f'exp {n}':>{11 if n == 1 else 9}}" for n in rss_points(last))
    return f"{'strategy':<14}{'ms/it exp 2':>12}{f'exp {last}':>10}{'ratio':>8}{rss}{'growth MiB':>12}"


def scaling_row(m: Measurement) -> str:
    """ms per iteration in the second and the last experience, and resident memory after experiences 1, 10,
    100, ... and the last."""
    last = len(m.rss_mb)
    rss = "".join(f"{m.rss_mb[n - 1]:{11 if n == 1 else 9}.0f}" for n in rss_points(last))
    return (f"{m.strategy:<14}{m.ms_per_it[1]:12.2f}{m.ms_per_it[-1]:10.2f}{m.ms_per_it[-1] / m.ms_per_it[1]:8.2f}"
            f"{rss}{m.rss_mb[-1] - m.rss_mb[0]:12.1f}")


def run_bench(parts: list[str], benchmark: str, strategies: list[str], experiences: int, iterations: int,
              scaling_experiences: int, scaling_iterations: int, data_root: str | None, echo) -> None:
    """Print the tables of `parts` (speed, scaling, harness), a row as each strategy finishes."""
    echo(f"clbench bench on {benchmark}, one thread, torch {torch.__version__}, {os.cpu_count()} CPUs")
    if "speed" in parts:
        echo(f"\nspeed: {experiences} experiences x {iterations} iterations; x naive against a naive run "
             f"made just before (the machine's load changes)\n{SPEED_HEADER}")
        for name in strategies:
            naive = measure(benchmark, "naive", experiences, iterations, data_root=data_root)
            m = naive if name == "naive" else measure(benchmark, name, experiences, iterations, data_root=data_root)
            echo(speed_row(m, statistics.fmean(naive.ms_per_it[1:] or naive.ms_per_it)))
    if "scaling" in parts:
        echo(f"\nscaling: {scaling_experiences} experiences x {scaling_iterations} iterations\n"
             f"{scaling_header(scaling_experiences)}")
        for name in strategies:
            echo(scaling_row(measure(benchmark, name, scaling_experiences, scaling_iterations, data_root=data_root)))
    if "harness" in parts:
        result = harness_ratio(benchmark, iterations, data_root=data_root)
        pairs = ", ".join(f"{naive:.2f}/{bare:.2f}" for naive, bare, _ in result["pairs"])
        echo(f"\nharness: naive against the bare loop, ms/it (pairs) {pairs}; median ratio "
             f"{result['median_ratio']:.3f}")
