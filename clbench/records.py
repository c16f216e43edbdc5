"""Result records: one JSON file per run, written atomically (temp file + rename)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Callable

from clbench.errors import ClbenchError, UsageError

SCHEMA = 2  # 2: matrix cells an evaluation plan skipped are null; `evaluation` says which plan
CHECKPOINT_SUFFIX = ".ckpt"  # a run's checkpoint, beside its record
MODEL_SUFFIX = ".model.pt"  # a run's saved model (clbench run --save-model), beside its record
LOGS_SUFFIX = ".logs"  # a run's logger folders (clbench run --logger), beside its record


def run_file(out: Path, benchmark: str, strategy: str, run_id: str, suffix: str = ".json") -> Path:
    """OUT/BENCHMARK/STRATEGY/RUN_ID + suffix: where a run's record, checkpoint and saved model live."""
    return Path(out) / benchmark / strategy / f"{run_id}{suffix}"


@dataclass
class RunRecord:
    """Everything one run produced; `to_dict()` is the JSON written to disk."""

    run_id: str
    benchmark: str
    strategy: str
    scenario: str
    seed: int
    config: dict[str, Any]
    experiences: list[dict]
    initial_accuracy: list[float]
    accuracy_matrix: list[list[float]]
    metrics: dict[str, float | None]
    timing: dict[str, Any]
    model: dict[str, Any]
    status: str = "ok"  # ok | diverged | failed
    extras: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    evaluation: dict[str, Any] = field(default_factory=dict)  # the plan and how many test-set passes it made
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    schema: int = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        order = ["schema", "run_id", "created", "status", "benchmark", "strategy", "scenario", "seed"]
        return {**{k: data[k] for k in order}, **{k: v for k, v in data.items() if k not in order}}

    def path(self, out: Path) -> Path:
        return run_file(out, self.benchmark, self.strategy, self.run_id)


def check_out_dir(out: Path) -> Path:
    """A usable output folder, or a UsageError that says why not."""
    out = Path(out)
    for parent in (out, *out.parents):
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"--out '{out}' cannot be used: '{parent}' is a file, not a folder.")
        if parent.exists():
            break
    return out


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call `write(handle)` on a temp file in `path`'s folder, then rename it to `path`: a reader sees the
    old file or the whole new one, never a half-written one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(f"cannot write '{path}': a file stands where a folder is needed.") from None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes it private; the result is an ordinary file
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_json_atomic(data: Any, path: Path) -> Path:
    """Write JSON to `path` atomically (`write_atomic`)."""
    text = json.dumps(data, indent=1, allow_nan=False) + "\n"
    return write_atomic(path, lambda handle: handle.write(text.encode()))


def write_record(record: RunRecord, out: Path) -> Path:
    return write_json_atomic(record.to_dict(), record.path(out))


def check_writable(folder: Path, what: str = "records", flag: str = "--out") -> Path:
    """A UsageError now, before any work, unless files can be written into `folder` (created later, when the
    first file is written): a probe is made and removed in it or in its nearest existing parent."""
    folder = Path(folder)
    existing = next(p for p in (folder, *folder.parents) if p.exists() or p == folder.anchor or not p.parts)
    if existing.exists() and not existing.is_dir():
        raise UsageError(f"cannot write {what} to '{folder}': '{existing}' is a file, not a folder; choose another "
                         f"{flag}.")
    try:
        probe = tempfile.mkdtemp(dir=existing, prefix=".clbench-probe-")
        os.rmdir(probe)
    except OSError as exc:
        raise UsageError(f"cannot write {what} to '{folder}': {exc.strerror or exc}; choose a writable folder "
                         f"with {flag}.") from None
    return folder


def write_record_or_rescue(record: RunRecord, out: Path) -> Path:
    """Write a finished run's record; if that fails (disk full, permissions changed while it trained), write
    it to a rescue folder instead, or else print it on stdout, and raise a ClbenchError saying where it is."""
    try:
        return write_record(record, out)
    except (OSError, UsageError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        try:
            saved = f"it was saved to '{write_record(record, Path(tempfile.gettempdir()) / 'clbench-rescue')}'"
        except (OSError, UsageError):
            print(json.dumps(record.to_dict(), indent=1))
            saved = "it is printed above on stdout"
        raise ClbenchError(f"cannot write the record '{record.path(out)}' ({reason}); the run finished and {saved}: "
                           f"move it to {record.path(out).parent}/.") from None


def _git(*args: str, cwd: Path | None = None) -> str | None:
    """The output of a git command in `cwd` (clbench's checkout by default); None outside a checkout."""
    try:
        result = subprocess.run(["git", *args], cwd=cwd or Path(__file__).parent, capture_output=True,
                                text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def git_commit() -> str | None:
    """The clbench checkout's commit, when it runs from one."""
    return _git("rev-parse", "HEAD") or None


def git_dirty(cwd: Path | None = None) -> bool | None:
    """Whether tracked files of the checkout differ from its commit (None outside a checkout)."""
    status = _git("status", "--porcelain", "--untracked-files=no", cwd=cwd)
    return None if status is None else bool(status)


def environment(device: str) -> dict[str, Any]:
    """Versions and machine facts that can change a result."""
    import avalanche
    import torch

    import clbench

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "avalanche": getattr(avalanche, "__version__", "unknown"),
        "clbench": clbench.__version__,
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "device": device,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(terse=True),
        # the vector instructions torch's CPU kernels use: another set sums floats in another order
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
