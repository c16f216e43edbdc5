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
