"""A run's records on one time axis: a lane per rank file and process, its bins, marks, gaps and kept records.

A rotated rank file is one file here: its entries come from its files in turn, and a kept
record names the file it is in and its line there.

:class:`Timeline` takes each rank file's entries once, in file order (:func:`logconf.logfiles.iter_entries`):

- a *lane* per process of each file: its records counted in time bins that all lanes share,
  WARNING, ERROR and CRITICAL counted apart (the *marks*). The bins (:class:`Grid`) are
  ``width`` ms each; when the run spans more than MAX_BINS of them the width doubles and every
  lane merges its bins two by two, so memory stays bounded however long the run;
- *gaps*: stretches of ``quiet_s`` or longer in which a process wrote nothing (up to its next
  record, or the run's last one), kept when other lanes logged meanwhile;
- *kept records*: per lane and marked level the first FIRST_KEPT and the last LAST_KEPT, and
  each file's earliest ERROR or CRITICAL record, each with the CONTEXT entries before and after
  it in its file and its traceback whole (up to RECORD_LINES lines); a JSON record is shown as a
  text line, its traceback and other fields below it;
- the run's *first error*: the earliest ERROR or CRITICAL record (equal times: the file that
  comes first in the run's order, then the earlier line).
"""

from __future__ import annotations

import collections
import datetime
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from logconf.logfiles import RECORD, Entry, live_name, node_of, rank_name
from logconf.records import level_number

__all__ = [
    "CONTEXT",
    "FIRST_KEPT",
    "LAST_KEPT",
    "MARKS",
    "MAX_BINS",
    "RECORD_LINES",
    "Clock",
    "Grid",
    "Kept",
    "Lane",
    "Timeline",
    "cut",
    "earlier",
]

MAX_BINS = 800  # time bins across the run; their width doubles as the run grows
FIRST_KEPT = 20  # records kept per lane and marked level, from the start ...
LAST_KEPT = 5  # ... and from the end
CONTEXT = 3  # entries of the same file shown before and after a kept record
RECORD_LINES = 400  # lines kept of one record (a traceback); the rest is counted
CONTEXT_LINES = 4  # lines kept of an entry shown as context
LINE_CHARS = 2000  # characters kept of one line
GAPS_KEPT = 20  # longest gaps kept per lane
MARKS = ("warning", "error", "critical")
_MARK_SLOT = {mark: slot for slot, mark in enumerate(MARKS, 1)}  # a bin's counts: [records, warning, error, critical]
_SUBSYSTEMS = {"vllm": "vllm", "skyrl": "trainer"}
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


def cut(lines: list[str], keep: int) -> tuple[list[str], int]:
    """Return at most ``keep`` lines, each at most LINE_CHARS characters, and how many lines were left out."""
    kept = [line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + " [...]" for line in lines[:keep]]
    return kept, max(0, len(lines) - keep)


_OWN_FIELDS = ("time", "level", "rank", "process_name", "pid", "logger", "message", "exc_info", "stack_info")


def _lines_of(entry: Entry, fields: bool = True) -> list[str]:
    """An entry's lines as a text file holds them: a JSON record becomes a text line, its traceback
    lines after it, and (``fields``) its other fields (extras, Ray's context) on one last line."""
    record = entry.record
    if record is None or not live_name(entry.file).endswith(".jsonl"):
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
    return cut(_lines_of(entry, fields=False) if json_file else entry.lines, CONTEXT_LINES)[0]


class Clock:
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
    file: str  # the file it is in: its lane's, or one of its rotated files
    time: str
    ms: int | None
    level: str
    mark: str
    line: int
    lines: list[str]
    left_out: int  # lines of the record not kept
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
            "file": self.file,
            "time": self.time,
            "ms": self.ms,
            "level": self.level,
            "mark": self.mark,
            "line": self.line,
            "lines": self.lines,
            "cut": self.left_out,
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

    def as_dict(self, grid: Grid, gaps: list[tuple[int, int]]) -> dict[str, Any]:
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


class Grid:
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


def earlier(a: Kept, b: Kept) -> bool:
    """Whether ``a`` comes before ``b`` in the run: time (a record without one last), then file order, then line."""
    return (a.time or "~", a.order, a.line) < (b.time or "~", b.order, b.line)




class Timeline:
    """The lanes of a run's rank files, read one file at a time (see the module docstring)."""

    def __init__(self, quiet_s: float) -> None:
        self.quiet_s = quiet_s
        self.lanes: list[Lane] = []
        self.grid = Grid()
        self.marked: collections.Counter[str] = collections.Counter()
        self.earliest: list[Kept] = []  # each file's earliest error
        self.first_error: Kept | None = None
        self._totals: collections.Counter[int] | None = None  # records per bin, all lanes

    def read(self, entries: Iterable[Entry], label: str, order: int, tally: Callable[[Entry], None] | None = None) -> None:
        """Take one rank file's entries in file order (``label`` names the file, ``order`` is its place in
        the run); ``tally``, if given, sees each entry too."""
        parts = rank_name(label.rpartition("/")[2])
        rank = parts.rank if parts else None
        lanes: dict[tuple[str, int], Lane] = {}
        clock, grid = Clock(), self.grid
        before: collections.deque[Entry] = collections.deque(maxlen=CONTEXT)  # the entries just read
        waiting: list[Kept] = []  # kept records still taking context after them
        earliest: Kept | None = None
        quiet_ms = self.quiet_s * 1000
        json_file = label.endswith(".jsonl")
        for entry in entries:
            if tally is not None:
                tally(entry)
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
                lines, left_out = cut(_lines_of(entry) if json_file else entry.lines, RECORD_LINES)
                context = [line for previous in before for line in _context(previous, json_file)]
                kept = Kept(lane, order, entry.file, entry.time, ms, level, mark, entry.line_number, lines, left_out, context)
                lane.keep(kept)
                if mark != "warning" and (earliest is None or earlier(kept, earliest)):
                    earliest = kept
                waiting.append(kept)
            before.append(entry)
        if earliest is not None:
            self.earliest.append(earliest)
            if self.first_error is None or earlier(earliest, self.first_error):
                self.first_error = earliest

    def run_last(self) -> int | None:
        """The time of the run's last record, in Unix ms."""
        return max((lane.last_ms for lane in self.lanes if lane.last_ms is not None), default=None)

    def gaps(self, lane: Lane) -> list[tuple[int, int]]:
        """The lane's gaps during which other lanes logged, the longest GAPS_KEPT."""
        if self._totals is None:  # once all files are read
            self._totals = collections.Counter()
            for each in self.lanes:
                for index, counts in each.bins.items():
                    self._totals[index] += counts[0]
        quiet = lane.gap_list(int(self.quiet_s * 1000), self.run_last())
        return [gap for gap in quiet if self._others_logged(lane, gap)]

    def _others_logged(self, lane: Lane, gap: tuple[int, int]) -> bool:
        grid = self.grid
        first, last = grid.index(gap[0]) + 1, grid.index(gap[1]) - 1
        if first > last:  # within a bin or two: compare the bins at its ends
            first, last = first - 1, last + 1
        totals = self._totals or collections.Counter()
        return any(totals[i] - lane.bins.get(i, (0,))[0] > 0 for i in range(first, last + 1))

    def candidates(self) -> list[tuple[tuple[int, int, int], Kept]]:
        """Every kept record once, with its priority for the page (lower first): the first error, each file's
        earliest error, then by lane the first and last of each level in turn, the worse level first."""
        found: dict[int, tuple[tuple[int, int, int], Kept]] = {}

        def offer(priority: tuple[int, int, int], kept: Kept) -> None:
            known = found.get(id(kept))
            if known is None or priority < known[0]:
                found[id(kept)] = (priority, kept)

        if self.first_error is not None:
            offer((-2, 0, 0), self.first_error)
        for kept in self.earliest:
            offer((-1, 0, 0), kept)
        for number, lane in enumerate(self.lanes):
            for order, kept in lane.kept():
                offer((order, 2 - MARKS.index(kept.mark), number), kept)
        return sorted(found.values(), key=lambda pair: pair[0])
