"""``logconf report DIR -o run.html``: a whole run on one self-contained page, every rank side by side.

Each rank file is read once, a record at a time, through :mod:`logconf.logfiles` (a run's
directory or the one ``logconf gather`` fills), and what the page shows is gathered on the way:

- one *lane* per rank file and process (``node/file`` in a gathered directory) on one time axis:
  its records counted in time bins shared by all lanes, with WARNING, ERROR and CRITICAL
  counted apart (the marks);
- the run's *first error*: the earliest ERROR or CRITICAL record of the rank files (equal times:
  the file that comes first, then the earlier line);
- *gaps*: a process that wrote nothing for ``quiet_s`` or longer (up to its next record, or the
  run's last one) while other lanes kept writing;
- *kept records*, each with the entries around it in its file and its traceback whole: per lane
  and marked level the first FIRST_KEPT and last LAST_KEPT, and each file's earliest error;
- the ``.stdio.log`` copies, which have no time stamps: their lines per process, and their raw
  errors (a traceback or fatal line that no logconf record wrote), apart from the axis;
- the header: :mod:`logconf.summary`'s counts, and what the page leaves out.

Memory holds MAX_BINS bins and the kept records of each lane, never a whole file; the page holds
the bins and at most PAGE_TEXT_BYTES of kept text, whatever the run's size. The page's script,
style and data are inline (no network): it opens from a laptop after ``scp``.
"""

from __future__ import annotations

import collections
import datetime
import html
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from logconf.logfiles import (
    RECORD,
    Entry,
    LineReader,
    TooLong,
    file_label,
    iter_entries,
    node_of,
    rank_files,
    rank_name,
    stdio_name,
    stdio_names,
)
from logconf.records import TEXT_LINE, level_number
from logconf.summary import PROBLEMS, FileSummary

__all__ = ["SCHEMA", "Report", "build", "render", "write_report"]

SCHEMA = "logconf.report/1"
MAX_BINS = 800  # time bins across the run; their width doubles as the run grows
FIRST_KEPT = 20  # records kept per lane and marked level, from the start ...
LAST_KEPT = 5  # ... and from the end
CONTEXT = 3  # entries of the same file shown before and after a kept record
RECORD_LINES = 400  # lines kept of one record (a traceback); the rest is counted
CONTEXT_LINES = 4  # lines kept of an entry shown as context
LINE_CHARS = 2000  # characters kept of one line
PAGE_TEXT_BYTES = 3 << 20  # kept records' text in the page, at most
STDIO_KEPT = 20  # raw errors kept per .stdio.log copy
GAPS_KEPT = 20  # longest gaps kept per lane
QUIET_S = 60.0
MARKS = ("warning", "error", "critical")
_MARK_SLOT = {mark: slot for slot, mark in enumerate(MARKS, 1)}  # a bin's counts: [records, warning, error, critical]
_SUBSYSTEMS = {"vllm": "vllm", "skyrl": "trainer"}
_PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "report_page.html")
_DATA_SLOT = "/*LOGCONF-REPORT-DATA*/"
_STDIO_LINE = re.compile(r"(?P<process>.+?)\[(?P<pid>\d+)\] (?P<text>.*)")
_RAW_START = re.compile(r"Traceback \(most recent call last\):|terminate called |Fatal Python error: |Segmentation fault")
_RAW_LINE = re.compile(r"[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit): ")


_MARK_OF = {"WARNING": "warning", "ERROR": "error", "CRITICAL": "critical", "INFO": None, "DEBUG": None}


def _pid(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


def _mark(level: str) -> str | None:
    number = level_number(level)
    if number is None or number < 30:
        return None
    return "critical" if number >= 50 else "error" if number >= 40 else "warning"


def _cut(lines: list[str], keep: int) -> tuple[list[str], int]:
    """Return at most ``keep`` lines, each at most LINE_CHARS characters, and how many lines were left out."""
    kept = [line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + " [...]" for line in lines[:keep]]
    return kept, max(0, len(lines) - keep)


_OWN_FIELDS = ("time", "level", "rank", "process_name", "pid", "logger", "message", "exc_info", "stack_info")


def _lines_of(entry: Entry, fields: bool = True) -> list[str]:
    """An entry's lines as a text file holds them: a JSON record becomes a text line, its traceback
    lines after it, and (``fields``) its other fields (extras, Ray's context) on one last line."""
    record = entry.record
    if record is None or not entry.file.endswith(".jsonl"):
        return entry.lines
    head = (
        f"{record.get('time')} {record.get('level')} rank={record.get('rank')} "
        f"{record.get('process_name')}[{record.get('pid')}] {record.get('logger')}: {record.get('message')}"
    )
    lines = head.split("\n")
    for key in ("exc_info", "stack_info"):
        if record.get(key):
            lines += str(record[key]).split("\n")
    extra = {k: v for k, v in record.items() if k not in _OWN_FIELDS} if fields else None
    if extra:
        lines.append("  fields: " + json.dumps(extra, ensure_ascii=False, default=str))
    return lines


def _context(entry: Entry, json_file: bool) -> list[str]:
    """An entry's lines as context: at most CONTEXT_LINES of them, a JSON record as a text line."""
    return _cut(_lines_of(entry, fields=False) if json_file else entry.lines, CONTEXT_LINES)[0]


class _Clock:
    """Turn canonical record times into Unix milliseconds, parsing each second once."""

    def __init__(self) -> None:
        self.second = ""
        self.base = 0

    def ms(self, stamp: str) -> int | None:
        if len(stamp) != 24:
            return None
        head = stamp[:19]
        if head != self.second:
            moment = datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.timezone.utc)
            self.second, self.base = head, int(moment.timestamp()) * 1000
        return self.base + int(stamp[20:23])


@dataclass(eq=False)
class Kept:
    """A record kept in the page, with the entries around it in its file."""

    lane: Lane
    order: int  # the file's place in the run's order
    time: str
    ms: int | None
    level: str
    mark: str
    line: int
    lines: list[str]
    cut: int  # lines of the record left out
    before: list[str]
    after: list[str] = field(default_factory=list)
    after_left: int = CONTEXT  # entries still to add to ``after``
    ident: str = ""

    @property
    def size(self) -> int:
        return sum(len(line) + 1 for part in (self.lines, self.before, self.after) for line in part)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.ident,
            "lane": self.lane.ident,
            "file": self.lane.file,
            "time": self.time,
            "ms": self.ms,
            "level": self.level,
            "mark": self.mark,
            "line": self.line,
            "lines": self.lines,
            "cut": self.cut,
            "before": self.before,
            "after": self.after,
        }


@dataclass(eq=False)
class Lane:
    """One process's records in one rank file: bins, marks, gaps and kept records."""

    ident: str
    file: str
    process: str
    pid: int
    rank: str | None
    records: int = 0
    levels: collections.Counter[str] = field(default_factory=collections.Counter)
    bins: dict[int, list[int]] = field(default_factory=dict)  # index -> [records, warning, error, critical]
    first_ms: int | None = None
    last_ms: int | None = None
    gaps: list[tuple[int, int]] = field(default_factory=list)
    firsts: dict[str, list[Kept]] = field(default_factory=lambda: {m: [] for m in MARKS})
    lasts: dict[str, collections.deque[Kept]] = field(
        default_factory=lambda: {m: collections.deque(maxlen=LAST_KEPT) for m in MARKS}
    )

    @property
    def node(self) -> str | None:
        return node_of(self.file)

    @property
    def subsystem(self) -> str:
        parts = rank_name(self.file.rpartition("/")[2])
        return _SUBSYSTEMS.get(parts.subsystem, parts.subsystem) if parts else "other"

    def widen(self) -> None:
        """Merge bins two by two (the grid's width doubled)."""
        merged: dict[int, list[int]] = {}
        for index, counts in self.bins.items():
            into = merged.get(index // 2)
            if into is None:
                merged[index // 2] = counts
            else:
                for k in range(4):
                    into[k] += counts[k]
        self.bins = merged

    def keep(self, kept: Kept) -> None:
        """Keep a marked record if it is among the first of its level, else among the newest few."""
        firsts = self.firsts[kept.mark]
        if len(firsts) < FIRST_KEPT:
            firsts.append(kept)
        else:
            self.lasts[kept.mark].append(kept)  # pushes out the oldest of the last few

    def kept(self) -> Iterator[tuple[int, Kept]]:
        """Every kept record with its place in the page's order of priority (lower first)."""
        for mark in MARKS:
            for n, kept in enumerate(self.firsts[mark]):
                yield 2 * n, kept
            for n, kept in enumerate(reversed(self.lasts[mark])):
                yield 2 * n + 1, kept

    def gap_list(self, quiet_ms: int, run_last: int | None) -> list[tuple[int, int]]:
        gaps = list(self.gaps)
        if self.last_ms is not None and run_last is not None and run_last - self.last_ms >= quiet_ms:
            gaps.append((self.last_ms, run_last))  # quiet to the end: the likeliest hang
        return sorted(gaps, key=lambda g: g[0] - g[1])[:GAPS_KEPT]

    def as_dict(self, grid: _Grid, gaps: list[tuple[int, int]]) -> dict[str, Any]:
        return {
            "id": self.ident,
            "file": self.file,
            "node": self.node,
            "subsystem": self.subsystem,
            "rank": self.rank,
            "process": self.process,
            "pid": self.pid,
            "records": self.records,
            "levels": dict(sorted(self.levels.items())),
            "marks": {mark: sum(c[k] for c in self.bins.values()) for k, mark in enumerate(MARKS, 1)},
            "first": _stamp(self.first_ms),
            "last": _stamp(self.last_ms),
            "bins": [[index - grid.lo, *counts] for index, counts in sorted(self.bins.items())],
            "gaps": [[a, b] for a, b in sorted(gaps)],
        }


def _stamp(ms: int | None) -> str | None:
    if ms is None:
        return None
    moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class _Grid:
    """Time bins shared by every lane: ``width`` ms each from ``origin``, at most ``limit`` of them.

    When the records span more, the width doubles and every lane merges its bins two by two, so
    memory stays bounded however long the run.
    """

    def __init__(self, limit: int = MAX_BINS) -> None:
        self.limit = limit
        self.origin: int | None = None
        self.width = 1
        self.lo = 0
        self.hi = 0
        self.lanes: list[Lane] = []

    def index(self, ms: int) -> int:
        if self.origin is None:
            self.origin = ms
        index = (ms - self.origin) // self.width
        if index < self.lo or index > self.hi:
            self.lo, self.hi = min(self.lo, index), max(self.hi, index)
            while self.hi - self.lo >= self.limit:
                self.width *= 2
                self.lo, self.hi = self.lo // 2, self.hi // 2
                for lane in self.lanes:
                    lane.widen()
            index = (ms - self.origin) // self.width
        return index

    def start(self, index: int) -> int:
        return (self.origin or 0) + index * self.width


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


def _read_stdio(path: str, copy: StdioCopy) -> None:
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
        error["lines"], error["cut"] = _cut(error["lines"], RECORD_LINES)
        error["before"], _ = _cut(error["before"], CONTEXT)
        error["after"], _ = _cut(error["after"], CONTEXT)
        del error["until_pid"], error["after_left"]


@dataclass
class Report:
    """What the page shows, gathered from one reading of the run (see the module docstring)."""

    directory: str
    quiet_s: float = QUIET_S
    summaries: list[FileSummary] = field(default_factory=list)
    lanes: list[Lane] = field(default_factory=list)
    stdio: list[StdioCopy] = field(default_factory=list)
    first_error: Kept | None = None
    marked: collections.Counter[str] = field(default_factory=collections.Counter)
    grid: _Grid = field(default_factory=_Grid)
    earliest: list[Kept] = field(default_factory=list)  # each file's earliest error

    def read_file(self, path: str, order: int) -> None:
        """Read one rank file into the summary, its lanes and its kept records."""
        label = file_label(path, self.directory)
        summary = FileSummary(label, bytes=os.path.getsize(path))
        self.summaries.append(summary)
        parts = rank_name(os.path.basename(path))
        rank = parts.rank if parts else None
        lanes: dict[tuple[str, int], Lane] = {}
        clock, grid = _Clock(), self.grid
        before: collections.deque[Entry] = collections.deque(maxlen=CONTEXT)  # the entries just read
        waiting: list[Kept] = []  # kept records still taking context after them
        earliest: Kept | None = None
        quiet_ms = self.quiet_s * 1000
        json_file = label.endswith(".jsonl")
        for entry in iter_entries(path, order, label):
            summary.add(entry)
            if waiting:
                context = _context(entry, json_file)
                for kept in waiting:
                    kept.after.extend(context)
                    kept.after_left -= 1
                waiting = [k for k in waiting if k.after_left > 0]
            record = entry.record
            if entry.kind != RECORD or record is None:
                before.append(entry)
                continue
            key = (str(record.get("process_name")), _pid(record.get("pid")))
            lane = lanes.get(key)
            if lane is None:
                lane = lanes[key] = Lane(f"lane-{len(self.lanes)}", label, key[0], key[1], rank)
                self.lanes.append(lane)
                grid.lanes.append(lane)
            level = str(record["level"])
            lane.records += 1
            lane.levels[level] += 1
            mark = _MARK_OF[level] if level in _MARK_OF else _mark(level)
            ms = clock.ms(entry.time)
            if ms is not None:
                index = grid.index(ms)
                counts = lane.bins.get(index)
                if counts is None:
                    counts = lane.bins[index] = [0, 0, 0, 0]
                counts[0] += 1
                if mark is not None:
                    counts[_MARK_SLOT[mark]] += 1
                last = lane.last_ms
                if last is None:
                    lane.first_ms = lane.last_ms = ms
                elif ms > last:
                    if ms - last >= quiet_ms:
                        lane.gaps.append((last, ms))
                        if len(lane.gaps) > 4 * GAPS_KEPT:
                            lane.gaps = sorted(lane.gaps, key=lambda g: g[0] - g[1])[:GAPS_KEPT]
                    lane.last_ms = ms
                elif lane.first_ms is not None and ms < lane.first_ms:
                    lane.first_ms = ms  # a record written late (held for a rank)
            if mark is not None:
                self.marked[mark] += 1
                lines, cut = _cut(_lines_of(entry) if json_file else entry.lines, RECORD_LINES)
                context = [line for earlier in before for line in _context(earlier, json_file)]
                kept = Kept(lane, order, entry.time, ms, level, mark, entry.line_number, lines, cut, context)
                lane.keep(kept)
                if mark != "warning" and (earliest is None or _earlier(kept, earliest)):
                    earliest = kept
                waiting.append(kept)
            before.append(entry)
        if earliest is not None:
            self.earliest.append(earliest)
            if self.first_error is None or _earlier(earliest, self.first_error):
                self.first_error = earliest

    def read_stdio(self, path: str) -> None:
        copy = StdioCopy(f"stdio-{len(self.stdio)}", file_label(path, self.directory))
        _read_stdio(path, copy)
        self.stdio.append(copy)

    def page_data(self) -> dict[str, Any]:
        """The page's data: the summary, the grid, lanes, kept records and what was left out."""
        grid = self.grid
        run_last = max((lane.last_ms for lane in self.lanes if lane.last_ms is not None), default=None)
        totals_by_bin: collections.Counter[int] = collections.Counter()
        for lane in self.lanes:
            for index, counts in lane.bins.items():
                totals_by_bin[index] += counts[0]
        lanes = []
        for lane in self.lanes:
            quiet = lane.gap_list(int(self.quiet_s * 1000), run_last)
            gaps = [gap for gap in quiet if self._others_logged(lane, gap, totals_by_bin)]
            lanes.append(lane.as_dict(grid, gaps))
        kept, left_out = self._choose_kept()
        totals = {key: sum(getattr(s, key) for s in self.summaries) for key in ("lines", "bytes", "records", *PROBLEMS)}
        first = min((s.first for s in self.summaries if s.first), default="")
        last = max((s.last for s in self.summaries if s.last), default="")
        levels: collections.Counter[str] = collections.Counter()
        for s in self.summaries:
            levels.update(s.levels)
        return {
            "schema": SCHEMA,
            "directory": os.path.abspath(self.directory),
            "made": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "summary": {
                "files": len(self.summaries),
                **totals,
                "first": first or None,
                "last": last or None,
                "span_s": FileSummary("x", first=first, last=last).span_s,
                "levels": dict(sorted(levels.items())),
                "marks": {mark: self.marked[mark] for mark in MARKS},
                "processes": len(self.lanes),
                "nodes": sorted({s.node for s in self.summaries if s.node is not None}),
                "stdio_files": len(self.stdio),
            },
            "grid": {"origin": grid.origin, "width": grid.width, "bins": grid.hi - grid.lo + 1, "start": grid.start(grid.lo)},
            "quiet_s": self.quiet_s,
            "lanes": lanes,
            "stdio": [copy.as_dict() for copy in self.stdio],
            "kept": [k.as_dict() for k in kept],
            "first_error": self.first_error.ident if self.first_error is not None and self.first_error.ident else None,
            "left_out": left_out,
        }

    def _others_logged(self, lane: Lane, gap: tuple[int, int], totals: collections.Counter[int]) -> bool:
        grid = self.grid
        first, last = grid.index(gap[0]) + 1, grid.index(gap[1]) - 1
        if first > last:  # within a bin or two: compare the bins at its ends
            first, last = first - 1, last + 1
        return any(totals[i] - lane.bins.get(i, (0,))[0] > 0 for i in range(first, last + 1))

    def _choose_kept(self) -> tuple[list[Kept], list[str]]:
        """Pick the kept records the page holds, the most telling first, within PAGE_TEXT_BYTES."""
        candidates: dict[int, tuple[tuple[int, int, int], Kept]] = {}

        def offer(priority: tuple[int, int, int], kept: Kept) -> None:
            known = candidates.get(id(kept))
            if known is None or priority < known[0]:
                candidates[id(kept)] = (priority, kept)

        if self.first_error is not None:
            offer((-2, 0, 0), self.first_error)
        for kept in self.earliest:
            offer((-1, 0, 0), kept)
        for number, lane in enumerate(self.lanes):
            for order, kept in lane.kept():
                offer((order, 2 - MARKS.index(kept.mark), number), kept)
        chosen: list[Kept] = []
        used = 0
        for _, kept in sorted(candidates.values(), key=lambda pair: pair[0]):
            if used + kept.size > PAGE_TEXT_BYTES and chosen:
                break
            chosen.append(kept)
            used += kept.size
        chosen.sort(key=lambda k: (k.ms if k.ms is not None else -1, k.lane.ident, k.line))
        for number, kept in enumerate(chosen):
            kept.ident = f"r{number}"
        notes = []
        marked, dropped = sum(self.marked.values()), len(candidates) > len(chosen)
        if marked:
            notes.append(
                f"{len(chosen)} of the {marked:,} WARNING, ERROR and CRITICAL records are kept in this page, each with "
                f"the {CONTEXT} entries before and after it in its file: per process and level the first {FIRST_KEPT} "
                f"and the last {LAST_KEPT}, and each file's earliest error"
                + (f"; {len(candidates) - len(chosen)} more were left out to keep the page small" if dropped else "")
                + "."
            )
        notes.append(
            "Records below WARNING are counted in the time bins only. `logconf merge` prints any stretch whole "
            "(a click on a bin shows the command)."
        )
        cut = sum(1 for k in chosen if k.cut)
        if cut:
            notes.append(f"{cut} kept records were longer than {RECORD_LINES} lines: their first {RECORD_LINES} are shown.")
        kept_raw, raw = sum(len(c.kept) for c in self.stdio), sum(c.errors for c in self.stdio)
        if raw > kept_raw:
            notes.append(f"{kept_raw} of the {raw} raw errors in the .stdio.log copies are kept, the first {STDIO_KEPT} in each.")
        return chosen, notes


def _earlier(a: Kept, b: Kept) -> bool:
    """Whether ``a`` comes before ``b`` in the run: time (a record without one last), then file order, then line."""
    return (a.time or "~", a.order, a.line) < (b.time or "~", b.order, b.line)


def build(directory: str, *, quiet_s: float = QUIET_S) -> Report:
    """Read every rank file and ``.stdio.log`` copy of ``directory`` (or one rank file) into a Report."""
    report = Report(directory, quiet_s=quiet_s)
    for order, path in enumerate(rank_files(directory)):
        report.read_file(path, order)
    if os.path.isdir(directory):
        for name in stdio_names(directory):
            report.read_stdio(os.path.join(directory, name))
    return report


def render(data: dict[str, Any]) -> str:
    """Return the page: the HTML template with ``data`` inline (``</`` escaped, so no text can end the script)."""
    with open(_PAGE, encoding="utf-8") as file:
        page = file.read()
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/").replace("<!--", "<\\!--")
    title = html.escape(f"logconf report: {data['directory']}")
    return page.replace("<title>logconf report</title>", f"<title>{title}</title>", 1).replace(_DATA_SLOT, text, 1)


def write_report(directory: str, out: str, *, quiet_s: float = QUIET_S) -> dict[str, Any]:
    """Build the page for ``directory`` and write it to ``out``; return its data."""
    data = build(directory, quiet_s=quiet_s).page_data()
    page = render(data)
    tmp = f"{out}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as file:
        file.write(page)
    os.replace(tmp, out)
    return data
