"""What every report page must show of a run, checked in headless Chromium against `logconf summary --json`."""

from __future__ import annotations

import collections
from pathlib import Path

from headless import Node, dom

MARKS = {"warning": ("WARNING",), "error": ("ERROR",), "critical": ("CRITICAL",)}


def check_page(page: Path, summary: dict) -> Node:
    """Load ``page``: one lane per rank file and process, each file's marks and records, and the header's
    counts equal summary's; return the DOM."""
    shown = dom(page)
    assert shown.select("body")[0].attrs["data-ready"] == "1"
    lanes = shown.select(cls="row lane")
    drawn = [(n.attrs["data-file"], f"{n.attrs['data-process']}:{n.attrs['data-pid']}") for n in lanes]
    # Files in summary's order; within a file, lanes in the order their processes first logged (summary sorts them).
    assert [file for file, _ in drawn] == [row["file"] for row in summary["files"] for _ in row["processes"]], drawn
    assert sorted(drawn) == sorted((row["file"], process) for row in summary["files"] for process in row["processes"]), drawn
    per_file: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for lane in lanes:
        counts = per_file[lane.attrs["data-file"]]
        counts["records"] += sum(int(n.attrs["data-count"]) for n in lane.select(cls="bin"))
        for mark in MARKS:
            counts[mark] += sum(int(n.attrs["data-count"]) for n in lane.select(cls=f"mark {mark}"))
    for row in summary["files"]:
        expected = {mark: sum(row["levels"].get(level, 0) for level in levels) for mark, levels in MARKS.items()}
        counted = dict(per_file[row["file"]])
        assert counted == {"records": row["records"], **expected}, (row["file"], counted, row["levels"])
    totals = summary["totals"]
    assert shown.find("stat-records").text() == f"records {totals['records']:,}"
    assert shown.find("stat-files").text() == f"files {totals['files']:,}"
    for key in ("foreign", "torn", "unparsable"):
        assert shown.find(f"stat-{key}").text() == f"{key} {totals[key]}"
    return shown
