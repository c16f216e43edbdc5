"""The committed reference records: readable, self-consistent, and still the defaults' runs."""

from pathlib import Path

import pytest

from clbench.config import load_toml, resolve
from clbench.metrics import summarize
from clbench.report import read_record

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference"
CONFIGS = REFERENCE / "configs"
RECORDS = sorted(REFERENCE.rglob("*.json"))


def test_there_are_reference_records():
    assert len(RECORDS) >= 18


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_record_loads_and_its_metrics_recompute(path):
    record, why = read_record(path)
    assert record is not None, why
    assert record["status"] == "ok"
    recomputed = summarize(record["accuracy_matrix"], record["initial_accuracy"])
    assert recomputed == pytest.approx(record["metrics"], abs=1e-12)
    assert path.stem == record["run_id"]


def shipped_settings(benchmark: str, strategy: str) -> list[dict]:
    """Keys of the shipped reference configuration files for this benchmark and strategy."""
    settings = []
    for path in sorted(CONFIGS.glob("*.toml")):
        values = load_toml(path)
        if (values.pop("benchmark", None), values.pop("strategy", None)) == (benchmark, strategy):
            settings.append(values)
    return settings


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_record_was_made_by_todays_defaults(path):
    """Reference commands use registered defaults or a shipped config file: a changed default makes them stale."""
    record, _ = read_record(path)
    names = dict(scenario=record["scenario"], seed=record["seed"])
    candidates = [resolve(record["benchmark"], record["strategy"], **names)]
    candidates += [resolve(record["benchmark"], record["strategy"], file_values=values, **names)
                   for values in shipped_settings(record["benchmark"], record["strategy"])]
    assert any(cfg.to_dict() == record["config"] and cfg.run_id() == record["run_id"] for cfg in candidates)



def test_the_shipped_sweep_files_regenerate_exactly_the_reference_records():
    from clbench.grid import build_grid, groups_from_file

    run_ids = set()
    for sweep in sorted((REFERENCE / "sweeps").glob("*.toml")):
        run_ids |= {f"{c.benchmark}/{c.strategy}/{c.run_id()}" for c in build_grid(groups_from_file(sweep)).cells}
    on_disk = {f"{p.parent.parent.name}/{p.parent.name}/{p.stem}" for p in RECORDS}
    assert run_ids == on_disk
