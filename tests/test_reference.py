"""The committed reference records: readable, self-consistent, and still the defaults' runs."""

from pathlib import Path

import pytest

from clbench.config import resolve
from clbench.metrics import summarize
from clbench.report import read_record

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference"
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


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_record_was_made_by_todays_defaults(path):
    """Reference commands use registered defaults only: a changed default makes these records stale."""
    record, _ = read_record(path)
    cfg = resolve(record["benchmark"], record["strategy"], scenario=record["scenario"], seed=record["seed"])
    assert cfg.to_dict() == record["config"]
    assert cfg.run_id() == record["run_id"]
