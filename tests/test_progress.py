"""Progress output: a bar on a terminal, one line per experience otherwise, nothing when quiet."""

import io
import re

import pytest

from clbench.progress import Reporter, what_went_wrong


def drive(reporter):
    reporter.start_run("bench/naive/class/seed 0")
    reporter.start_experience(0, 2)
    for done in range(1, 4):
        reporter.update(done, 3)
    reporter.end_experience(0, 2, [0.5, 0.25], 1.5)


def test_terminal_gets_a_bar_with_rate_and_eta_and_a_summary_line():
    stream = io.StringIO()
    drive(Reporter(stream, tty=True, refresh_s=0))
    text = stream.getvalue()
    bars = [part for part in text.split("\r") if "exp 1/2:" in part and ("it/s" in part or "s/it" in part)]
    assert bars and re.search(r"\d+/3 \[\d\d:\d\d<\d\d:\d\d", bars[-1])  # done/total [elapsed<ETA
    assert text.endswith("bench/naive/class/seed 0 exp 1/2: train 1.5s, mean acc on seen 0.5000, on all 0.3750\n")


def test_the_bar_is_closed_before_the_next_experience():
    stream = io.StringIO()
    reporter = Reporter(stream, tty=True)
    drive(reporter)
    assert reporter._bar is None
    reporter.start_experience(1, 2)
    reporter.update(1, 5)
    assert reporter._bar.total == 5 and reporter._bar.n == 1


def test_pipe_gets_only_the_summary_line():
    stream = io.StringIO()
    drive(Reporter(stream, tty=False))
    assert stream.getvalue() == ("bench/naive/class/seed 0 exp 1/2: train 1.5s, "
                                 "mean acc on seen 0.5000, on all 0.3750\n")


def test_quiet_is_silent():
    stream = io.StringIO()
    drive(Reporter(stream, quiet=True, tty=True))
    assert stream.getvalue() == ""


def test_compact_extras_are_summarised_after_the_last_experience():
    from clbench.display import format_extras

    extras = {"joint": True, "density": [{"a": 0.5}, {"a": 0.25}], "pruned_total": [3, 16230],
              "square_profile": [[3.0, 2.0], [4.0, 1.5]], "topology": [[[1, 2], [3, 4]]] * 2}
    assert format_extras(extras) == ["density: a 0.25", "pruned_total: 16230", "square_profile: [4 1.5]"]


def test_experience_lines_of_a_sparse_evaluation_plan():
    import io

    from clbench.progress import Reporter

    stream = io.StringIO()
    reporter = Reporter(stream=stream, tty=False)
    reporter.start_run("run")
    reporter.end_experience(1, 4, [None, 0.9, 0.1, None], 2.0)
    reporter.end_experience(3, 4, [0.5, 0.6, 0.7, 0.8], 2.0)
    first, last = stream.getvalue().splitlines()
    assert first == "run exp 2/4: train 2.0s, acc on experience 2 0.9000"
    assert last == "run exp 4/4: train 2.0s, mean acc on seen 0.6500, on all 0.6500"


@pytest.mark.parametrize("error, said", [
    ({"experience": 2, "type": "RuntimeError", "message": "out of disk"},
     " in experience 3 (RuntimeError: out of disk)"),
    ({"experience": 1, "iteration": 17, "loss": "nan"}, " in experience 2 (loss nan at iteration 17)"),
    ({"type": "RayTaskError", "message": "worker died"}, " (RayTaskError: worker died)"),
    ({"experience": -1, "iteration": 0, "loss": "inf"}, " (loss inf at iteration 0)"),
])
def test_what_went_wrong_names_the_experience_counted_from_one(error, said):
    assert what_went_wrong(error) == said
