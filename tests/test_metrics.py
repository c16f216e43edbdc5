"""Each metric against a hand-computed 3x3 accuracy matrix."""

import pytest

from clbench import metrics

R = [
    [0.9, 0.1, 0.2],
    [0.5, 0.8, 0.3],
    [0.4, 0.6, 0.7],
]
INITIAL = [0.1, 0.2, 0.1]


def test_average_accuracy_is_the_mean_of_the_last_row():
    assert metrics.average_accuracy(R) == pytest.approx((0.4 + 0.6 + 0.7) / 3)


def test_backward_transfer():
    # (0.4 - 0.9 + 0.6 - 0.8) / 2
    assert metrics.backward_transfer(R) == pytest.approx(-0.35)


def test_forward_transfer():
    # (R[0][1] - init[1] + R[1][2] - init[2]) / 2 = (0.1 - 0.2 + 0.3 - 0.1) / 2
    assert metrics.forward_transfer(R, INITIAL) == pytest.approx(0.05)


def test_forgetting_uses_the_best_earlier_accuracy():
    # j=0: max(0.9, 0.5) - 0.4 = 0.5; j=1: max(0.1, 0.8) - 0.6 = 0.2
    assert metrics.forgetting(R) == pytest.approx(0.35)


def test_learning_accuracy_is_the_mean_of_the_diagonal():
    assert metrics.learning_accuracy(R) == pytest.approx(0.8)


def test_summarize_collects_every_metric():
    summary = metrics.summarize(R, INITIAL)
    assert set(summary) == set(metrics.METRICS)
    assert summary["acc"] == pytest.approx(1.7 / 3)
    assert summary["fwt"] == pytest.approx(0.05)


def test_single_experience_has_no_transfer_metrics():
    summary = metrics.summarize([[0.75]], [0.1])
    assert summary == {"acc": 0.75, "bwt": None, "fwt": None, "forgetting": None, "learning_acc": 0.75}


def test_joint_row_has_accuracy_only():
    summary = metrics.summarize([[0.9, 0.8, 0.7]], INITIAL)
    assert summary["acc"] == pytest.approx(0.8)
    assert summary["bwt"] is None and summary["forgetting"] is None


def test_empty_matrix_has_no_metrics():
    assert all(v is None for v in metrics.summarize([]).values())


PLANS = ["full", "metrics", "every:2", "every:3"]


@pytest.mark.parametrize("plan", PLANS)
def test_metrics_from_the_cells_a_plan_evaluates_equal_the_full_matrix(plan):
    from clbench.evalplan import columns

    R = [[0.9, 0.2, 0.1, 0.3], [0.7, 0.8, 0.2, 0.1], [0.6, 0.7, 0.95, 0.4], [0.5, 0.6, 0.9, 0.85]]
    initial = [0.1, 0.12, 0.09, 0.11]
    sparse = [[R[i][j] if j in columns(plan, i, 4, 4) else None for j in range(4)] for i in range(4)]
    full, planned = metrics.summarize(R, initial), metrics.summarize(sparse, initial)
    for name in ("acc", "bwt", "fwt", "learning_acc"):
        assert planned[name] == full[name]
    assert planned["forgetting"] <= full["forgetting"]  # a max over fewer rows


@pytest.mark.parametrize("plan, expected", [
    ("full", [[0, 1, 2, 3]] * 4),
    ("metrics", [[0, 1], [1, 2], [2, 3], [0, 1, 2, 3]]),
    ("every:2", [[0, 1], [0, 1, 2, 3], [2, 3], [0, 1, 2, 3]]),
])
def test_the_cells_of_each_plan(plan, expected):
    from clbench.evalplan import columns, evaluated_cells

    assert [columns(plan, i, 4, 4) for i in range(4)] == expected
    assert evaluated_cells(plan, 4, 4) == sum(map(len, expected))
    assert columns(plan, 0, 1, 4) == [0, 1, 2, 3]  # joint training: its one row is the last


@pytest.mark.parametrize("n", [1, 2, 10, 100, 1000])
def test_the_test_set_passes_the_docs_give_for_each_plan(n):
    """With the initial row: full T + T², metrics 4T - 2 (2 after each of the first T - 1, T after the last)."""
    from clbench.evalplan import evaluated_cells

    assert n + evaluated_cells("full", n, n) == n + n * n
    assert n + evaluated_cells("metrics", n, n) == 4 * n - 2


def test_auto_is_full_up_to_twenty_experiences_then_metrics():
    from clbench.evalplan import resolved

    assert resolved("auto", 20) == "full" and resolved("auto", 21) == "metrics"
    assert resolved("every:5", 100) == "every:5"


@pytest.mark.parametrize("bad", ["every", "every:0", "every:x", "some", "every:-1", ""])
def test_a_bad_plan_is_a_usage_error(bad):
    from clbench.config import resolve
    from clbench.errors import UsageError

    with pytest.raises(UsageError, match="bad value for 'eval_plan'"):
        resolve("split_digits", "naive", cli_values={"eval_plan": bad})
