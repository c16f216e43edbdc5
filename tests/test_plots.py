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
