"""`clbench report`: aggregation, grouping, formats and robustness on hand-made records."""

import io
import json
import subprocess
import sys

import pandas as pd
import pytest

from clbench import report, tables

MATRICES = {  # ACC = mean of the last row: 0.5, 0.6, 0.7 -> mean 0.6, sample std 0.1
    0: [[1.0, 0.0], [0.2, 0.8]],
    1: [[1.0, 0.0], [0.4, 0.8]],
    2: [[1.0, 0.0], [0.6, 0.8]],
}


@pytest.fixture
def folder(tmp_path, save_records, make_record):
    records = [make_record("naive", s, MATRICES[s]) for s in range(3)]
    records += [make_record("cumulative", s, [[1.0, 0.0], [1.0, 0.9]]) for s in range(3)]
    return save_records(tmp_path / "runs", records)


def table_for(folder):
    return report.aggregate(report.records_frame(report.load_records([folder]).records))


def test_mean_and_sample_std_over_seeds(folder):
    table = table_for(folder).set_index("strategy")
    assert table.loc["naive", "n"] == 3
    assert table.loc["naive", "acc_mean"] == pytest.approx(0.6)
    assert table.loc["naive", "acc_std"] == pytest.approx(0.1)
    assert table.loc["naive", "bwt_mean"] == pytest.approx(-0.6)  # (0.4 - 1.0) on average
    assert table.loc["naive", "train_s_mean"] == pytest.approx(11.0)
    assert table.loc["cumulative", "acc_std"] == pytest.approx(0.0)


def test_differing_config_keys_make_separate_rows(tmp_path, save_records, make_record):
    records = [make_record("ewc", s, ewc_lambda=lam, epochs=10) for s in range(2) for lam in (5000.0, 1000.0)]
    records.append(make_record("naive", 0, epochs=10))
    table = table_for(save_records(tmp_path, records))
    assert sorted(table["variant"]) == ["default", "default", "ewc_lambda=1000"]  # 5000: ewc's default
    assert set(table.loc[table["strategy"] == "ewc", "n"]) == {2}


def test_variants_are_named_by_their_difference_from_the_registered_defaults(tmp_path, save_records, make_record):
    """The label does not depend on which other records are loaded; a later-added key a record lacks holds its
    field default (permuted MNIST's protocol sets normalize=false, pad=2, so an older record is the variant)."""
    alone = table_for(save_records(tmp_path / "a", [make_record("naive", 0, epochs=1)]))
    assert list(alone["variant"]) == ["epochs=1"]  # split_digits trains 10 epochs by default
    permuted = dict(benchmark="permuted_mnist", scenario="domain", lr=1e-4)
    records = [make_record("naive", 0, **permuted),
               make_record("naive", 0, **permuted, normalize=False, pad=2)]
    table = table_for(save_records(tmp_path / "b", records))
    assert sorted(table["variant"]) == ["default", "normalize=True, pad=0"]


def test_records_of_unknown_names_are_told_apart_by_what_differs_among_them(tmp_path, save_records, make_record):
    records = [make_record("someone_elses", s, epochs=e) for s, e in ((0, 1), (1, 2))]
    table = table_for(save_records(tmp_path, records))
    assert sorted(table["variant"]) == ["epochs=1", "epochs=2"]


def test_single_seed_has_no_std(tmp_path, save_records, make_record):
    table = table_for(save_records(tmp_path, [make_record()]))
    header, rows = tables.text_rows(table, ["acc"])
    assert rows[0][-1] == "0.5500"


def test_csv_parses_back_to_the_same_numbers(folder):
    table = table_for(folder)
    parsed = pd.read_csv(io.StringIO(tables.render(table, ["acc", "bwt"], "csv")))
    assert list(parsed["strategy"]) == list(table["strategy"])
    assert parsed["acc_mean"].tolist() == table["acc_mean"].tolist()
    assert parsed["acc_std"].tolist() == table["acc_std"].tolist()


def test_json_and_markdown_and_latex(folder):
    table = table_for(folder)
    rows = json.loads(tables.render(table, ["acc"], "json"))
    assert {r["strategy"]: r["n"] for r in rows} == {"naive": 3, "cumulative": 3}
    markdown = tables.render(table, ["acc"], "markdown").splitlines()
    assert markdown[0].startswith("| benchmark |") and "0.6000 ± 0.1000" in markdown[3]
    latex = tables.render(table, ["acc", "forgetting"], "latex")
    assert latex.startswith(r"\begin{tabular}{llllrrr}") and latex.endswith(r"\end{tabular}")
    assert r"split\_digits" in latex and r"$0.6000 \pm 0.1000$" in latex
    assert all(line.endswith(r"\\") for line in latex.splitlines()[2:-2] if line != r"\hline")


def test_mean_matrix_with_initial_row(folder):
    matrices = tables.mean_matrices(report.records_frame(report.load_records([folder]).records))
    naive = next(m for m in matrices if m["strategy"] == "naive")
    assert naive["rows"] == ["initial", "after 0", "after 1"]
    assert naive["mean"][2] == pytest.approx([0.4, 0.8]) and naive["std"][2][0] == pytest.approx(0.2)
    text = tables.render_matrices([naive], "table")
    assert "split_digits / class / naive (n=3)" in text and "0.4000 ± 0.2000" in text
    csv_lines = tables.render_matrices([naive], "csv").splitlines()
    assert len(csv_lines) == 1 + 3 * 2


def test_filters_and_sort(folder):
    frame = report.records_frame(report.load_records([folder]).records)
    assert set(report.select(frame, strategy="naive")["strategy"]) == {"naive"}
    assert report.select(frame, scenario="task").empty
    ordered = report.sort_table(report.aggregate(frame), "acc")
    assert list(ordered["strategy"]) == ["cumulative", "naive"]
    assert list(report.sort_table(report.aggregate(frame), "forgetting")["strategy"])[0] == "cumulative"


def test_unknown_metric_and_sort_are_usage_errors():
    from clbench.errors import UsageError

    with pytest.raises(UsageError, match="unknown --metric 'accuracy'"):
        report.check_metrics(["accuracy"])
    with pytest.raises(UsageError, match="unknown --sort"):
        report.sort_table(pd.DataFrame(), "speed")


def test_bad_files_are_skipped_with_one_warning_each(cli, folder):
    (folder / "corrupt.json").write_text("{not json")
    (folder / "other.json").write_text(json.dumps({"hello": "world"}))
    newer = json.loads(next((folder / "split_digits").rglob("*.json")).read_text())
    newer["schema"] = 99
    (folder / "newer.json").write_text(json.dumps(newer))
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    result = cli("report", folder)
    assert result.code == 0
    warnings = result.err.strip().splitlines()
    assert len(warnings) == 3 and all(w.startswith("clbench: warning: skipped") for w in warnings)
    assert any("corrupt JSON" in w for w in warnings) and any("not a clbench run record" in w for w in warnings)
    assert any("newer clbench (schema 99" in w for w in warnings)
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before  # never writes


def test_cli_report_formats(cli, folder):
    table = cli("report", folder)
    assert table.code == 0 and "n" in table.out.splitlines()[0] and "0.6000 ± 0.1000" in table.out
    assert cli("report", folder, "--format", "csv").out.startswith("benchmark,scenario,strategy,variant,n,")
    matrix = cli("report", folder, "--matrix", "--strategy", "naive")
    assert "initial" in matrix.out and "after 1" in matrix.out and "cumulative" not in matrix.out
    only = cli("report", folder, "--metric", "acc,forgetting", "--format", "markdown")
    assert only.out.splitlines()[0] == "| benchmark | scenario | strategy | variant | n | ACC | forgetting |"


def test_empty_and_missing_folders(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    empty = cli("report", tmp_path / "empty")
    assert empty.code == 1 and "no run records found" in empty.err and len(empty.err.splitlines()) == 1
    missing = cli("report", tmp_path / "nowhere")
    assert missing.code == 2 and "does not exist" in missing.err


def test_report_on_200_records_is_fast_and_torch_free(tmp_path, save_records, make_record):
    records = [make_record(s, seed, variant=v) for s in ("naive", "ewc", "si", "lwf") for v in range(5)
               for seed in range(10)]
    folder = save_records(tmp_path, records)
    # CPU time of the process, not wall time: other jobs on the machine must not fail the test
    code = ("import sys, time; t = time.process_time(); from clbench.cli import main; "
            f"rc = main(['report', {str(folder)!r}]); "
            "assert rc == 0; assert 'torch' not in sys.modules and 'avalanche' not in sys.modules; "
            "print(time.process_time() - t)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 + 20 + 1  # header, rule, 20 groups, then the seconds from import to answer
    assert float(lines[-1]) < 2.0


def test_filters_take_comma_lists_and_repeat(cli, folder):
    both = cli("report", folder, "-s", "naive,cumulative", "--format", "csv").out.splitlines()
    repeated = cli("report", folder, "-s", "naive", "-s", "cumulative", "--format", "csv").out.splitlines()
    assert len(both) == 3 and both == repeated
    assert len(cli("report", folder, "-s", "naive", "--format", "csv").out.splitlines()) == 2


def test_long_variant_labels_are_abbreviated_with_a_legend():
    header = ["strategy", "variant", "ACC"]
    long_a, long_b = "epochs=10, ewc_lambda=10, lr=0.01", "epochs=10, ewc_lambda=100, lr=0.01"
    rows = [["ewc", "default", "0.9"], ["ewc", long_a, "0.8"], ["ewc", long_b, "0.7"], ["si", long_a, "0.6"]]
    short, legend = tables.abbreviated_variants(header, rows)
    assert [r[1] for r in short] == ["default", "v1", "v2", "v1"]
    assert legend == ["variants:", f"  v1  {long_a}", f"  v2  {long_b}"]
    assert tables.abbreviated_variants(header, rows[:1]) == (rows[:1], [])


def test_a_terminal_table_wraps_its_metric_columns_to_the_width(folder):
    table = table_for(folder)
    metrics = ["acc", "bwt", "fwt", "forgetting", "learning_acc"]
    text = tables.render(table, metrics, "table", width=80)
    blocks = text.split("\n\n")
    assert len(blocks) > 1 and all(len(line) <= 80 for line in text.splitlines())
    assert all(block.startswith("benchmark     scenario  strategy") for block in blocks)
    headers = " ".join(block.splitlines()[0] for block in blocks)
    assert all(tables.HEADERS[m] in headers for m in metrics)
    assert "\n\n" not in tables.render(table, metrics, "table")  # no width: one block


def test_report_columns_choose_keys_and_metrics(cli, folder):
    result = cli("report", str(folder), "--columns", "strategy,n,acc")
    assert result.code == 0, result.err
    assert result.out.splitlines()[0].split() == ["strategy", "n", "ACC"]
    assert cli("report", str(folder), "--columns", "strategy,accuracy").code == 2
    both = cli("report", str(folder), "--columns", "strategy,acc", "--metric", "bwt")
    assert both.code == 2 and "not both" in both.err


def test_column_blocks_repeat_the_key_columns_and_fit_the_width():
    from clbench.tables import column_blocks

    widths = [8, 6, 6, 6, 6]  # a label column, then four of 6 characters; two spaces between columns
    assert column_blocks(widths, None) == [[1, 2, 3, 4]] and column_blocks(widths, 40) == [[1, 2, 3, 4]]
    assert column_blocks(widths, 30) == [[1, 2], [3, 4]]  # 8 + 2 + 6 + 2 + 6 = 24; a third makes 32
    assert column_blocks(widths, 10) == [[1], [2], [3], [4]]  # at least one column a block, even if too wide
    assert column_blocks([3, 3, 5, 5], 14, n_keys=2) == [[2], [3]]


def test_a_wide_matrix_comes_in_blocks_without_its_blank_rows():
    from clbench.tables import render_matrices

    mean = [[0.1, 0.1, 0.1, 0.1], [0.9, 0.2, None, None], [None, 0.8, 0.3, None], [None, None, 0.7, 0.4],
            [0.5, 0.6, 0.7, 0.8]]
    matrix = {"benchmark": "b", "scenario": "domain", "strategy": "naive", "variant": "default", "n": 1,
              "plan": "metrics", "rows": ["initial", "after 0", "after 1", "after 2", "after 3"], "mean": mean,
              "std": [[0.0] * 4 for _ in mean]}
    assert render_matrices([matrix], "table", width=26).splitlines() == [
        "b / domain / naive (n=1,", "eval plan metrics: blank", "cells not evaluated)",
        "             e0      e1",
        "initial  0.1000  0.1000",
        "after 0  0.9000  0.2000",
        "after 1          0.8000",
        "after 3  0.5000  0.6000",  # after 2: blank in e0 and e1, left out of this block
        "",
        "             e2      e3",
        "initial  0.1000  0.1000",
        "after 1  0.3000",
        "after 2  0.7000  0.4000",
        "after 3  0.7000  0.8000",
    ]
    assert render_matrices([matrix], "table") == render_matrices([matrix], "table", width=500)
