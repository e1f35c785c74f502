"""Merge a run's rank files into one timeline, streaming, with a record's traceback kept whole.

Memory is bounded by the number of files times the largest record: ``heapq.merge`` holds one
entry per file (per run of a file out of order, each run with a window of logconf.runs.WINDOW),
and each file is read a line at a time, a line being at most LINE_LIMIT bytes
(a longer one is printed as TOO_LONG with its first bytes). Order is the record's UTC time, then
the file's natural name order (rank 2 before rank 10), then the record's position in its file,
so records with equal timestamps come out in the same order on every run.

A file is not always in time order (records held for a late rank are written after newer ones):
:mod:`logconf.runs` reads such a file as a few ordered runs, merged like files of their own, so
the timeline never steps back; a file in order is read as one stream, as before.
"""

from __future__ import annotations

import functools
import heapq
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from operator import attrgetter

from logconf.logfiles import LINE_LIMIT, RECORD, TOO_LONG, Entry, LogDirError, file_label, live_name, rank_files, time_key
from logconf.records import level_number
from logconf.runs import find_runs, run_entries

__all__ = ["EntryFilter", "merge_entries", "merge_files", "render", "render_json", "too_long_note"]

_KEY = attrgetter("time", "order", "position")


def merge_entries(paths: Iterable[str], root: str | None = None) -> Iterator[Entry]:
    """Yield the entries of every file in ``paths`` as one timeline (time, file order, position).

    Each entry's file is its path under ``root`` (``node/name`` in a gathered directory), or its base name.
    """
    streams = [
        run_entries(path, order, run, file_label(path, root)) for order, path in enumerate(paths) for run in find_runs(path)
    ]
    return heapq.merge(*streams, key=_KEY)


def merge_files(directory: str) -> Iterator[Entry]:
    """Yield the entries of every rank file in ``directory`` (or the one file) as one timeline."""
    return merge_entries(rank_files(directory), directory)


def _level_number(name: str) -> int:
    number = level_number(name)
    if number is None:
        raise LogDirError(
            f"--level: unknown level {name!r}; use DEBUG, INFO, WARNING, ERROR, CRITICAL, TRACE, SUCCESS or a number"
        )
    return number


def parse_time(option: str, value: str, *, round_up: bool = False) -> str:
    """Return ``value`` (ISO 8601; a time with no offset is UTC) as a canonical key, or raise LogDirError.

    Keys are milliseconds, as records' times are: a finer bound is cut down to its millisecond,
    or raised to the next one with ``round_up`` (``--since``), so both bounds stay inclusive.
    """
    key = time_key(value, round_up=round_up)
    if not key:
        raise LogDirError(f"{option}: not an ISO 8601 time: {value!r}; use e.g. 2026-11-26T09:10:00Z")
    return key


@dataclass
class EntryFilter:
    """Keep entries at or above ``level``, under a ``loggers`` prefix, in [since, until], matching ``grep``.

    Both time bounds are inclusive: a record at exactly ``since`` or ``until`` is kept.

    Levels compare by number, so Loguru's ``SUCCESS`` (25) passes ``INFO`` and its ``TRACE`` (5)
    does not; a record whose level name no one can rank (a name registered only in the process
    that wrote it) passes, so a level filter never hides what it cannot judge. A line that is
    not a record (unparsable or torn) has no level or logger: it passes only when neither
    ``level`` nor ``loggers`` is set.
    """

    level: str | None = None
    loggers: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None
    grep: str | None = None

    def __post_init__(self) -> None:
        self._level = _level_number(self.level) if self.level else None
        self._passes: dict[str, bool] = {}  # level name -> at or above self._level
        self._since = parse_time("--since", self.since, round_up=True) if self.since else None
        self._until = parse_time("--until", self.until) if self.until else None
        try:
            self._grep = re.compile(self.grep) if self.grep else None
        except re.error as exc:
            raise LogDirError(f"--grep: not a regular expression: {self.grep!r} ({exc})") from None

    @property
    def active(self) -> bool:
        return any((self._level, self.loggers, self._since, self._until, self._grep))

    def __call__(self, entry: Entry) -> bool:
        record = entry.record
        if self._level is not None or self.loggers:
            if entry.kind != RECORD or record is None:
                return False
            if self._level is not None and not self._level_passes(str(record["level"])):
                return False
            name = str(record["logger"])
            if self.loggers and not any(name == p or name.startswith(p + ".") for p in self.loggers):
                return False
        if self._since is not None and entry.time < self._since:
            return False
        if self._until is not None and entry.time > self._until:
            return False
        return self._grep is None or any(self._grep.search(line) for line in entry.lines)

    def _level_passes(self, name: str) -> bool:
        passes = self._passes.get(name)
        if passes is None:
            number = level_number(name)
            passes = self._passes[name] = number is None or number >= (self._level or 0)
        return passes


def render(entry: Entry) -> str:
    """Return the entry as a logconf text line with its file after the time:
    ``TIME FILE LEVEL rank=R PROCESS[PID] LOGGER: MESSAGE``.

    A traceback's lines follow their record unchanged (a JSON record's ``exc_info`` and
    ``stack_info`` become such lines); a bad line reads ``TIME FILE TORN: raw`` (or
    ``UNPARSABLE``), with the time of the record before it; a line over the limit reads
    ``TIME FILE TOO_LONG: line N, SIZE bytes (limit LINE_LIMIT), starts: HEAD``.
    """
    record = entry.record
    if entry.kind == TOO_LONG:
        return f"{entry.time or '-'} {entry.file} TOO_LONG: {too_long_note(entry)}, starts: {entry.lines[0]}"
    if record is None:
        return f"{entry.time or '-'} {entry.file} {entry.kind.upper()}: {entry.lines[0]}"
    if not _json_file(entry.file):
        first = entry.lines[0]
        head = f"{entry.time} {entry.file} {first[25:]}"
        return head if len(entry.lines) == 1 else "\n".join([head, *entry.lines[1:]])
    head = (
        f"{entry.time} {entry.file} {record['level']} rank={record.get('rank')} "
        f"{record.get('process_name')}[{record.get('pid')}] {record['logger']}: {record['message']}"
    )
    tail = [str(record[k]) for k in ("exc_info", "stack_info") if record.get(k)]
    return "\n".join([head, *tail]) if tail else head


@functools.cache  # one entry per file read
def _json_file(label: str) -> bool:
    """Whether a file holds JSON lines: its rank file's name says so (``vllm_rank_0.jsonl.2.gz`` does)."""
    return live_name(label).endswith(".jsonl")


def too_long_note(entry: Entry) -> str:
    """``line N, SIZE bytes (limit LINE_LIMIT)``: where a TOO_LONG entry sits and how long it is."""
    return f"line {entry.line_number}, {entry.size} bytes (limit {LINE_LIMIT})"


def render_json(entry: Entry) -> str:
    """Return the entry as one JSON line: the record's fields plus ``file`` (and ``continuation``).

    A bad line is ``{"time", "file", "kind", "line"}``; a TOO_LONG one adds ``line_number`` and
    ``bytes``, and its ``line`` is the line's first bytes.
    """
    if entry.kind != RECORD or entry.record is None:
        bad: dict[str, object] = {"time": entry.time or None, "file": entry.file, "kind": entry.kind, "line": entry.lines[0]}
        if entry.kind == TOO_LONG:
            bad.update(line_number=entry.line_number, bytes=entry.size)
        return json.dumps(bad)
    document = {"time": entry.time, "file": entry.file, **{k: v for k, v in entry.record.items() if k != "time"}}
    if len(entry.lines) > 1:
        document["continuation"] = entry.lines[1:]
    return json.dumps(document, ensure_ascii=False)
