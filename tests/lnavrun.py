"""Read rank files with the real lnav (Debian's package) and logconf's shipped format, headless.

``make test`` installs lnav (``make browser``); without it the tests fail and name the package.
Each call runs with ``HOME`` in a temporary directory, where ``lnav -i`` installs the format.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LEVELS = {"trace": "TRACE", "debug": "DEBUG", "info": "INFO", "warning": "WARNING", "error": "ERROR", "critical": "CRITICAL"}


def lnav() -> str:
    found = shutil.which("lnav")
    if not found:
        pytest.fail("lnav is not installed: install Debian's lnav (`make browser`, run by `make test`, or apt-get install lnav)")
    return found


def _env(home: Path) -> dict[str, str]:
    bin_dir = os.path.dirname(sys.executable)  # this interpreter's `logconf` script first on PATH
    path = bin_dir + os.pathsep + os.environ["PATH"]
    return {**os.environ, "HOME": str(home), "TZ": "UTC", "PATH": path, "PYTHONPATH": str(REPO)}


INSTALL = 'lnav -i "$(logconf path lnav)"'  # as the README and `logconf path --help` say


def install_format(home: Path) -> str:
    """Install the shipped format as the README says, in bash; return lnav's own line about it."""
    lnav()
    home.mkdir(parents=True, exist_ok=True)
    command = ["bash", "-c", INSTALL]
    done = subprocess.run(command, env=_env(home), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return (done.stdout + done.stderr).strip()


def query(home: Path, sql: str, files: list[Path]) -> list[dict]:
    """Run one SQL query over ``files`` in lnav, headless; return its rows."""
    command = [lnav(), "-n", "-c", ";" + sql, "-c", ":write-json-to -", *map(str, files)]
    done = subprocess.run(command, env=_env(home), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(done.stdout) if done.stdout.strip() else []


# Where each table's record time is read. Several processes append to one rank file, so a record can be older
# than the line above it. lnav moves such a record to the time of the one before it; log_actual_time keeps its
# own time for text lines, but for a JSON line lnav 0.11 returns garbage there, so the JSON record's `time`
# field is read instead (lnav's jget over the raw line).
TIMES = (
    ("logconf_log", ".log", "log_actual_time"),
    ("logconf_json", ".jsonl", "jget(log_raw_text, '/time')"),
)


def counts(home: Path, files: list[Path], root: Path) -> dict[str, dict]:
    """Per rank file (named as `logconf summary` names it under ``root``): records, levels, ranks, first and last
    time, as lnav's SQL view of the shipped format gives them."""
    rows = []
    for table, pattern, time in TIMES:
        chosen = [f for f in files if f.name.endswith(pattern)]
        if chosen:
            times = f"min({time}) AS first, max({time}) AS last"
            sql = f"SELECT log_path, log_level, rank, {times}, count(*) AS n FROM {table} GROUP BY 1, 2, 3"
            rows += query(home, sql, chosen)
    found: dict[str, dict] = {}
    for row in rows:
        name = Path(row["log_path"]).relative_to(root).as_posix()
        empty = {"records": 0, "levels": collections.Counter(), "ranks": set(), "first": None, "last": None}
        entry = found.setdefault(name, empty)
        entry["records"] += row["n"]
        entry["levels"][LEVELS[row["log_level"]]] += row["n"]
        entry["ranks"].add(row["rank"])
        first, last = (t if t.endswith("Z") else t.replace(" ", "T") + "Z" for t in (row["first"], row["last"]))
        entry["first"] = min(entry["first"] or first, first)
        entry["last"] = max(entry["last"] or last, last)
    return found


def assert_same_as_summary(found: dict[str, dict], summary: dict) -> None:
    """lnav's records, levels, ranks, first and last times per file equal `logconf summary --json`'s."""
    expected = {
        row["file"]: {
            "records": row["records"],
            "levels": collections.Counter(row["levels"]),
            "ranks": {row["rank"]},
            "first": row["first"],
            "last": row["last"],
        }
        for row in summary["files"]
    }
    assert found == expected, "\n".join(
        f"{name}: lnav {found.get(name)} | summary {expected.get(name)}"
        for name in sorted(set(found) | set(expected))
        if found.get(name) != expected.get(name)
    )
