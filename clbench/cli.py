"""The `clbench` command: a thin shell over `clbench.config` and `clbench.runner`.

Only click and clbench's torch-free modules are imported at start-up; `run`
imports torch and Avalanche when it starts training.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import warnings
from collections import Counter
from pathlib import Path
from statistics import fmean, stdev
from typing import Any

import click

from clbench.cli_bench import bench
from clbench.config import (
    RunConfig,
    check_seed,
    load_toml,
    parse_assignments,
    parse_seeds,
    resolve,
    split_file_run_keys,
)
from clbench.errors import ClbenchError, ClbenchWarning, UsageError
from clbench.registry import BENCHMARKS, STRATEGIES

# CLI flag -> config key (flags are shortcuts for --set key=value)
FLAG_KEYS = ("epochs", "iterations", "batch_size", "lr", "optimizer", "hidden", "n_experiences")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="clbench")
def cli() -> None:
    """clbench: continual-learning benchmarks for plasticity-inspired learners."""


def check_device(device: str) -> None:
    """`cuda` where no CUDA device is usable: a usage error now, before the data and Avalanche are loaded."""
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError(f"--device cuda: no CUDA device is available here (torch {torch.__version__}); "
                             "valid here: --device cpu or auto.")


def _seed_list(seed: tuple[int, ...], seeds: str | None, file_run: dict[str, Any]) -> list[int]:
    if seed or seeds:
        return sorted({check_seed(s) for s in seed} | set(parse_seeds(seeds) if seeds else []))
    if "seeds" in file_run:
        value = file_run["seeds"]
        return parse_seeds(value if isinstance(value, str) else ",".join(map(str, value)))
    return [check_seed(int(file_run.get("seed", 0)), "seed in --config")]


def _split_file(config: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(run-level values, tunable keys) of a --config file."""
    data = load_toml(config) if config else {}
    return split_file_run_keys(data, f"--config '{config}'"), data


def build_configs(options: dict[str, Any]) -> list[RunConfig]:
    """All run configs of one `clbench run` call, checked before anything is loaded."""
    file_run, file_values = _split_file(options.get("config"))
    benchmark = options.get("benchmark") or file_run.get("benchmark")
    strategy = options.get("strategy") or file_run.get("strategy")
    if not benchmark or not strategy:
        missing = "--benchmark" if not benchmark else "--strategy"
        raise UsageError(f"missing {missing}; see 'clbench list' for the valid names.")
    cli_values = parse_assignments(list(options.get("set") or ()))
    for key in FLAG_KEYS:
        flag = options.get(key)
        if flag is not None and key in cli_values and str(cli_values[key]) != str(flag):
            raise UsageError(f"'{key}' given twice, --{key.replace('_', '-')} {flag} and --set {key}="
                             f"{cli_values[key]}; give it once.")
    cli_values.update({k: options[k] for k in FLAG_KEYS if options.get(k) is not None})
    check_device(options.get("device") or file_run.get("device") or "auto")
    seeds = _seed_list(options.get("seed") or (), options.get("seeds"), file_run)
    data_root = options.get("data_root") or file_run.get("data_root")
    return [
        resolve(benchmark, strategy, scenario=options.get("scenario") or file_run.get("scenario"), seed=seed,
                file_values=file_values, cli_values=cli_values,
                device=options.get("device") or file_run.get("device") or "auto",
                data_root=data_root, download=not options.get("no_download"), threads=options.get("threads") or 0)
        for seed in seeds
    ]


@cli.command()
@click.option("--benchmark", "-b", help="benchmark name (see 'clbench list benchmarks')")
@click.option("--strategy", "-s", help="strategy name (see 'clbench list strategies')")
@click.option("--scenario", type=click.Choice(["class", "task", "domain"]), help="default: the benchmark's")
@click.option("--seed", type=int, multiple=True, help="seed; repeat for several runs  [default: 0]")
@click.option("--seeds", help="seed range or list, e.g. 0-4 or 0,3,7")
@click.option("--epochs", type=str, help="epochs per experience (refused while the benchmark's protocol trains a "
                                        "fixed number of iterations: add --iterations 0)")
@click.option("--iterations", type=str, help="iterations per experience (overrides epochs)")
@click.option("--batch-size", type=str, help="training mini-batch size")
@click.option("--lr", type=str, help="learning rate")
@click.option("--optimizer", type=str, help="sgd or adam")
@click.option("--hidden", type=str, help="MLP hidden widths, e.g. 400,400")
@click.option("--n-experiences", type=str, help="number of experiences")
@click.option("--set", "set_", multiple=True, metavar="KEY=VALUE", help="any config key; repeatable")
@click.option("--config", type=str, help="TOML file of keys (CLI flags take precedence)")
@click.option("--data-root", type=str, help="data folder  [default: $CLBENCH_DATA_ROOT or the user cache]")
@click.option("--no-download", is_flag=True, help="never download; fail if the data are missing")
@click.option("--out", type=str, default="results", show_default=True, help="folder for result records")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="[default: auto]")
@click.option("--threads", type=click.IntRange(min=0), default=0,
              help="CPU threads for torch (0 = torch's default); use 1 per job when running jobs side by side")
@click.option("--quiet", "-q", is_flag=True, help="no progress output")
@click.option("--json", "as_json", is_flag=True, help="print the record(s) as JSON on stdout")
@click.option("--checkpoint", "checkpoint_policy", type=click.Choice(["every", "last", "none"]), default="every",
              show_default=True, help="write OUT/BENCHMARK/STRATEGY/RUN_ID.ckpt after every experience, after the "
                                      "last only, or never")
@click.option("--keep-checkpoint", is_flag=True, help="keep the checkpoint once the record is written (a failed run "
              "keeps it anyway)")
@click.option("--no-resume", is_flag=True, help="start over even if a checkpoint of this run exists")
@click.option("--save-model", is_flag=True, help="keep the trained model in OUT/BENCHMARK/STRATEGY/RUN_ID.model.pt "
                                                 "(see 'clbench eval')")
@click.option("--logger", "loggers", multiple=True, type=click.Choice(["csv", "tensorboard", "wandb"]),
              help="attach Avalanche's logger (its accuracy, loss and the method's statistics) writing to "
                   "OUT/BENCHMARK/STRATEGY/RUN_ID.logs/NAME; W&B offline unless configured; repeatable")
def run(**options: Any) -> None:
    """Train a strategy on a benchmark; print and save the accuracy matrix.

    Running the same command again after a stop continues from the run's checkpoint.
    """
    options["set"] = options.pop("set_")
    from clbench.records import CHECKPOINT_SUFFIX, LOGS_SUFFIX, MODEL_SUFFIX, check_out_dir, check_writable, run_file

    configs = build_configs(options)
    out = check_out_dir(Path(options["out"]))
    for cfg in configs:  # every record's folder writable, before any data are loaded
        check_writable(run_file(out, cfg.benchmark, cfg.strategy, cfg.run_id()).parent)
    if not options["quiet"] and sys.stderr.isatty():  # at once, for a person: loading the stack takes seconds
        first = configs[0]
        seeds = f"seed {first.seed}" if len(configs) == 1 else f"{len(configs)} seeds"
        click.echo(f"clbench: {first.benchmark} / {first.strategy} / {first.scenario} / {seeds}: loading PyTorch "
                   "and Avalanche ...", err=True)
    from clbench.checkpoint import Checkpointing
    from clbench.progress import Reporter
    from clbench.records import write_record_or_rescue
    from clbench.runner import run as run_one

    reporter = Reporter(quiet=options["quiet"])
    records = []
    for cfg in configs:
        saving = Checkpointing(run_file(out, cfg.benchmark, cfg.strategy, cfg.run_id(), CHECKPOINT_SUFFIX),
                               options["checkpoint_policy"], resume=not options["no_resume"])
        if saving.resume and saving.policy != "none" and saving.path.exists():
            click.echo(f"clbench: resuming from {saving.path}", err=True)
        model_path = run_file(out, cfg.benchmark, cfg.strategy, cfg.run_id(), MODEL_SUFFIX) \
            if options["save_model"] else None
        logs = run_file(out, cfg.benchmark, cfg.strategy, cfg.run_id(), LOGS_SUFFIX) if options["loggers"] else None
        evaluator = _logging_evaluator(options["loggers"], logs, cfg) if logs else None
        record = run_one(cfg, reporter, saving, model_path=model_path, evaluator=evaluator)
        path = write_record_or_rescue(record, out)  # first: a logger failing to close loses no result
        if evaluator is not None:
            from clbench.loggers import close_loggers

            for problem in close_loggers(evaluator):
                click.echo(f"clbench: warning: {problem}", err=True)
            click.echo(f"clbench: logs in {logs}", err=True)
        if record.status == "ok" and not options["keep_checkpoint"]:
            saving.discard()
        elif record.status != "ok" and saving.policy != "none" and saving.path.exists():
            click.echo(f"clbench: checkpoint kept at {saving.path}: once the cause is fixed, the same command "
                       "continues after its last finished experience (--no-resume starts over)", err=True)
        records.append(record)
        if not options["as_json"]:
            _print_record(record, path)
    if options["as_json"]:
        dicts = [r.to_dict() for r in records]
        click.echo(json.dumps(dicts[0] if len(dicts) == 1 else dicts, indent=1))
    elif len(records) > 1:
        accs = [r.metrics["acc"] for r in records if r.metrics.get("acc") is not None]
        if accs:
            click.echo(f"ACC over {len(accs)} seeds: {fmean(accs):.4f} ± {stdev(accs):.4f} (sample std)")
    bad = [r for r in records if r.status != "ok"]
    if bad:
        from clbench.progress import what_went_wrong

        raise ClbenchError(f"run {bad[0].run_id} {bad[0].status}{what_went_wrong(bad[0].error)}; record written.")


def terminal_width() -> int | None:
    """The terminal's width when stdout is one; None (no limit) in a pipe or file."""
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def _logging_evaluator(names: tuple[str, ...], folder: Path, cfg):
    """An Avalanche evaluator with the named loggers writing below `folder`."""
    from clbench.loggers import logging_evaluator, make_loggers

    return logging_evaluator(make_loggers(names, folder, cfg.run_id(), cfg.to_dict()))


def _print_record(record, path: Path) -> None:
    from clbench.display import format_extras, format_matrix, format_metrics

    click.echo(f"\n{record.benchmark} / {record.strategy} / {record.scenario} / seed {record.seed}  "
               f"[{record.status}]")
    click.echo("accuracy matrix (rows: after training on experience i; columns: test experience j)")
    labels = ["joint"] if record.extras.get("joint") else None
    click.echo(format_matrix(record.accuracy_matrix, record.initial_accuracy, labels))
    click.echo(format_metrics(record.metrics))
    for line in format_extras(record.extras):
        click.echo(line)
    t, m = record.timing, record.model
    click.echo(f"train {t['train_total']:.2f}s, eval {t['eval_total']:.2f}s, total {t['total']:.2f}s; "
               f"{m['parameters']:,} parameters (density {m['density']:.3f})")
    click.echo(f"record: {path}")


@cli.command()
@click.argument("sweep_file", required=False)
@click.option("--benchmark", "-b", help="benchmarks, comma-separated")
@click.option("--strategy", "-s", help="strategies, comma-separated")
@click.option("--scenario", help="scenarios, comma-separated  [default: each benchmark's]")
@click.option("--seeds", help="seed range or list, e.g. 0-2 or 0,3,7  [default: 0]")
@click.option("--set", "set_", multiple=True, metavar="KEY=V1,V2",
              help="a key for every cell, or a grid axis (list-valued keys: hidden=400,400/1000,1000); repeatable")
@click.option("--config", type=str, help="TOML file of keys for every cell (its benchmark, strategy, scenario and "
              "seeds fill in missing flags)")
@click.option("--out", type=str, default="results", show_default=True, help="folder for result records")
@click.option("--data-root", type=str, help="data folder, as seen on each worker  [default: its $CLBENCH_DATA_ROOT "
                                            "or user cache]")
@click.option("--no-download", is_flag=True, help="never download; a cell fails if its data are missing")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--address", help="join a running Ray cluster: auto or HOST:PORT  [default: start a local one]")
@click.option("--cpus", type=click.IntRange(min=1), help="CPUs of the local Ray  [default: every core]")
@click.option("--cpus-per-run", type=click.IntRange(min=1), default=1, show_default=True,
              help="CPUs (and torch threads) of each cell")
@click.option("--gpus-per-run", type=click.FloatRange(min=0), default=0, show_default=True, help="GPUs of each cell")
@click.option("--retries", type=click.IntRange(min=0), default=1, show_default=True,
              help="reruns of a cell that fails, diverges or loses its worker")
@click.option("--force", is_flag=True, help="rerun cells whose record exists")
@click.option("--retry-failed", is_flag=True, help="rerun only the cells whose record says failed or diverged")
@click.option("--checkpoint", "checkpoint_policy", type=click.Choice(["every", "none"]), default="every",
              show_default=True, help="checkpoint each cell after every experience (a retried cell resumes)")
@click.option("--no-resume", is_flag=True, help="start every cell over, even where a checkpoint of it exists (a "
              "failed cell keeps one)")
@click.option("--dry-run", is_flag=True, help="list the cells with their run ids and whether their record exists")
@click.option("--yes", is_flag=True, help=f"run a grid of more than {10_000:,} cells")
@click.option("--quiet", "-q", is_flag=True, help="no progress line")
def sweep(sweep_file: str | None, **options: Any) -> None:
    """Run a grid of cells on Ray: from flags (comma lists expand as a product) or a TOML SWEEP_FILE.

    Cells whose record exists are skipped: run the same command again to continue a stopped sweep.
    """
    from clbench import grid as grids

    if sweep_file and any(options[k] for k in ("benchmark", "strategy", "scenario", "seeds", "config")):
        raise UsageError("give a sweep file or -b/-s/--scenario/--seeds/--config flags, not both; --set works "
                         "with either.")
    run = {"device": options["device"], "data_root": options["data_root"], "download": not options["no_download"]}
    groups = grids.groups_from_file(sweep_file) if sweep_file else [grids.group_from_flags(
        options["benchmark"], options["strategy"], options["scenario"], options["seeds"], config=options["config"])]
    if options["set_"]:
        extra = grids.group_from_flags("x", "x", None, None, options["set_"]).axes
        groups = [dataclasses.replace(g, axes={**g.axes, **extra}) for g in groups]
    grid = grids.build_grid(groups, run, allow_large=options["yes"])
    from clbench.records import check_out_dir

    out = check_out_dir(Path(options["out"]))
    if options["dry_run"]:
        _print_cells(grid, out)
        return
    _run_sweep(grid, out, options)


def _print_cells(grid, out: Path) -> None:
    from clbench.grid import varied_keys
    from clbench.sweep import existing_record

    for line in grid.left_out:
        click.echo(f"left out: {line}")
    counts: dict[str, int] = {}
    labels = varied_keys(grid)
    for cfg in grid.cells:
        record = existing_record(out, cfg)
        state = "missing" if record is None else f"exists ({record.get('status')})"
        counts[state] = counts.get(state, 0) + 1
        click.echo(f"{cfg.benchmark:<16} {cfg.strategy:<13} {cfg.scenario:<6} seed {cfg.seed:<3} {cfg.run_id()}  "
                   f"{state:<14} {labels[cfg.run_id()]}".rstrip())
    click.echo(f"{len(grid.cells)} cells: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))


def _run_sweep(grid, out: Path, options: dict[str, Any]) -> None:
    from clbench import report as rep
    from clbench import tables
    from clbench.progress import SweepReporter
    from clbench.sweep import SweepOptions, plan, run_sweep

    sweep_options = SweepOptions(out=out, address=options["address"], cpus=options["cpus"],
                                 cpus_per_run=options["cpus_per_run"], gpus_per_run=options["gpus_per_run"],
                                 retries=options["retries"], force=options["force"],
                                 retry_failed=options["retry_failed"], checkpoint=options["checkpoint_policy"],
                                 resume=not options["no_resume"], data_root=options["data_root"],
                                 download=not options["no_download"], device=options["device"])
    for line in grid.left_out:
        click.echo(f"clbench: left out {line}", err=True)
    to_run, kept = plan(grid, sweep_options)
    reporter = SweepReporter(len(to_run), len(kept), quiet=options["quiet"])
    result = run_sweep(grid, sweep_options, reporter)
    click.echo(f"sweep: {result.ran} cell(s) run, {result.skipped} skipped (record exists), {result.failed} failed; "
               f"{result.wall_s:.1f}s (Ray start {result.ray_start_s:.1f}s, workers' imports "
               f"{result.warm_up_s:.1f}s)")
    ok = [r for r in result.records if r.get("status") == "ok"]
    if ok:
        click.echo(tables.render(rep.aggregate(rep.records_frame(ok)), rep.check_metrics(None), "table",
                                 width=terminal_width()))
    bad = Counter(r.get("status") for r in result.records if r.get("status") != "ok")
    if bad:
        counts = " and ".join(f"{n} cell(s) {status}" for status, n in sorted(bad.items()))
        raise ClbenchError(f"{counts} (their records say why and where); rerun them with '--retry-failed'.")


@cli.command(name="eval")
@click.argument("model_file")
@click.option("--benchmark", "-b", help="benchmark to evaluate on  [default: the one the model was trained on]")
@click.option("--scenario", type=click.Choice(["class", "task", "domain"]), help="[default: the model's]")
@click.option("--data-root", type=str, help="data folder  [default: $CLBENCH_DATA_ROOT or the user cache]")
@click.option("--no-download", is_flag=True, help="never download; fail if the data are missing")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the accuracies as JSON on stdout")
def eval_(model_file: str, benchmark: str | None, scenario: str | None, data_root: str | None, no_download: bool,
          device: str, as_json: bool) -> None:
    """Accuracy of a saved model (`clbench run --save-model`) on every test experience of a benchmark."""
    from clbench.runner import evaluate_model_file

    result = evaluate_model_file(Path(model_file), benchmark, scenario, data_root=data_root,
                                 download=not no_download, device=device)
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    click.echo(f"{result['benchmark']} / {result['scenario']}: {result['strategy']} model {result['run_id']}")
    for j, accuracy in enumerate(result["accuracy"]):
        click.echo(f"  test experience {j}: {accuracy:.4f}")
    click.echo(f"  mean: {result['mean']:.4f}")


@cli.command(name="list")
@click.argument("what", required=False, type=click.Choice(["strategies", "benchmarks"]))
@click.argument("name", required=False)
def list_(what: str | None, name: str | None) -> None:
    """List strategies and benchmarks; with a NAME, show its keys and defaults."""
    registries = {"strategies": (STRATEGIES, "strategy"), "benchmarks": (BENCHMARKS, "benchmark")}
    if name:
        if not what:
            raise UsageError("give the kind before the name, e.g. 'clbench list strategies ewc'.")
        from clbench.display import describe_entry

        registry, kind = registries[what]
        click.echo(describe_entry(registry.get(name), kind))
        return
    for key in [what] if what else list(registries):
        registry, kind = registries[key]
        click.echo(f"{key}:")
        for entry in registry:
            scen = ", ".join(f"{s}*" if s == entry.default_scenario and kind == "benchmark" else s
                             for s in entry.scenarios)
            click.echo(f"  {entry.name:<16} {entry.summary}  [{scen}]")
    click.echo("\n'clbench list strategies NAME' or 'clbench list benchmarks NAME' shows keys and defaults"
               " (* = default scenario).")


def _names(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


@cli.command()
@click.argument("folders", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["table", "markdown", "csv", "latex", "json"]), default="table",
              show_default=True)
@click.option("--metric", help="comma-separated columns: acc,bwt,fwt,forgetting,learning_acc,train_s,"
                               "parameters,density  [default: all]")
@click.option("--benchmark", "-b", multiple=True, help="only these benchmarks (a comma list; repeatable)")
@click.option("--strategy", "-s", multiple=True, help="only these strategies (a comma list; repeatable)")
@click.option("--scenario", multiple=True, help="only these scenarios (a comma list; repeatable)")
@click.option("--sort", help="sort by a column (best first)")
@click.option("--matrix", is_flag=True, help="show each group's mean (± std) accuracy matrix instead")
@click.option("--columns", help="comma-separated columns to show, keys and metrics, e.g. strategy,variant,acc,bwt "
                                "[default: benchmark,scenario,strategy,variant,n and --metric's]")
@click.option("--width", type=click.IntRange(min=0), help="wrap the table's metric columns (a --matrix's test "
              "experiences) to this many characters (0: never)  [default: the terminal's width]")
def report(folders: tuple[str, ...], fmt: str, metric: str | None, benchmark: tuple[str, ...],
           strategy: tuple[str, ...], scenario: tuple[str, ...], sort: str | None, matrix: bool,
           columns: str | None, width: int | None) -> None:
    """Tables of mean ± std over seeds from the run records below FOLDERS (default results/).

    On a terminal, long variant labels are shortened to v1, v2, ... with a legend below the table.
    """
    from clbench import report as rep
    from clbench import tables

    if columns and metric:
        raise click.UsageError("give --columns or --metric, not both (--columns names the metrics too)")
    keys, metrics = rep.check_columns(_names(columns)) if columns else (tables.KEY_COLUMNS,
                                                                         rep.check_metrics(_names(metric)))
    if width is None:
        width = terminal_width() or 0
    loaded = rep.load_records(folders or ("results",))
    for warning in loaded.warnings:
        click.echo(f"clbench: warning: {warning}", err=True)
    frame = rep.select(rep.records_frame(loaded.records), benchmark, strategy, scenario)
    if frame.empty:
        raise ClbenchError(f"no run records found in {', '.join(folders or ('results',))}"
                           + (" matching the filters" if benchmark or strategy or scenario else "")
                           + "; run 'clbench run' first or give the folder that holds them.")
    if matrix:
        _warn_mixed_shapes(frame)
        matrices = tables.mean_matrices(frame)
        if not matrices:
            raise ClbenchError(f"no accuracy matrix to show: {NO_MATRIX}")
        click.echo(tables.render_matrices(matrices, fmt, width or None))
    else:
        click.echo(tables.render(rep.sort_table(rep.aggregate(frame), sort), metrics, fmt, keys, width or None))


def _warn_mixed_shapes(frame) -> None:
    from clbench.tables import mixed_shape_groups

    for group in mixed_shape_groups(frame):
        click.echo(f"clbench: warning: {group}: its runs' matrices differ in shape; left out (select runs of one "
                   "shape with -b/-s/--scenario)", err=True)


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--kind", default="matrix", show_default=True, help="matrix, curves, or a strategy's own kind")
@click.option("--out", default="figures", show_default=True, help="folder for the figures")
@click.option("--format", "fmt", default="png", show_default=True, help="png, pdf or svg")
@click.option("--benchmark", "-b", multiple=True, help="only these benchmarks (a comma list; repeatable)")
@click.option("--strategy", "-s", multiple=True, help="only these strategies (a comma list; repeatable)")
@click.option("--scenario", multiple=True, help="only these scenarios (a comma list; repeatable)")
def plot(paths: tuple[str, ...], kind: str, out: str, fmt: str, benchmark: tuple[str, ...], strategy: tuple[str, ...],
         scenario: tuple[str, ...]) -> None:
    """Figures from run records: PATHS are RUN.json files or folders of them."""
    from clbench import plots
    from clbench import report as rep
    from clbench.records import check_out_dir, check_writable

    out_dir = check_out_dir(Path(out))
    loaded = rep.load_records(paths)
    for warning in loaded.warnings:
        click.echo(f"clbench: warning: {warning}", err=True)
    frame = rep.select(rep.records_frame(loaded.records), benchmark, strategy, scenario)
    if frame.empty:
        raise ClbenchError(f"no run records found in {', '.join(paths)}; nothing to plot.")
    kept = [r for r in loaded.records if r["run_id"] in set(frame["run_id"])]
    check_writable(out_dir, "figures")
    _warn_mixed_shapes(frame)
    written = plots.plot(frame, kept, kind, out_dir, fmt)
    if not written:
        raise ClbenchError(f"nothing to plot as '{kind}': {NO_MATRIX}")
    for path in written:
        click.echo(f"wrote {path}")


cli.add_command(bench)

NO_MATRIX = ("the selected runs did not finish (status diverged or failed), or the seeds of each group have "
             "matrices of different shapes; select finished runs of one shape with -b/-s/--scenario.")
# printed when Avalanche is imported: qpsolvers (used by GEM only) finds no solver installed
QUIET_IMPORT_WARNINGS = ("no QP solver found",)


PYTHON_FORMATWARNING = warnings.formatwarning


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    """clbench's own warnings as one line, like its errors; any other in Python's format."""
    if issubclass(category, ClbenchWarning):
        return f"clbench: warning: {message}\n"
    return PYTHON_FORMATWARNING(message, category, filename, lineno, line)


def main(argv: list[str] | None = None) -> int:
    """Entry point: ClbenchError -> one line on stderr and its exit code."""
    for message in QUIET_IMPORT_WARNINGS:  # third-party notices a user cannot act on
        warnings.filterwarnings("ignore", message=message)
    try:
        cli.main(args=argv, prog_name="clbench", standalone_mode=False)
    except ClbenchError as exc:
        click.echo(f"clbench: error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("clbench: aborted", err=True)
        return 130
    except click.UsageError as exc:  # a bad flag or value: one line, like every other error
        command = f"clbench {exc.ctx.info_name} --help" if exc.ctx and exc.ctx.parent else "clbench --help"
        click.echo(f"clbench: error: {exc.format_message()} (see '{command}')", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        click.echo(f"clbench: error: {exc.format_message()}", err=True)
        return exc.exit_code
    return 0


def entry() -> None:
    warnings.formatwarning = one_line_warning
    sys.exit(main())


if __name__ == "__main__":
    entry()
