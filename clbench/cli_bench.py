"""`clbench bench`: the command (torch is imported only when it runs)."""

from __future__ import annotations

import click

PARTS = ("speed", "scaling", "harness")
DEFAULT_STRATEGIES = "naive,cumulative,ewc,si,lwf,replay,sparse_syn,kwinners,hebbian,path_plastic"


@click.command("bench")
@click.option("--benchmark", "-b", default="permuted_digits", show_default=True,
              help="benchmark to time on (permuted_mnist: the 1000-1000 MLP of its protocol)")
@click.option("--strategy", "-s", "strategies", default=DEFAULT_STRATEGIES, show_default=True,
              help="comma-separated strategies")
@click.option("--parts", default=",".join(PARTS), show_default=True, help="comma-separated: speed,scaling,harness")
@click.option("--experiences", type=click.IntRange(min=2), default=3, show_default=True,
              help="experiences of the speed part")
@click.option("--iterations", type=click.IntRange(min=1), default=200, show_default=True,
              help="iterations per experience of the speed and harness parts")
@click.option("--scaling-experiences", type=click.IntRange(min=2), default=50, show_default=True)
@click.option("--scaling-iterations", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--data-root", help="data folder  [default: $CLBENCH_DATA_ROOT or the user cache]")
def bench(benchmark: str, strategies: str, parts: str, experiences: int, iterations: int,
          scaling_experiences: int, scaling_iterations: int, data_root: str | None) -> None:
    """Time a training iteration per strategy, its growth with the number of tasks, and the harness."""
    from clbench.config import resolve
    from clbench.errors import UsageError

    chosen = [p.strip() for p in parts.split(",") if p.strip()]
    for part in chosen:
        if part not in PARTS:
            raise UsageError(f"unknown --parts entry '{part}'; valid: {', '.join(PARTS)}.")
    names = [s.strip() for s in strategies.split(",") if s.strip()]
    for name in names:
        resolve(benchmark, name)  # unknown names and scenarios: a usage error before anything runs
    from clbench.bench import run_bench

    run_bench(chosen, benchmark, names, experiences, iterations, scaling_experiences, scaling_iterations,
              data_root, click.echo)
