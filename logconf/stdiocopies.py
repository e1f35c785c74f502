"""A ``.stdio.log`` copy read for the report: its lines per process and its raw errors.

The copies (``LOGCONF_CAPTURE_STDIO=1``, :mod:`logconf.tee`) hold each process's raw output,
each line prefixed ``name[pid] ``, with no time stamps. A *raw error* is a traceback or a fatal
line (``terminate called ...``, ``Fatal Python error: ...``, ``Segmentation fault``, an
exception line) that no logconf record wrote: a traceback right after a logconf console line of
the same process belongs to that record (a rank file holds it already) and is passed over.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from logconf.logfiles import LineReader, TooLong, node_of, stdio_name
from logconf.records import TEXT_LINE
from logconf.timeline import CONTEXT, RECORD_LINES, cut

__all__ = ["STDIO_KEPT", "StdioCopy", "read_stdio"]

STDIO_KEPT = 20  # raw errors kept per copy
_STDIO_LINE = re.compile(r"(?P<process>.+?)\[(?P<pid>\d+)\] (?P<text>.*)")
_RAW_START = re.compile(r"Traceback \(most recent call last\):|terminate called |Fatal Python error: |Segmentation fault")
_RAW_LINE = re.compile(r"[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit): ")


@dataclass
class StdioCopy:
    """A ``.stdio.log`` copy: lines per process and the raw errors in it (no times: off the axis)."""

    ident: str
    file: str
    lines: int = 0
    processes: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: int = 0
    kept: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        parts = stdio_name(self.file.rpartition("/")[2])
        return {
            "id": self.ident,
            "file": self.file,
            "node": node_of(self.file),
            "subsystem": "stdio",
            "rank": parts.rank if parts else None,
            "lines": self.lines,
            "processes": dict(sorted(self.processes.items())),
            "errors": self.errors,
            "kept": self.kept,
        }


def read_stdio(path: str, copy: StdioCopy) -> None:
    """Count a copy's lines per process and keep its first raw errors with the lines around them.

    A traceback right after a logconf console line of the same process belongs to that record
    (it is in a rank file already) and is skipped; a raw one runs over its indented lines to the
    exception line.
    """
    reader = LineReader()
    before: collections.deque[str] = collections.deque(maxlen=CONTEXT)
    open_errors: list[dict[str, Any]] = []  # kept errors still taking lines
    after_record: dict[str, bool] = {}  # pid -> its last line was a logconf console record
    inside: dict[str, str] = {}  # pid -> "raw" or "record": a traceback being read
    with open(path, "rb") as file:
        lines: Iterator[str | TooLong] = reader.read(file)
        for item in lines:
            line = item if isinstance(item, str) else item.head
            copy.lines += 1
            match = _STDIO_LINE.match(line)
            pid, text = (match["pid"], match["text"]) if match else ("", line)
            if match:
                copy.processes[f"{match['process']}:{pid}"] += 1
            for error in list(open_errors):
                if error["until_pid"] == pid and inside.get(pid) == "raw":
                    error["lines"].append(line)
                elif error["after_left"] > 0:
                    error["after"].append(line)
                    error["after_left"] -= 1
                if error["after_left"] <= 0 and inside.get(error["until_pid"]) != "raw":
                    open_errors.remove(error)
            state = inside.get(pid)
            if state is not None:
                if text[:1].isspace() or text.startswith("Traceback"):
                    before.append(line)
                    continue
                del inside[pid]  # the exception line ends the traceback
                if _RAW_LINE.match(text) or state == "record":
                    before.append(line)
                    continue
            is_record = TEXT_LINE.fullmatch(text) is not None
            raw = not is_record and (_RAW_START.match(text) or _RAW_LINE.match(text))
            if raw and text.startswith("Traceback") and after_record.get(pid):
                inside[pid], raw = "record", None
            elif raw:
                copy.errors += 1
                if text.startswith("Traceback"):
                    inside[pid] = "raw"
                if len(copy.kept) < STDIO_KEPT:
                    error = {"line": copy.lines, "lines": [line], "before": list(before), "after": [], "after_left": CONTEXT}
                    error["until_pid"] = pid
                    copy.kept.append(error)
                    open_errors.append(error)
            after_record[pid] = is_record
            before.append(line)
    last = reader.finish()
    if last is not None:
        copy.lines += 1
    for error in copy.kept:
        error["lines"], error["cut"] = cut(error["lines"], RECORD_LINES)
        error["before"], _ = cut(error["before"], CONTEXT)
        error["after"], _ = cut(error["after"], CONTEXT)
        del error["until_pid"], error["after_left"]


