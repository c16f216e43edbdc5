"""Evaluation plans: which cells of the accuracy matrix a run evaluates (torch-free).

The full matrix evaluates every test experience after every experience: T²
test-set passes. The metrics need far fewer cells: ACC the final row, BWT and
learning accuracy the diagonal, FWT the superdiagonal (and the initial row,
always evaluated). Plans, the values of the config key `eval_plan`:

  full       every cell (the default for streams of up to AUTO_FULL_UP_TO experiences)
  metrics    after experience i: test experiences i and i + 1, and all of them after the last (4T - 2 passes
             with the initial row)
  every:K    full rows after every K-th experience and the last, the diagonal and superdiagonal otherwise
  auto       full up to AUTO_FULL_UP_TO experiences, metrics above

Cells a plan skips are `None` in the record's matrix.
"""

from __future__ import annotations

from clbench.errors import UsageError

AUTO_FULL_UP_TO = 20
PLANS = ("auto", "full", "metrics", "every:K")


def check_plan(text: str) -> str:
    """`text` if it names a plan, else a UsageError saying what is valid."""
    if text in ("auto", "full", "metrics"):
        return text
    every = _every(text)
    if every is None or every < 1:
        raise UsageError(f"bad value for 'eval_plan': received '{text}', expected one of {', '.join(PLANS)} "
                         "(K a whole number >= 1, e.g. every:10).")
    return text


def _every(text: str) -> int | None:
    head, _, count = text.partition(":")
    if head != "every" or not count.strip().isdigit():
        return None
    return int(count)


def resolved(text: str, n_experiences: int) -> str:
    """The plan a run of `n_experiences` uses: `auto` becomes `full` or `metrics`."""
    if text == "auto":
        return "full" if n_experiences <= AUTO_FULL_UP_TO else "metrics"
    return check_plan(text)


def columns(plan: str, after: int, n_steps: int, n_tests: int) -> list[int]:
    """The test experiences evaluated after training step `after` (0-based) of `n_steps` (a resolved plan;
    the last step's row is always full)."""
    everything = list(range(n_tests))
    if plan == "full" or after >= n_steps - 1:
        return everything
    if plan.startswith("every:") and (after + 1) % _every(plan) == 0:
        return everything
    return [j for j in (after, after + 1) if j < n_tests]


def evaluated_cells(plan: str, n_steps: int, n_tests: int) -> int:
    """How many test-set passes a plan makes over a run (the initial row not counted)."""
    return sum(len(columns(plan, i, n_steps, n_tests)) for i in range(n_steps))
