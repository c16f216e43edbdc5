"""Bad input and faults: one clear line on stderr, a non-zero exit, no traceback, nothing half-written — or,
where the input is valid, the right result. Each row of a table is one case a user has hit."""

from __future__ import annotations

import errno
import gzip
import json
import shutil
from pathlib import Path

import pytest
import torch

from clbench.benchmarks import sources

DIGITS = ("run", "-b", "split_digits", "-s", "naive", "--iterations", "2", "-q")


def one_line_error(result, code: int, *fragments: str) -> None:
    assert result.code == code, (result.code, result.err)
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("clbench: error:"), result.err
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ------------------------------------------------------------------ values
VALUE_CASES = [
    (("--seed", "-1"), "bad --seed -1"),
    (("--seed", "100000000000000000000000"), "expected a whole number from 0 to"),
    (("--seeds", "0-100000000"), "more than 10,000 seeds"),
    (("--seeds", "5-2"), "runs backwards; write it 2-5"),
    (("--hidden=-5",), "bad value for 'hidden'"),
    (("--set", "hidden=64,0"), "bad value for 'hidden'"),
    (("--epochs", "1000000000000"), "bad value for 'epochs'"),
    (("--iterations", "100000000000"), "bad value for 'iterations'"),
    (("--lr", "0.1", "--set", "lr=0.5"), "'lr' given twice"),
    (("--set", "eval_plan=every:0"), "bad value for 'eval_plan'"),
]


@pytest.mark.parametrize("args, fragment", VALUE_CASES, ids=[" ".join(a) for a, _ in VALUE_CASES])
def test_bad_values_are_refused_before_anything_runs(cli, tmp_path, args, fragment):
    out = tmp_path / "out"
    one_line_error(cli(*DIGITS, "--out", out, *args), 2, fragment)
    assert files_under(out) == []


CLICK_CASES = [
    (("run", "-b", "split_digits", "-s", "naive", "--seed", "1e23"), "'1e23' is not a valid integer"),
    (("run", "--scenario", "foo"), "'foo' is not one of 'class', 'task', 'domain'"),
    (("nosuch",), "No such command 'nosuch'"),
    (("report", "--nosuch"), "No such option '--nosuch'"),
]


@pytest.mark.parametrize("args, fragment", CLICK_CASES, ids=[" ".join(a) for a, _ in CLICK_CASES])
def test_flags_the_parser_refuses_are_one_line_too(cli, args, fragment):
    one_line_error(cli(*args), 2, fragment, "--help')")


def test_epochs_that_would_have_no_effect_are_refused_with_the_fix(cli, tmp_path):
    result = cli("run", "-b", "split_mnist", "-s", "naive", "--epochs", "1", "--out", tmp_path, "--no-download", "-q")
    one_line_error(result, 2, "epochs=1 has no effect while iterations=2000", "add --iterations 0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_cuda_without_a_device_is_refused_before_loading(cli, tmp_path):
    one_line_error(cli(*DIGITS, "--out", tmp_path, "--device", "cuda"), 2, "no CUDA device is available here")


# ----------------------------------------------------------- output faults
def test_an_out_folder_that_cannot_be_written_is_refused_before_training(cli, tmp_path, monkeypatch):
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    one_line_error(cli(*DIGITS, "--out", tmp_path / "out"), 2, "cannot write records to", "Permission denied",
                   "--out")


def test_a_file_named_like_the_benchmark_inside_out_is_refused_before_training(cli, tmp_path):
    (tmp_path / "split_digits").write_text("not a folder")
    one_line_error(cli(*DIGITS, "--out", tmp_path), 2, "is a file, not a folder")


def test_a_finished_record_that_cannot_be_written_is_rescued(cli, tmp_path, monkeypatch):
    """The disk fills up while the run trains: the finished record goes to the rescue folder, nothing is lost."""
    from clbench import records

    real, calls = records.write_record, []

    def full_disk_once(record, out):
        calls.append(out)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(record, out)

    monkeypatch.setattr(records, "write_record", full_disk_once)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    result = cli(*DIGITS, "--out", tmp_path / "out")
    one_line_error(result, 1, "No space left on device", "the run finished and it was saved to")
    (rescued,) = (tmp_path / "tmp" / "clbench-rescue").rglob("*.json")
    assert json.loads(rescued.read_text())["status"] == "ok"
    assert not list((tmp_path / "out").rglob("*.json"))


def test_plot_into_a_folder_that_cannot_be_written(cli, tmp_path, monkeypatch):
    import tempfile

    assert cli(*DIGITS, "--out", tmp_path / "runs").code == 0
    (tmp_path / "figs").write_text("a file")
    one_line_error(cli("plot", tmp_path / "runs", "--out", tmp_path / "figs" / "sub"), 2, "is a file, not a folder")

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    one_line_error(cli("plot", tmp_path / "runs", "--out", tmp_path / "figures"), 2, "cannot write figures to",
                   "Read-only file system")


# -------------------------------------------------------------------- data
def damage(raw: Path, name: str, how: str) -> None:
    path = raw / name
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:-40])
    elif how == "random bytes":
        path.write_bytes(bytes(range(256)) * 4)
    elif how == "altered contents":
        content = bytearray(gzip.decompress(path.read_bytes()))
        content[-1] ^= 0xFF
        path.write_bytes(gzip.compress(bytes(content)))


DATA_CASES = [
    ("truncated", "train-images-idx3-ubyte.gz", "is damaged (EOFError"),
    ("random bytes", "train-labels-idx1-ubyte.gz", "is damaged (BadGzipFile"),
]


@pytest.mark.parametrize("how, name, fragment", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_damaged_data_files(cli, tmp_path, idx_files, how, name, fragment):
    root = idx_files.make_set(tmp_path / "data", "MNIST")
    damage(root / "MNIST" / "raw", name, how)
    result = cli("run", "-b", "split_mnist", "-s", "naive", "--iterations", "2", "--data-root", root,
                 "--no-download", "--out", tmp_path / "out", "-q")
    one_line_error(result, 1, fragment, "delete it")
    assert files_under(tmp_path / "out") == []


def test_files_that_are_not_the_official_ones_are_refused_by_md5(cli, tmp_path, monkeypatch, idx_files):
    monkeypatch.setenv("CLBENCH_VERIFY_DATA", "1")
    root = idx_files.make_set(tmp_path / "data", "MNIST")
    result = cli("run", "-b", "split_mnist", "-s", "naive", "--iterations", "2", "--data-root", root,
                 "--no-download", "--out", tmp_path / "out", "-q")
    one_line_error(result, 1, "train-images-idx3-ubyte.gz has MD5", "expected f68b3c2dcbeaaa9fbdd348bbdeb94873",
                   "CLBENCH_VERIFY_DATA=0")


def test_the_md5_verdict_is_cached_by_size_and_time(tmp_path, monkeypatch):
    monkeypatch.setenv("CLBENCH_VERIFY_DATA", "1")
    path = tmp_path / "f.gz"
    path.write_bytes(gzip.compress(b"x"))
    good = sources.md5sum(path)
    reads = []
    monkeypatch.setattr(sources, "md5sum", lambda p: reads.append(p) or good)
    sources.verify_md5(path, good)
    sources.verify_md5(path, good)
    assert len(reads) == 1
    path.write_bytes(gzip.compress(b"y"))  # changed: checked again
    with pytest.raises(sources.DataError):
        monkeypatch.setattr(sources, "md5sum", lambda p: "0" * 32)
        sources.verify_md5(path, good)


LABEL_CASES = [
    ("one class only", lambda y: y * 0, "no training samples of class 1, 2, 3"),
    ("labels outside 0-9", lambda y: y + 5, "training labels outside 0-9"),
]


@pytest.mark.parametrize("case, change, fragment", LABEL_CASES, ids=[c[0] for c in LABEL_CASES])
def test_labels_are_checked_when_the_data_load(cli, tmp_path, idx_files, case, change, fragment):
    import numpy as np

    root = idx_files.make_set(tmp_path / "data", "MNIST")
    raw = root / "MNIST" / "raw"
    labels = sources.read_idx(raw / "train-labels-idx1-ubyte.gz").astype(np.int64)
    idx_files.write(raw / "train-labels-idx1-ubyte.gz", change(labels).astype(np.uint8), compress=True)
    result = cli("run", "-b", "split_mnist", "-s", "naive", "--iterations", "2", "--data-root", root,
                 "--no-download", "--out", tmp_path / "out", "-q")
    one_line_error(result, 1, fragment)


def test_images_of_the_wrong_shape(cli, tmp_path, idx_files):
    import numpy as np

    root = idx_files.make_set(tmp_path / "data", "MNIST")
    raw = root / "MNIST" / "raw"
    images = sources.read_idx(raw / "t10k-images-idx3-ubyte.gz")
    idx_files.write(raw / "t10k-images-idx3-ubyte.gz", np.ascontiguousarray(images[:, :20, :20]), compress=True)
    result = cli("run", "-b", "split_mnist", "-s", "naive", "--iterations", "2", "--data-root", root,
                 "--no-download", "--out", tmp_path / "out", "-q")
    one_line_error(result, 1, "test images of shape (20, 20), expected (28, 28)")


def test_a_failed_download_leaves_no_empty_folder(cli, tmp_path, no_network):
    root = tmp_path / "data"
    result = cli("run", "-b", "split_mnist", "-s", "naive", "--iterations", "2", "--data-root", root,
                 "--out", tmp_path / "out", "-q")
    one_line_error(result, 1, "the download failed")
    assert not (root / "MNIST").exists()


# ----------------------------------------------------------------- reports
@pytest.fixture
def runs(cli, tmp_path) -> Path:
    assert cli(*DIGITS, "--out", tmp_path / "runs", "--seeds", "0-1").code == 0
    return tmp_path / "runs"


def test_the_same_run_reached_twice_counts_once(cli, runs, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(runs, copy)
    result = cli("report", runs, copy, "--format", "csv")
    assert result.code == 0 and result.err == ""
    assert ",2," in result.out.splitlines()[1]  # n = 2 seeds, not 4
    path = next(copy.rglob("*.json"))
    data = json.loads(path.read_text())
    data["metrics"]["acc"] = 0.123
    path.write_text(json.dumps(data))
    result = cli("report", runs, copy)
    assert "found twice with different contents; counted once" in result.err


BAD_RECORDS = [
    ("metrics is a list", lambda d: d.update(metrics=[1, 2]), "field 'metrics' is a list"),
    ("config is a string", lambda d: d.update(config="x"), "field 'config' is a str"),
    ("schema is a string", lambda d: d.update(schema="1"), "bad schema '1'"),
    ("schema from the future", lambda d: d.update(schema=99), "written by a newer clbench"),
    ("matrix of strings", lambda d: d.update(accuracy_matrix=[["a"]]), "not a list of rows of numbers"),
]


@pytest.mark.parametrize("case, change, fragment", BAD_RECORDS, ids=[c[0] for c in BAD_RECORDS])
def test_a_bad_record_is_skipped_with_one_warning(cli, runs, case, change, fragment):
    path = next(runs.rglob("*.json"))
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    result = cli("report", runs)
    assert result.code == 0
    warnings = [line for line in result.err.splitlines() if line.strip()]
    assert len(warnings) == 1 and fragment in warnings[0] and "Traceback" not in result.err


@pytest.mark.parametrize("command", [("report", "--matrix"), ("plot", "--kind", "matrix")])
def test_nothing_to_show_is_said_not_silent(cli, runs, tmp_path, command):
    for path in runs.rglob("*.json"):
        data = json.loads(path.read_text())
        data.update(status="diverged", accuracy_matrix=[])
        path.write_text(json.dumps(data))
    args = (*command, "--out", tmp_path / "figs") if command[0] == "plot" else command
    one_line_error(cli(args[0], runs, *args[1:]), 1, "did not finish")


def test_runs_of_mixed_matrix_shapes_are_named_not_dropped_silently(cli, runs, tmp_path):
    path = next(runs.rglob("*.json"))
    data = json.loads(path.read_text())
    data["accuracy_matrix"] = data["accuracy_matrix"][:2]
    path.write_text(json.dumps(data))
    result = cli("report", runs, "--matrix")
    assert result.code == 1
    lines = result.err.splitlines()
    assert "matrices differ in shape; left out" in lines[0] and "did not finish" in lines[1]
