"""Continual-learning metrics from an accuracy matrix (pure Python, no torch).

R[i][j] is the accuracy on test experience j after training on experience i;
`initial[j]` that of the untrained model. All values lie in [0, 1]. A cell an
evaluation plan skipped is None: ACC needs the last row, BWT and learning
accuracy the diagonal, FWT the superdiagonal and `initial`, and forgetting
takes its max over the rows that were evaluated.
"""

from __future__ import annotations

from statistics import fmean
from typing import Sequence

Matrix = Sequence[Sequence[float | None]]
METRICS = ("acc", "bwt", "fwt", "forgetting", "learning_acc")
DESCRIPTIONS = {
    "acc": "average accuracy after the last experience: mean_j R[T-1][j]",
    "bwt": "backward transfer: mean_{j<T-1} (R[T-1][j] - R[j][j])",
    "fwt": "forward transfer: mean_{j>0} (R[j-1][j] - initial[j])",
    "forgetting": "mean_{j<T-1} (max_{i<T-1} R[i][j] - R[T-1][j])",
    "learning_acc": "learning accuracy, just after each experience: mean_j R[j][j]",
}


def average_accuracy(R: Matrix) -> float:
    return fmean(R[-1])


def backward_transfer(R: Matrix) -> float | None:
    T = len(R[0])
    return fmean(R[T - 1][j] - R[j][j] for j in range(T - 1)) if T > 1 else None


def forward_transfer(R: Matrix, initial: Sequence[float]) -> float | None:
    T = len(R[0])
    return fmean(R[j - 1][j] - initial[j] for j in range(1, T)) if T > 1 else None


def forgetting(R: Matrix) -> float | None:
    """Over the rows evaluated for each test experience (every earlier row under the full plan)."""
    T = len(R[0])
    if T < 2:
        return None
    return fmean(max(R[i][j] for i in range(T - 1) if R[i][j] is not None) - R[T - 1][j] for j in range(T - 1))


def learning_accuracy(R: Matrix) -> float:
    return fmean(R[j][j] for j in range(len(R[0])))


def summarize(R: Matrix, initial: Sequence[float] | None = None) -> dict[str, float | None]:
    """All metrics of a full T x T matrix; a single-row matrix (joint training) has ACC only."""
    if not R:
        return {name: None for name in METRICS}
    if len(R) != len(R[0]):
        return {"acc": average_accuracy(R), "bwt": None, "fwt": None, "forgetting": None, "learning_acc": None}
    return {
        "acc": average_accuracy(R),
        "bwt": backward_transfer(R),
        "fwt": forward_transfer(R, initial) if initial is not None else None,
        "forgetting": forgetting(R),
        "learning_acc": learning_accuracy(R),
    }
