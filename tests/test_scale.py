"""The tools on more rank files than the process may open (``ulimit -n``): same output, bounded descriptors.

A big run has thousands of rank files (engines, trainer workers, their rotated files). Each tool
runs as ``python -m logconf`` in a child whose open-file limit is set first, and its output is
compared with a run under this machine's limit. The fast tests use 400 files under a limit of 64;
the ``stress`` test, 10,000 files under 1024.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import following

REPO = Path(__file__).resolve().parents[1]
T0 = "2026-11-26T09:00:"


def _limited(nofile: int | None, *args: str) -> list[str]:
    """``python -m logconf ARGS``, with at most ``nofile`` open files (None: this machine's limit)."""
    limit = f"resource.setrlimit(resource.RLIMIT_NOFILE, ({nofile}, {nofile}))\n" if nofile else ""
    run = "sys.argv = ['logconf', *sys.argv[1:]]\nrunpy.run_module('logconf', run_name='__main__')\n"
    code = f"import resource, runpy, sys\n{limit}{run}"
    return [sys.executable, "-c", code, *args]


def _run(nofile: int | None, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_limited(nofile, *args), cwd=REPO, capture_output=True, text=True, timeout=900)


def write_run(directory: Path, sets: int, records: int = 4) -> int:
    """Write ``sets`` rank files, every fourth with two compressed and one plain rotated file; return the file count.

    Records of all files interleave in time, so merge takes from every stream in turn.
    """
    directory.mkdir(parents=True, exist_ok=True)
    files = 0
    for n in range(sets):
        subsystem, rank = ("vllm", n // 2) if n % 2 == 0 else ("skyrl", n // 2)
        live = f"{subsystem}_rank_{rank}.log"
        logger = "vllm.v1.engine.core" if subsystem == "vllm" else "skyrl_train.trainer"
        parts = [f"{live}.20261126T0900{k:02d}.000Z" + (".gz" if k < 2 else "") for k in range(3)] if n % 4 == 0 else []
        for k, name in enumerate([*parts, live]):
            head = f"INFO rank={rank} EngineCore[{100 + n}] {logger}: file {n} part {k}"
            body = "".join(f"{T0}{10 * k + i:02d}.{n % 1000:03d}Z {head} record {i}\n" for i in range(records))
            data = body.encode()
            (directory / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
            files += 1
    return files


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> tuple[Path, int]:
    directory = tmp_path_factory.mktemp("scale") / "logs"
    return directory, write_run(directory, 320)


@pytest.mark.parametrize(
    "args",
    [("merge",), ("merge", "--json", "--level", "INFO"), ("tail", "-n", "50"), ("summary", "--json"), ("summary",)],
    ids=["merge", "merge-json", "tail", "summary-json", "summary"],
)
def test_every_tool_gives_the_same_output_under_ulimit_64_as_without_it(many, args):
    directory, files = many
    assert files == 560
    low, high = _run(64, args[0], str(directory), *args[1:]), _run(None, args[0], str(directory), *args[1:])
    assert (low.returncode, low.stderr) == (0, "")
    assert low.stdout == high.stdout
    if args == ("merge",):
        assert len(low.stdout.splitlines()) == 560 * 4


def test_tail_f_follows_400_files_under_ulimit_64_and_prints_what_any_of_them_gains(many, tmp_path):
    directory, _ = many
    with following(_limited(64, "tail", "-f", str(directory), "-n", "3", "--interval", "0.05"), REPO) as (child, reader):
        first = reader.until(lambda seen: len(seen) >= 3, timeout=60)
        for n in (1, 199, 318):
            subsystem = "vllm" if n % 2 == 0 else "skyrl"
            logger = "vllm.x" if subsystem == "vllm" else "skyrl_train.x"
            with open(directory / f"{subsystem}_rank_{n // 2}.log", "a") as file:
                file.write(f"{T0}59.999Z INFO rank={n // 2} EngineCore[9] {logger}: late {n}\n")
            time.sleep(0.2)
        late = reader.until(lambda seen: len(seen) >= 3, timeout=60)
        assert child.poll() is None  # still following: no "Too many open files"
    assert len(first) == 3
    assert [line.rsplit(": ", 1)[1] for line in late] == ["late 1", "late 199", "late 318"]


@pytest.mark.stress
def test_every_tool_on_10000_files_under_ulimit_1024_gives_the_output_of_a_high_limit(tmp_path):
    """The issue's scale: 10,000 rank files, 2,500 of them with three rotated files (17,500 files), under ulimit -n 1024."""
    directory = tmp_path / "logs"
    assert write_run(directory, 10_000, records=2) == 17_500
    for args in (("merge",), ("tail", "-n", "100"), ("summary", "--json")):
        low, high = _run(1024, args[0], str(directory), *args[1:]), _run(None, args[0], str(directory), *args[1:])
        assert (low.returncode, low.stderr) == (0, ""), args
        assert low.stdout == high.stdout, args
    summary = json.loads(low.stdout)
    assert (summary["totals"]["files"], summary["totals"]["parts"], summary["ok"]) == (10_000, 17_500, True)
