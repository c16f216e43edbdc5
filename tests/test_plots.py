"""`clbench plot`: the files it writes, and kinds a run does not support."""

import matplotlib.image
import pytest

from clbench import plots


@pytest.fixture
def folder(tmp_path, save_records, make_record):
    records = [make_record(s, seed) for s in ("naive", "cumulative") for seed in range(2)]
    records.append(make_record("joint", 0, matrix=[[0.9, 0.95]]))
    return save_records(tmp_path / "runs", records)


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_matrix_heat_maps(cli, folder, tmp_path, fmt):
    result = cli("plot", folder, "--kind", "matrix", "--out", tmp_path / "figs", "--format", fmt)
    assert result.code == 0, result.err
    names = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert names == [f"matrix_split_digits_class_{s}.{fmt}" for s in ("cumulative", "joint", "naive")]
    if fmt == "png":
        image = matplotlib.image.imread(tmp_path / "figs" / "matrix_split_digits_class_naive.png")
        assert image.shape[0] > 300 and image.shape[1] > 300


def test_curves_one_figure_per_benchmark_and_scenario(cli, folder, tmp_path):
    result = cli("plot", folder, "--kind", "curves", "--out", tmp_path / "figs")
    assert result.code == 0, result.err
    assert [p.name for p in (tmp_path / "figs").iterdir()] == ["curves_split_digits_class.png"]


def test_single_record_file(cli, folder, tmp_path):
    path = next((folder / "split_digits" / "naive").glob("*.json"))
    assert cli("plot", path, "--out", tmp_path / "one").code == 0
    assert len(list((tmp_path / "one").iterdir())) == 1


def test_unknown_or_unsupported_kind_is_a_clear_error(cli, folder, tmp_path):
    unknown = cli("plot", folder, "--kind", "heatmap", "--out", tmp_path / "f")
    assert unknown.code == 2 and "Valid kinds: curves, matrix" in unknown.err

    @plots.register_plot("probe_kind", "needs connectivity", needs_extra="connectivity")
    def draw(frame, out_dir, fmt):
        return []

    try:
        unsupported = cli("plot", folder, "--kind", "probe_kind", "--out", tmp_path / "f")
    finally:
        del plots.PLOT_KINDS["probe_kind"]
    assert unsupported.code == 2 and "needs runs that record 'connectivity'" in unsupported.err
    assert not (tmp_path / "f").exists()


def test_bad_format(cli, folder, tmp_path):
    result = cli("plot", folder, "--format", "bmp", "--out", tmp_path / "f")
    assert result.code == 2 and "valid: png, pdf, svg" in result.err


def test_duplicate_plot_kind_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        plots.register_plot("matrix", "again")(lambda *a: [])


def test_records_of_a_sparse_plan_and_of_schema_1_report_and_plot(cli, tmp_path):
    """Cells an evaluation plan skipped are blank in `report --matrix` and left out of the figures; a
    record written before plans existed (schema 1) still reads."""
    import json

    from clbench import runner
    from clbench.config import resolve
    from clbench.records import write_record

    keys = {"n_experiences": "4", "epochs": "1", "eval_plan": "metrics"}
    path = write_record(runner.run(resolve("permuted_digits", "naive", cli_values=keys)), tmp_path / "runs")
    old = json.loads(path.read_text())
    old.update(schema=1, run_id="domain-s0-old", config={**old["config"], "eval_plan": "full"})
    old.pop("evaluation")
    old["accuracy_matrix"] = [[0.5] * 4 for _ in range(4)]
    (path.parent / "domain-s0-old.json").write_text(json.dumps(old))
    result = cli("report", tmp_path / "runs", "--matrix")
    assert result.code == 0, result.err
    assert "eval plan metrics: blank cells not evaluated" in result.out
    assert "0.5000" in result.out  # the schema-1 record
    for kind in ("matrix", "curves"):
        result = cli("plot", tmp_path / "runs", "--kind", kind, "--out", tmp_path / kind)
        assert result.code == 0, result.err
        assert list((tmp_path / kind).glob("*.png"))
    csv = cli("report", tmp_path / "runs", "--matrix", "--format", "csv").out
    assert "None" not in csv and "nan" not in csv


def test_series_styles_are_distinct():
    from clbench.curves import series_style

    styles = {tuple(series_style(i).values()) for i in range(60)}
    assert len(styles) == 60


def fake_group(strategy: str, variant: str = "default", n_tests: int = 3) -> dict:
    rows = [[1.0 / (1 + i + j) for j in range(n_tests)] for i in range(n_tests + 1)]
    return {"benchmark": "b", "scenario": "class", "strategy": strategy, "variant": variant, "n": 2,
            "mean": rows, "std": [[0.01] * n_tests for _ in rows]}


def test_many_series_are_faceted_by_family_and_the_legends_stay_inside_the_figure():
    from clbench.curves import curves_figure, facets

    members = [fake_group(s) for s in ("naive", "ewc", "si", "lwf", "replay", "cumulative", "joint")]
    members += [fake_group("sparse_syn", f"grow={g}, zeta=0.3, old_lr_scale=0.5, max_density=0.2")
                for g in (0.01, 0.02, 0.05)]
    members += [fake_group("kwinners")]
    rows = facets(members)
    assert [title for title, _ in rows] == ["baselines", "kwinners", "sparse_syn"]
    assert facets(members[:8]) == [("", members[:8])]
    fig = curves_figure("b", "class", members)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    figure_box = fig.bbox
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 3
    for legend in legends:
        box = legend.get_window_extent(renderer)
        assert box.x1 <= figure_box.x1 + 1 and box.y0 >= -1  # never wider or taller than the figure
    baseline_lines = [line for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")]
    looks = {(line.get_color(), line.get_linestyle(), line.get_marker()) for line in baseline_lines}
    assert len(looks) == len(baseline_lines) == 7
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["exp 0", "exp 1", "exp 2", "avg on seen"]  # on the top row only


def test_long_streams_get_evenly_spaced_panels_and_ticks():
    from clbench.curves import panel_columns
    from clbench.plots import ticks

    assert panel_columns(4) == [0, 1, 2, 3] and panel_columns(10) == list(range(10))
    assert panel_columns(100) == [0, 11, 22, 33, 44, 55, 66, 77, 88, 99]
    assert panel_columns(1000)[:3] == [0, 111, 222] and panel_columns(1000)[-1] == 999
    assert ticks(5) == [0, 1, 2, 3, 4] and ticks(20) == list(range(20))
    assert len(ticks(1001)) == 20 and ticks(1001)[0] == 0 and ticks(1001)[-1] == 1000


def test_a_figure_name_too_long_for_a_file_system_is_cut_and_kept_unique():
    from clbench.plots import MAX_NAME, slug

    short = slug("matrix", "split_digits", "naive", "lr=0.001")
    assert short == "matrix_split_digits_naive_lr=0.001"
    long_a, long_b = (slug("matrix", "split_digits", "sparse_syn", ", ".join(f"key{i}={v}" for i in range(40)))
                      for v in (1, 2))
    assert len(long_a) == len(long_b) == MAX_NAME and long_a != long_b


def metrics_plan_record(fake_record, strategy: str, n: int, seed: int = 0) -> dict:
    """A hand-made record of `n` experiences evaluated under the `metrics` plan (null cells)."""
    matrix = [[0.9 - 0.001 * (i - j) if j in (i, i + 1) or i == n - 1 else None for j in range(n)] for i in range(n)]
    record = fake_record(strategy, seed, matrix=matrix, benchmark="permuted_digits", scenario="domain",
                         n_experiences=n)
    record.update(schema=2, evaluation={"plan": "metrics", "test_passes": 4 * n - 2})
    return record


def test_streams_of_100_and_10_experiences_plot_apart_and_at_a_readable_size(cli, tmp_path, save_records, make_record,
                                                                              recwarn):
    records = [metrics_plan_record(make_record, "naive", n) for n in (100, 10)]
    folder = save_records(tmp_path / "runs", records)
    curves = cli("plot", folder, "--kind", "curves", "--out", tmp_path / "curves")
    assert curves.code == 0, curves.err
    assert sorted(p.name for p in (tmp_path / "curves").iterdir()) == [
        "curves_permuted_digits_domain_T10.png", "curves_permuted_digits_domain_T100.png"]
    matrices = cli("plot", folder, "--kind", "matrix", "--out", tmp_path / "matrix")
    assert matrices.code == 0, matrices.err
    for path in [*(tmp_path / "curves").iterdir(), *(tmp_path / "matrix").iterdir()]:
        height, width = matplotlib.image.imread(path).shape[:2]
        assert width <= 4000 and height <= 2000, (path.name, width, height)
    assert not [w for w in recwarn if "layout" in str(w.message)]  # constrained layout had room for everything
