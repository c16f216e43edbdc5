"""Every `clbench` command in the README and docs/ runs, in document order, on the digits benchmarks.

A command is taken from a fenced code block as written (comments stripped, continued lines joined,
`;`-separated commands split) and run with these changes only, so it stays fast and offline:
in `run`, `sweep` and `eval`, MNIST-family and CIFAR benchmark names (on the command line, or in
the `--config` file) become their digits counterparts; `run` trains 2 experiences of
2 iterations; `sweep` lists its cells (`--dry-run`); whatever a command writes goes to a temporary
folder; placeholders (`runs/`, `MODEL.model.pt`, a `....` run id) name real files.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from clbench.config import load_toml

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DIGITS = {"split_mnist": "split_digits", "split_fmnist": "split_digits", "split_cifar10": "split_digits",
          "permuted_mnist": "permuted_digits"}
WRITES_OUT = ("run", "sweep", "plot")


def documented_commands(path: Path) -> list[tuple[str, str]]:
    """(`file:line`, command) for every `clbench` command in the fenced code blocks of `path`."""
    found, in_block, pending, start = [], False, "", 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("```"):
            in_block, pending = not in_block, ""
            continue
        if not in_block:
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text, pending = pending + line, ""
        for part in text.split(";"):
            if not re.match(r"\s*([A-Z_]+=\S*\s+)*clbench(\s|$)", part):
                continue
            tokens = shlex.split(part, comments=True)
            while tokens and re.fullmatch(r"[A-Z_]+=\S*", tokens[0]):  # leading VAR=value
                tokens.pop(0)
            if tokens[:1] == ["clbench"]:
                found.append((f"{path.relative_to(ROOT)}:{start}", shlex.join(tokens)))
    return found


def on_digits(tokens: list[str], scratch: Path) -> list[str]:
    """The command as the doc test runs it (see the module docstring)."""
    def digits(token: str) -> str:
        return token if "/" in token else ",".join(DIGITS.get(name, name) for name in token.split(","))

    command = tokens[1] if len(tokens) > 1 else ""
    if command in ("run", "sweep", "eval"):  # what trains or evaluates; report and plot read real records
        tokens = [digits(t) for t in tokens]
        if "--config" in tokens and not {"-b", "--benchmark"} & set(tokens):
            benchmark = load_toml(ROOT / tokens[tokens.index("--config") + 1]).get("benchmark")
            if benchmark in DIGITS:
                tokens += ["--benchmark", DIGITS[benchmark]]
    out = []
    skip = False
    for token in tokens[1:]:
        if skip:
            skip = False
            continue
        if command in WRITES_OUT and token in ("--out", "--iterations", "--epochs"):
            skip = True
            continue
        if token == "runs/" or token == "runs":
            token = "results/reference"
        elif token.endswith(".model.pt"):
            token = str(next(scratch.glob("results/**/*.model.pt")))
        out.append(token)
    if command in WRITES_OUT:
        out += ["--out", str(scratch / ("figures" if command == "plot" else "results"))]
    if command == "run":
        out += ["--iterations", "2", "--quiet"] + ([] if "--n-experiences" in out else ["--n-experiences", "2"])
    if command == "sweep":
        out.append("--dry-run")
    return out


COMMANDS = [item for document in DOCUMENTS for item in documented_commands(document)]


def test_the_docs_hold_commands_of_every_kind():
    kinds = {shlex.split(command)[1] for _, command in COMMANDS}
    assert {"run", "sweep", "report", "plot", "eval", "list"} <= kinds


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("docs")


@pytest.mark.parametrize("where, command", COMMANDS, ids=[where for where, _ in COMMANDS])
def test_documented_command_runs(where, command, scratch, cli, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = on_digits(shlex.split(command), scratch)
    result = cli(*args)
    assert result.code == 0, f"{where}: clbench {shlex.join(args)}\n{result.err[-1500:]}"
