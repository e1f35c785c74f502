"""The tools on more rank files than the process may open (``ulimit -n``): same output, bounded descriptors.

A big run has thousands of rank files (engines, trainer workers, their rotated files). Each tool
runs as ``python -m logconf`` in a child whose open-file limit is set first, and its output is
compared with a run under this machine's limit. The fast tests use 400 files under a limit of 64;
the ``stress`` test, 10,000 files under 1024.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import following

REPO = Path(__file__).resolve().parents[1]
T0 = "2026-11-26T09:00:"
DATA = re.compile(r'<script type="application/json" id="run-data">(.*?)</script>', re.DOTALL)


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

    Records of all files interleave in time, so merge takes from every stream in turn. In one set of every 97
    the second record of each file is an ERROR, so that ``errors`` and ``report`` have errors to find.
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
            levels = ["ERROR" if i == 1 and n % 97 == 5 else "INFO" for i in range(records)]
            body = "".join(f"{T0}{10 * k + i:02d}.{n % 1000:03d}Z {head.replace('INFO', levels[i], 1)} record {i}\n"
                           for i in range(records))
            data = body.encode()
            (directory / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
            files += 1
    return files


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> tuple[Path, int]:
    directory = tmp_path_factory.mktemp("scale") / "logs"
    return directory, write_run(directory, 320)


def _same_under(nofile: int, directory: Path, args: tuple[str, ...], code: int = 0) -> str:
    """Run a tool under ``ulimit -n nofile`` and under this machine's limit; return its output, the same in both."""
    low, high = _run(nofile, args[0], str(directory), *args[1:]), _run(None, args[0], str(directory), *args[1:])
    assert (low.returncode, low.stderr) == (code, ""), args
    assert (high.returncode, low.stdout) == (code, high.stdout), args
    return low.stdout


def _same_report_under(nofile: int, directory: Path, pages: Path) -> dict:
    """``report`` under ``ulimit -n nofile`` and this machine's limit: the run data the two pages embed (but the
    time each was made) are equal, and so are the pages otherwise; return that data."""
    found = []
    for limit, name in ((nofile, "low.html"), (None, "high.html")):
        done = _run(limit, "report", str(directory), "-o", str(pages / name))
        assert (done.returncode, done.stderr) == (0, ""), limit
        page = (pages / name).read_text()
        data = json.loads(DATA.search(page).group(1))  # type: ignore[union-attr]
        made = data.pop("made")
        found.append((data, page.replace(made, "MADE"), done.stdout.replace(name, "PAGE")))
    (low_data, low_page, low_out), (high_data, high_page, high_out) = found
    assert low_data == high_data
    assert (low_page, low_out) == (high_page, high_out)
    return low_data


@pytest.mark.parametrize(
    "args",
    [("merge",), ("merge", "--json", "--level", "INFO"), ("tail", "-n", "50"), ("summary", "--json"), ("summary",),
     ("errors",), ("errors", "--json")],
    ids=["merge", "merge-json", "tail", "summary-json", "summary", "errors", "errors-json"],
)
def test_every_tool_gives_the_same_output_under_ulimit_64_as_without_it(many, args):
    directory, files = many
    assert files == 560
    out = _same_under(64, directory, args, code=1 if args[0] == "errors" else 0)  # errors exits 1: the run has some
    if args == ("merge",):
        assert len(out.splitlines()) == 560 * 4
    if args == ("errors", "--json"):
        assert json.loads(out)["first"]["file"] == "skyrl_rank_2.log"  # set 5's, the earliest of the ERROR records


def test_report_gives_the_same_page_under_ulimit_64_as_without_it(many, tmp_path):
    directory, _ = many
    data = _same_report_under(64, directory, tmp_path)
    assert (data["summary"]["records"], data["summary"]["marks"]["error"]) == (560 * 4, 7)  # sets 5, 102, 199; 296's 4 files


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
    """The issue's scale: 10,000 rank files, 2,500 of them with three rotated files (17,500 files), under ulimit -n 1024:
    merge, tail -n, summary, errors and report give what they give under this machine's limit; tail -f follows."""
    directory = tmp_path / "logs"
    assert write_run(directory, 10_000, records=2) == 17_500
    for args in (("merge",), ("tail", "-n", "100"), ("errors",), ("errors", "--json"), ("summary", "--json")):
        out = _same_under(1024, directory, args, code=1 if args[0] == "errors" else 0)
        if args[0] == "errors":
            assert "skyrl_rank_2.log" in out.splitlines()[0] or json.loads(out)["first"]["file"] == "skyrl_rank_2.log", args
    summary = json.loads(out)
    assert (summary["totals"]["files"], summary["totals"]["parts"], summary["ok"]) == (10_000, 17_500, True)
    pages = tmp_path / "pages"
    pages.mkdir()
    data = _same_report_under(1024, directory, pages)
    errors = 104 + 26 * 3  # sets with ERROR records, 26 of them with 3 rotated files
    assert (data["summary"]["records"], data["summary"]["marks"]["error"]) == (17_500 * 2, errors)
    with following(_limited(1024, "tail", "-f", str(directory), "-n", "3", "--interval", "0.5"), REPO) as (child, reader):
        assert len(reader.until(lambda seen: len(seen) >= 3, timeout=300)) == 3
        for n in (1, 4_999, 9_998):
            subsystem, logger = ("vllm", "vllm.x") if n % 2 == 0 else ("skyrl", "skyrl_train.x")
            with open(directory / f"{subsystem}_rank_{n // 2}.log", "a") as file:
                file.write(f"{T0}59.999Z INFO rank={n // 2} EngineCore[9] {logger}: late {n}\n")
            time.sleep(0.5)
        late = reader.until(lambda seen: len(seen) >= 3, timeout=300)
        assert child.poll() is None  # still following: no "Too many open files"
    assert sorted(line.rsplit(": ", 1)[1] for line in late) == ["late 1", "late 4999", "late 9998"]  # one poll may see two
