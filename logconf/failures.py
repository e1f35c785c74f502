"""``logconf errors``: a run's first error with what led to it, each distinct error once, and who went quiet.

Read through :mod:`logconf.logfiles`, a file at a time, streaming (a run's directory or the
one ``logconf gather`` writes). A rotated rank file or copy is read as one file, its rotated
files (compressed or not) oldest first, then the live one; each error names the file it is in
and its line there (``vllm_rank_0.log.20261126T090000.000Z.gz:12``):

- every ERROR and CRITICAL record of the rank files, its traceback whole;
- in the ``.stdio.log`` copies, what never went through logging: a raw Python traceback and a
  C++ ``terminate called ...`` (and ``Fatal Python error``). A logconf console line copied there
  (a record already in a rank file) is skipped. Such lines carry no time of their own, but the
  console lines copied around them carry their records' times: an error there came after the
  last console line before it (else after its process's first record: shown with ``~``) and
  before its process's next console line (one process's lines keep their order in the copy),
  else before the copy's last change. It is the run's first error only if it surely came
  before the first ERROR record;
- each process's last record, and which processes went quiet: their last record is more than
  ``quiet_s`` before the run's last one, and before the last one of the others of their kind.

The first error is the earliest ERROR or CRITICAL record, or a raw error whose latest possible
time is earlier. Errors are the same when they differ only in numbers, addresses and ids.
"""

from __future__ import annotations

import collections
import datetime
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from logconf.logfiles import (
    RECORD,
    Entry,
    LineReader,
    RankSet,
    iter_entries,
    natural_key,
    node_of,
    rank_files,
    sets_under,
    stdio_name,
    stdio_sets,
    time_key,
)
from logconf.merge import render
from logconf.openfiles import open_part
from logconf.records import TEXT_LINE, level_number
from logconf.repeats import mask
from logconf.stackgroups import kind_of, plural

__all__ = ["ErrorReport", "Found", "mask", "render_report", "report_json", "scan", "stdio_errors", "utc"]

CONTEXT = 5  # lines of a process shown before its first error
SAMPLE_LINES = 60  # lines kept of an error's text (its head and its tail)
DISTINCT_LIMIT = 1000  # distinct errors kept; more are counted only
QUIET_S = 60.0
_ERROR = 40
_STDIO_LINE = re.compile(r"(?P<name>.+?)\[(?P<pid>\d+)\] (?P<text>.*)")
_CHILD_PREFIX = re.compile(r"^(?:\([A-Za-z_][\w.]*(?: pid=\d+)?(?:, ip=[\d.]+)?\) )+")  # vLLM <= 0.30's, Ray's
_CHAIN = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)
_TRACEBACK = "Traceback (most recent call last):"
_FATAL = ("terminate called ", "Fatal Python error: ")


def utc(seconds: float) -> str:
    """A Unix time as the records write it: ``2026-11-26T09:09:30.698Z``."""
    return time_key(datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat())


def _seconds(stamp: str) -> float:
    try:
        return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _kept(lines: Sequence[str]) -> list[str]:
    if len(lines) <= SAMPLE_LINES:
        return list(lines)
    half = SAMPLE_LINES // 2
    return [*lines[:half], f"... {len(lines) - SAMPLE_LINES} lines left out ...", *lines[-half:]]


@dataclass
class Found:
    """One error: where and when, who, and its text."""

    time: str
    file: str
    line: int
    rank: str | None
    process: str
    pid: int
    level: str
    logger: str | None  # None: a raw error from a .stdio.log copy
    message: str
    lines: list[str]
    context: Sequence[Any] = ()  # what its process wrote just before it: lines, or entries rendered when shown
    estimated: bool = False  # a stdio error: ``time`` is the earliest it can be, ``until`` the latest
    order: tuple[Any, ...] = ()
    until: str = ""

    @property
    def node(self) -> str | None:
        return node_of(self.file)

    @property
    def before(self) -> list[str]:
        """The lines its process wrote just before it (a record's first line, as merge shows it)."""
        return [item if isinstance(item, str) else render(item).split("\n", 1)[0][:500] for item in self.context]

    @property
    def last_line(self) -> str:
        """The traceback's last line (the exception), or the message."""
        tail = [line for line in self.lines[1:] if line.strip()] if self.logger is not None else self.lines
        return tail[-1].strip() if tail else self.message

    @property
    def signature(self) -> str:
        return mask(f"{self.level} {self.logger or 'stdio'}: {self.message} | {self.last_line}")

    def who(self) -> str:
        where = f"@{self.node}" if self.node else ""
        return f"{self.process}[{self.pid}]{where}"

    def as_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "time_estimated": self.estimated,
            "file": self.file,
            "line": self.line,
            "node": self.node,
            "rank": self.rank,
            "process_name": self.process,
            "pid": self.pid,
            "level": self.level,
            "logger": self.logger,
            "message": self.message,
            "last_line": self.last_line,
            "lines": self.lines,
            "before": self.before,
        }


@dataclass
class Distinct:
    """Every occurrence of one error, counted, with the first kept."""

    first: Found
    count: int = 0
    ranks: set[str] = field(default_factory=set)
    processes: set[str] = field(default_factory=set)

    def add(self, found: Found) -> None:
        self.count += 1
        self.ranks.add(found.rank if found.rank is not None else "?")
        if len(self.processes) < 100:
            self.processes.add(found.who())
        if (found.time, found.order) < (self.first.time, self.first.order):
            self.first = found


@dataclass
class ProcessLast:
    """A process's last record, for telling which processes went quiet."""

    node: str | None
    process: str
    pid: int
    rank: str | None
    last: str = ""
    first: str = ""
    records: int = 0
    files: set[str] = field(default_factory=set)
    quiet_s: float | None = None  # set when it went quiet: seconds before the run's last record

    def who(self) -> str:
        where = f"@{self.node}" if self.node else ""
        return f"{self.process}[{self.pid}]{where}"


@dataclass
class ErrorReport:
    """What ``logconf errors`` found."""

    first_record: Found | None = None
    first_raw: Found | None = None  # the earliest raw error of the stdio copies, by its earliest time
    distinct: dict[str, Distinct] = field(default_factory=dict)
    errors: int = 0
    uncounted_kinds: int = 0  # distinct errors beyond DISTINCT_LIMIT
    processes: dict[tuple[str | None, int, str], ProcessLast] = field(default_factory=dict)
    end: str = ""
    complete: bool = True  # False when a deadline stopped the scan
    logged: dict[tuple[str | None, int], set[str]] = field(default_factory=dict)  # each process's logged exceptions

    @property
    def first(self) -> Found | None:
        """The first error: the earliest record, unless a raw error surely came before it (its latest time is earlier)."""
        raw, record = self.first_raw, self.first_record
        if raw is not None and (record is None or raw.until < record.time):
            return raw
        return record

    def add(self, found: Found) -> None:
        self.errors += 1
        if not found.estimated:
            seen = self.logged.setdefault((found.node, found.pid), set())
            if len(seen) < 100:
                seen.add(mask(found.last_line))
        current = self.first_raw if found.estimated else self.first_record
        if current is None or (found.time, found.order) < (current.time, current.order):
            if found.estimated:
                self.first_raw = found
            else:
                self.first_record = found
        item = self.distinct.get(found.signature)
        if item is None:
            if len(self.distinct) >= DISTINCT_LIMIT:
                self.uncounted_kinds += 1
                return
            item = self.distinct[found.signature] = Distinct(found)
        item.add(found)


class _Deadline:
    def __init__(self, seconds: float | None) -> None:
        self.at = None if seconds is None else time.monotonic() + seconds
        self.count = 0

    def passed(self) -> bool:
        if self.at is None:
            return False
        self.count += 1
        return self.count % 1024 == 0 and time.monotonic() > self.at


Key = tuple[str | None, int, str]  # (node, pid, time) of a record


_BELOW = frozenset(("DEBUG", "INFO", "WARNING", "TRACE", "SUCCESS", "NOTSET"))  # most records: no level lookup
_ERRORS = frozenset(("ERROR", "CRITICAL"))


def _is_error(level: object) -> bool:
    if level in _BELOW:
        return False
    if level in _ERRORS:
        return True
    number = level_number(str(level))
    return number is not None and number >= _ERROR


def _record_errors(
    found: RankSet, order: int, report: ErrorReport, since: str, deadline: _Deadline, echoes: set[Key], owned: set[Key]
) -> bool:
    """Scan one rank file, its rotated files first; return False if the deadline stopped it.

    ``echoes`` are records whose console copy a traceback follows in a stdio copy; those that
    hold that traceback themselves go into ``owned``.
    """
    label, node = found.name, node_of(found.name)
    seen: dict[tuple[Any, Any], tuple[ProcessLast, collections.deque[Entry]]] = {}
    for part_order, entry in _set_entries(found, order):
        if deadline.passed():
            return False
        record = entry.record
        if record is None or entry.kind != RECORD or (since and entry.time < since):
            continue
        pid, name = record.get("pid"), record.get("process_name")
        known = seen.get((pid, name))
        if known is None:
            key = (node, int(pid or 0), str(name))
            process = report.processes.get(key)
            if process is None:
                process = report.processes[key] = ProcessLast(node, key[2], key[1], record.get("rank"))
            process.files.add(label)
            known = seen[(pid, name)] = (process, collections.deque(maxlen=CONTEXT))
        process, history = known
        process.records += 1
        if entry.time > process.last:
            process.last = entry.time
        if not process.first or entry.time < process.first:
            process.first = entry.time
        if echoes and (node, process.pid, entry.time) in echoes and (len(entry.lines) > 1 or record.get("exc_info")):
            owned.add((node, process.pid, entry.time))
        if _is_error(record.get("level")):
            text = render(entry).split("\n")
            report.add(
                Found(
                    entry.time, entry.file, entry.line_number, record.get("rank"), process.process, process.pid,
                    str(record.get("level")), str(record.get("logger")), str(record.get("message")).split("\n", 1)[0],
                    _kept(text), tuple(history), order=(0, order, part_order, entry.position),
                )
            )  # fmt: skip
        history.append(entry)
    return True


def _set_entries(found: RankSet, order: int) -> Iterator[tuple[int, Entry]]:
    """Each entry of a set's files in turn, named by its own file, with that file's place in the set."""
    for part_order, (path, part) in enumerate(found.labelled()):
        for entry in iter_entries(path, order, part):
            yield part_order, entry


class _Block:
    """An error being read from one process's lines of a stdio copy."""

    def __init__(self, where: tuple[str, int], text: str, before: list[str], echo_time: str | None = None) -> None:
        self.where, self.lines, self.before, self.echo_time = where, [text], before, echo_time
        if echo_time is not None:
            self.phase = "echo"  # a console copy of a record: its traceback may follow
        elif text == _TRACEBACK:
            self.phase = "frames"
        elif text.startswith(_FATAL[0]):
            self.phase = "what"
        else:
            self.phase = "fatal"

    def take(self, text: str) -> bool:
        """Add ``text`` if it continues this error; False when the error ended before it."""
        indented = text.startswith((" ", "\t"))
        phase = self.phase
        if phase in ("echo", "chain") and text == _TRACEBACK:
            self.phase = "frames"
        elif phase == "frames":
            self.phase = "frames" if indented else "ended"  # the first line flush left names the exception
        elif phase == "ended" and text in _CHAIN:
            self.phase = "chain"
        elif phase == "ended" and text == _TRACEBACK:
            self.phase = "frames"
        elif phase == "what" and text.lstrip().startswith("what():"):
            self.phase = "done"
        elif phase == "fatal" and (indented or text.startswith(_FAULTHANDLER_LINES)):
            pass
        else:
            return False
        self.lines.append(text)
        return True


_FAULTHANDLER_LINES = ("Thread 0x", "Current thread 0x", "Python runtime state", "Extension modules", "Stack (most recent")


def _copy_set(copy: str | RankSet) -> RankSet:
    return copy if isinstance(copy, RankSet) else RankSet(os.path.basename(copy), copy)


def _stdio_lines(copy: RankSet) -> Iterator[tuple[str, int, tuple[str, int], str, str]]:
    """Each line of a stdio copy, its rotated files first: (its file, its line number there,
    (process name, pid), text without prefixes, the line)."""
    for path, part in copy.labelled():
        try:
            with open_part(path) as file:
                for number, raw in enumerate(LineReader().read(file), 1):
                    match = _STDIO_LINE.fullmatch(raw) if isinstance(raw, str) else None
                    if match is not None:
                        yield (
                            part,
                            number,
                            (match.group("name"), int(match.group("pid"))),
                            _CHILD_PREFIX.sub("", match.group("text")),
                            match.group(0),
                        )
        except FileNotFoundError:
            continue  # removed since it was listed (retention)


def echoes_before_tracebacks(copy: str | RankSet, node: str | None) -> set[Key]:
    """The records whose console copy a traceback line follows in this stdio copy: theirs, or a raw one."""
    found: set[Key] = set()
    last: dict[tuple[str, int], str | None] = {}
    for _, _, key, text, _ in _stdio_lines(_copy_set(copy)):
        record = TEXT_LINE.fullmatch(text)
        if text == _TRACEBACK and last.get(key):
            found.add((node, key[1], str(last[key])))
        last[key] = record.group("time") if record else None
    return found


@dataclass
class RawError:
    """A raw error of a stdio copy, and what the copy says of its time."""

    file: str  # the copy's file it starts in (a rotated one, or the live copy)
    line: int
    process: str
    pid: int
    lines: list[str]
    before: list[str]
    after: str  # the time of the last console line copied before it, or ""
    until: str = ""  # the time of its own process's next console line in the copy, or "" (none came)


def stdio_errors(copy: str | RankSet, node: str | None = None, owned: set[Key] | None = None) -> Iterator[RawError]:
    """Yield each raw error of one ``.stdio.log`` copy (a path, or a set: its rotated files first).

    A raw error is a Python traceback that is not a console copy of a record's own (one in
    ``owned``, as :func:`scan` finds them in the rank files; None: every traceback right after
    a console line is taken for the record's), a C++ ``terminate called ...`` with its
    ``what():`` line, or a ``Fatal Python error`` with the stacks that follow it. Each process's
    lines are read apart. The console lines copied there carry their records' times: the last
    one before an error dates it from below, and its own process's next one from above (one
    process's lines keep their order in the copy).
    """
    recent: dict[tuple[str, int], collections.deque[str]] = {}
    blocks: dict[tuple[str, int], tuple[_Block, str]] = {}
    undated: dict[tuple[str, int], list[RawError]] = {}  # waiting for their process's next console line
    latest = ""

    def started(where: tuple[str, int], key: tuple[str, int], text: str, record: re.Match[str] | None) -> _Block | None:
        if record and (owned is None or (node, key[1], record.group("time")) in owned):
            return _Block(where, text, [], record.group("time"))
        if text == _TRACEBACK or text.startswith(_FATAL):
            return _Block(where, text, list(recent[key]))
        return None

    def ended(key: tuple[str, int], block: _Block, after: str) -> None:
        if block.echo_time is None:
            raw = RawError(*block.where, key[0], key[1], _kept(block.lines), block.before, after)
            undated.setdefault(key, []).append(raw)

    for part, number, key, text, line in _stdio_lines(_copy_set(copy)):
        recent.setdefault(key, collections.deque(maxlen=CONTEXT))
        record = TEXT_LINE.fullmatch(text)
        if record:
            latest = max(latest, record.group("time"))
            for raw in undated.pop(key, ()):
                raw.until = record.group("time")
                yield raw
        open_block = blocks.pop(key, None)
        if open_block is not None and record and open_block[0].echo_time is None:
            blocks[key] = open_block  # another thread's console line inside a raw traceback: step over it
        elif open_block is not None and open_block[0].take(text):
            blocks[key] = open_block
        else:
            if open_block is not None:
                ended(key, *open_block)
            new = started((part, number), key, text, record)
            if new is not None:
                blocks[key] = (new, latest)
        recent[key].append(line[:500])
    for key, open_block in blocks.items():
        ended(key, *open_block)
    for raws in undated.values():
        yield from raws


def _stdio_rank(name: str) -> str | None:
    parts = stdio_name(name.rsplit("/", 1)[-1])
    return parts.rank if parts else None


def scan(
    path: str, *, since: str = "", quiet_s: float = QUIET_S, deadline_s: float | None = None, stdio: bool = True
) -> ErrorReport:
    """Read every rank file (and ``.stdio.log`` copy) of a run's directory or a gathered one."""
    sets = sets_under(path) if os.path.isdir(path) else []
    copies = stdio_sets(path) if stdio and os.path.isdir(path) else []
    if not sets and not copies:
        rank_files(path)  # raises the tools' one-line LogDirError saying why there is nothing to read
    report = ErrorReport()
    deadline = _Deadline(deadline_s)
    echoes: set[Key] = set()
    for copy in copies:
        echoes |= echoes_before_tracebacks(copy, node_of(copy.name))
    owned: set[Key] = set()
    for order, rank_set in enumerate(sets):
        if not _record_errors(rank_set, order, report, since, deadline, echoes, owned):
            report.complete = False
            break
    first_times = {(p.node, p.pid): p.first for p in report.processes.values()}
    for order, copy in enumerate(copies if report.complete else ()):
        node, parts = node_of(copy.name), [part for _, part in copy.labelled()]
        changed = utc(max((_mtime(p) for p in copy.paths), default=0.0))
        for raw in stdio_errors(copy, node, owned):
            # Printed after the console lines copied before it, or at least after its process's
            # first record (the earliest it can be), and before its process's next console line or
            # the copy's last change (the latest): a record comes first unless it surely came later.
            until = raw.until or changed
            when = min(raw.after or first_times.get((node, raw.pid), "") or until, until)
            if since and until < since:
                continue
            message = raw.lines[-1].strip()
            if mask(message) in report.logged.get((node, raw.pid), ()):
                continue  # the exception its process logged already, printed again as it ended (multiprocessing does)
            rank = _stdio_rank(copy.name)
            found = Found(
                when, raw.file, raw.line, rank, raw.process, raw.pid, "ERROR", None, message, raw.lines, raw.before, True
            )
            found.order, found.until = (1, order, parts.index(raw.file), raw.line), until
            report.add(found)
    report.end = max((p.last for p in report.processes.values()), default="")
    _mark_quiet(report, quiet_s)
    return report


def _mtime(path: str) -> float:
    try:
        return os.path.getmtime(path)
    except FileNotFoundError:  # removed since it was listed (retention)
        return 0.0


def _mark_quiet(report: ErrorReport, quiet_s: float) -> None:
    end = _seconds(report.end) if report.end else 0.0
    latest: dict[str, float] = {}
    for process in report.processes.values():
        kind = kind_of(process.process)
        latest[kind] = max(latest.get(kind, 0.0), _seconds(process.last))
    peers = collections.Counter(kind_of(p.process) for p in report.processes.values())
    for process in report.processes.values():
        last = _seconds(process.last)
        kind = kind_of(process.process)
        if end - last > quiet_s and (peers[kind] < 2 or latest[kind] - last > quiet_s):
            process.quiet_s = end - last


def report_json(report: ErrorReport, path: str) -> dict[str, Any]:
    """The report as JSON (schema ``logconf.errors/1``)."""
    return {
        "schema": "logconf.errors/1",
        "dir": path,
        "errors": report.errors,
        "first": report.first.as_json() if report.first else None,
        "distinct": [
            {
                "count": d.count,
                "ranks": sorted(d.ranks, key=natural_key),
                "processes": sorted(d.processes),
                "signature": signature,
                "first": d.first.as_json(),
            }
            for signature, d in _ordered(report)
        ],
        "more_distinct": report.uncounted_kinds,
        "run_end": report.end or None,
        "processes": [
            {"node": p.node, "process_name": p.process, "pid": p.pid, "rank": p.rank, "last": p.last, "records": p.records,
             "files": sorted(p.files), "quiet_s": p.quiet_s}
            for p in sorted(report.processes.values(), key=lambda p: (p.last, p.who()))
        ],
        "complete": report.complete,
    }  # fmt: skip


def _ordered(report: ErrorReport) -> list[tuple[str, Distinct]]:
    return sorted(report.distinct.items(), key=lambda item: (item[1].first.time, item[1].first.order))


def _when(found: Found) -> str:
    return ("~" if found.estimated else "") + found.time


def render_report(report: ErrorReport, quiet_s: float = QUIET_S) -> str:
    """The plain-text report: the first error whole, the distinct errors, each process's last record."""
    out: list[str] = []
    first = report.first
    if first is None:
        out.append("No ERROR or CRITICAL record, and no raw traceback in the .stdio.log copies.")
    else:
        where = "a raw error in the stdio copy" if first.logger is None else "the first ERROR or CRITICAL record"
        out.append(
            f"First error ({where}; {plural(report.errors, 'error')} in all, {len(report.distinct)} distinct): "
            f"{_when(first)} {first.file} line {first.line}, rank {first.rank}, {first.who()}"
        )
        if first.before:
            out.append(f"  what {first.process}[{first.pid}] wrote just before it:")
            out += [f"    {line}" for line in first.before]
        out += [f"  {line}" for line in first.lines]
        out.append("")
        out.append("Distinct errors (numbers, addresses and ids masked), first seen first:")
        for index, (_, item) in enumerate(_ordered(report), 1):
            found = item.first
            more = f" and {len(item.processes) - 8} more" if len(item.processes) > 8 else ""
            who = ", ".join(sorted(item.processes)[:8]) + more
            head = f"{found.level} {found.logger}: {found.message}" if found.logger else f"in a stdio copy: {found.message}"
            tail = f" -> {found.last_line}" if found.last_line != found.message else ""
            out.append(f"  {index}. {item.count}x {head}{tail}")
            ranks = ", ".join(sorted(item.ranks, key=natural_key))
            out.append(f"     ranks {ranks}; {who}; first {_when(found)} {found.file}:{found.line}")
        if report.uncounted_kinds:
            out.append(f"  ... and {report.uncounted_kinds} more distinct errors")
    out.append("")
    out.append(
        f"Last record of each process (the run's last: {report.end or '-'}; 'went quiet': more than {quiet_s:g} s "
        "before it, and before the others of its kind):"
    )
    for process in sorted(report.processes.values(), key=lambda p: (p.last, p.who())):
        quiet = f"  went quiet ({process.quiet_s:.0f} s before the end)" if process.quiet_s is not None else ""
        out.append(f"  {process.last} rank {process.rank} {process.who()} ({', '.join(sorted(process.files))}){quiet}")
    if not report.complete:
        out.append("(stopped before the end: the time allowed ran out)")
    return "\n".join(out)
