"""Find a run's rank files and read them back as whole records, one file at a time, streaming.

A text record is its first line plus the lines that follow it until the next record (a
traceback); a JSON record is one line. Reading keeps one record and one line in memory, and
never more than LINE_LIMIT bytes of a line: a longer line (a runaway print, a binary blob, a
file that never ends its last line) becomes a TOO_LONG entry that holds its first bytes,
its line number and its length.

A rank file that was rotated is a *set*: its rotated files, oldest first, then the live file
(:class:`RankSet`). Three namings are read: logconf's own (``vllm_rank_0.log.20261126T091030.123Z``,
the time of the rotation, UTC), logrotate's numbers (``vllm_rank_0.log.3`` is older than ``.1``)
and logrotate's ``dateext`` (``vllm_rank_0.log-20261126``); any of them may end in ``.gz``. When
both ``X`` and ``X.gz`` exist (a compression that had not removed ``X`` yet) only ``X`` is read.
:func:`rank_files` lists every file of every set in that order, so a tool that reads the files
it lists reads each set as one; entries name the file they come from, with its own line numbers.
Files are opened through :mod:`logconf.openfiles`, which keeps a bounded number open.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, NamedTuple

from logconf.openfiles import FileMoved, open_part
from logconf.records import TEXT_LINE, parse_line

__all__ = [
    "LINE_LIMIT",
    "REMOVAL_LOGGER",
    "TRAINER_LOGGERS",
    "VLLM_LOGGERS",
    "Entry",
    "EntryReader",
    "LineReader",
    "LogDirError",
    "RankName",
    "RankSet",
    "Removal",
    "Rotated",
    "Tally",
    "TooLong",
    "file_label",
    "iter_entries",
    "live_name",
    "locate_rotated",
    "natural_key",
    "node_of",
    "rank_files",
    "rank_name",
    "rank_names",
    "rank_sets",
    "removal_message",
    "removal_of",
    "rotated_name",
    "sets_in",
    "sets_under",
    "split_rotated",
    "stdio_name",
    "stdio_names",
    "stdio_sets",
    "subsystem_of",
    "time_key",
]

VLLM_LOGGERS = ("vllm", "uvicorn", "py.warnings")  # warnings in vLLM processes: logconf.capture
TRAINER_LOGGERS = ("skyrl_train", "skyrl", "skyrl_gym", "harbor", "examples")

# Kinds of entry: a parsed record, a line that is not a record, a last line with no newline, or
# a line longer than LINE_LIMIT bytes.
RECORD, UNPARSABLE, TORN, TOO_LONG = "record", "unparsable", "torn", "too_long"

LINE_LIMIT = 1 << 20  # bytes of one line that the tools read; a longer line is reported, not held
SHOWN = 200  # bytes kept from the start of a line that is too long
_SKIP = 1 << 16  # bytes read at a time while passing over a line that is too long

_DIGITS = re.compile(r"(\d+)")
_CANONICAL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")  # how a text record's first line starts
_STAMP_FILL = "2000-01-01T00:00:00.000Z "


def _torn_head(line: str) -> bool:
    """Whether a text line that is not a record starts like one: a write cut short, ended by the next writer.

    A writer killed mid-record leaves the record's head; RankFileHandler's next record ends that
    line (see its ``_end_cut_short``). The head is at least a date and ``T`` (11 characters), and
    as far as it goes it is a record's time stamp followed by a space.
    """
    if len(line) < 11:
        return False
    head = line[:25]
    return _STAMP.match(head + _STAMP_FILL[len(head) :]) is not None


class LogDirError(ValueError):
    """A directory or file that the operator tools cannot read as a run's logs; one line says why."""


def subsystem_of(filename: str) -> str | None:
    """Return ``vllm`` or ``skyrl`` for a rank file's name, or None for other files."""
    parts = rank_name(filename)
    return parts.subsystem if parts else None


class RankName(NamedTuple):
    """What a rank file's name says: ``vllm_rank_0.log`` or, per host, ``vllm_rank_0@node1.log``."""

    subsystem: str
    rank: str
    host: str | None  # set in the per-host files written on a network filesystem (logconf.netfs)


def rank_name(filename: str) -> RankName | None:
    """Split a rank file's name into subsystem, rank and host; None for other files (``.stdio.log`` included)."""
    for prefix in ("vllm", "skyrl"):
        if filename.startswith(prefix + "_rank_") and filename.endswith((".log", ".jsonl")) and ".stdio." not in filename:
            rank, _, host = filename[len(prefix) + 6 :].rsplit(".", 1)[0].partition("@")  # a rank never holds '@'
            return RankName(prefix, rank, host or None)
    return None


def stdio_name(filename: str) -> RankName | None:
    """Split a ``.stdio.log`` copy's name (``vllm_rank_0.stdio.log``, ``vllm_rank_0@node1.stdio.log``) as its rank file's."""
    if not filename.endswith(".stdio.log"):
        return None
    return rank_name(filename[: -len(".stdio.log")] + ".log")


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that puts ``vllm_rank_2.log`` before ``vllm_rank_10.log``; the name breaks ties."""
    return (tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(name)), name)



# -- rotated files ---------------------------------------------------------------------------

_ROTATED = re.compile(
    r"(?P<live>.+\.(?:log|jsonl))"
    r"(?:\.(?P<stamp>\d{8}T\d{6}\.\d{3}Z)|\.(?P<number>\d+)|-(?P<date>\d{8}(?:[-_T.]?\d+)*))"
    r"(?P<gz>\.gz)?"
)
_STAMP_DIGITS = 17  # YYYYMMDDHHMMSSmmm


class Rotated(NamedTuple):
    """What a rotated file's name says: the live file's name, its place in the set, whether it is compressed."""

    live: str
    key: tuple[int, Any]  # sorts a set's rotated files oldest first
    compressed: bool
    stamped: bool  # named by logconf's rotation: a name that no later rotation changes


def split_rotated(name: str) -> Rotated | None:
    """Parse a rotated file's name (``vllm_rank_0.log.3.gz``); None for any other name, live files included.

    logrotate's numbers count back from the newest (``.1``); logconf's time stamps and
    logrotate's dates count forward. Within one set, numbered files sort before dated ones.
    """
    match = _ROTATED.fullmatch(name)
    if match is None:
        return None
    if match["number"] is not None:
        key: tuple[int, Any] = (0, -int(match["number"]))
    else:
        digits = re.sub(r"\D", "", match["stamp"] or match["date"])
        key = (1, digits.ljust(_STAMP_DIGITS, "0"))
    return Rotated(match["live"], key, match["gz"] is not None, match["stamp"] is not None)


def live_name(name: str) -> str:
    """The live file's name for any file of a set (``vllm_rank_0.jsonl`` for ``vllm_rank_0.jsonl.2.gz``)."""
    rotated = split_rotated(name)
    return rotated.live if rotated else name


def rotated_name(live: str, unix_ms: int) -> str:
    """Name the file that ``live`` becomes when it is rotated at ``unix_ms`` (logconf's own naming)."""
    stamp = datetime.datetime.fromtimestamp(unix_ms // 1000, datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{live}.{stamp}.{unix_ms % 1000:03d}Z"


@dataclass(frozen=True)
class RankSet:
    """One rank file and its rotated files: ``rotated`` oldest first, then ``live`` if it exists."""

    name: str  # the live file's name, under the root read (``node/name`` in a gathered directory)
    live: str  # its path; it may be missing (removed, or not created again yet)
    rotated: tuple[str, ...] = ()
    live_exists: bool = True
    live_inode: int = 0  # as listed (0: unknown)

    @property
    def paths(self) -> list[str]:
        """Every file of the set, in the order its records were written."""
        return [*self.rotated, *([self.live] if self.live_exists else [])]

    def labelled(self) -> list[tuple[str, str]]:
        """Every file of the set in order, each with the name the tools give it (``node/file`` as ``name`` has a node)."""
        node = node_of(self.name)
        return [(path, f"{node}/{os.path.basename(path)}" if node else os.path.basename(path)) for path in self.paths]

    def _replace_name(self, name: str) -> RankSet:
        return RankSet(name, self.live, self.rotated, self.live_exists, self.live_inode)


def sets_in(directory: str, *, stdio: bool = False) -> dict[str, RankSet]:
    """Return the rank-file sets of one directory by live name ({} if it cannot be listed).

    ``stdio`` adds the ``.stdio.log`` copies' sets (``logconf gather`` and retention count them).
    One listing, no ``stat`` per file where the filesystem gives entry types.
    """
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    live: dict[str, int] = {}
    parts: dict[str, dict[tuple[int, Any], tuple[bool, str]]] = {}
    for entry in entries:
        name = entry.name
        rotated = split_rotated(name)
        base = rotated.live if rotated else name
        if not (subsystem_of(base) or (stdio and _stdio_copy(base))) or not _is_file(entry):
            continue
        if rotated is None:
            live[name] = entry.inode()
            continue
        known = parts.setdefault(base, {}).get(rotated.key)
        if known is None or (known[0] and not rotated.compressed):  # X and X.gz: read X only
            parts[base][rotated.key] = (rotated.compressed, name)
    sets = {}
    for base in live | parts.keys():
        ordered = tuple(os.path.join(directory, n) for _, (_, n) in sorted(parts.get(base, {}).items()))
        sets[base] = RankSet(base, os.path.join(directory, base), ordered, base in live, live.get(base, 0))
    return sets


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:  # removed meanwhile
        return False


def _stdio_copy(name: str) -> bool:
    return name.startswith(("vllm_rank_", "skyrl_rank_")) and name.endswith(".stdio.log")


def locate_rotated(path: str) -> Any:
    """Return a function that finds the file ``path`` named before it was rotated, by its identity (device, inode)."""

    def locate(identity: tuple[int, int]) -> str | None:
        directory, base = os.path.split(path)
        found = sets_in(directory, stdio=True).get(live_name(base))
        for candidate in found.rotated if found else ():
            try:
                info = os.stat(candidate)
            except FileNotFoundError:
                continue
            if (info.st_dev, info.st_ino) == identity:
                return candidate
        return None

    return locate


# -- what retention removed (logconf.rotation writes it, summary reads it) -----------------------

REMOVAL_LOGGER = "logconf.rotation"
_REMOVAL = re.compile(
    r"removed (\d+) rotated files? \((\d+) bytes of log, (\d+) bytes on disk\) .*; "
    r"(\d+) in all so far \((\d+) bytes of log, (\d+) bytes on disk\)$"
)


class Removal(NamedTuple):
    """Rotated files that retention removed: how many, their bytes of log (uncompressed) and on disk."""

    files: int
    log_bytes: int
    disk_bytes: int


def removal_message(removed: list[tuple[str, int, int]], reason: str, so_far: Removal) -> str:
    """The message of the record that says what retention removed: ``(name, log bytes, disk bytes)`` each,
    and what it removed from this rank file in all (``so_far``, this removal included)."""
    log, disk = sum(r[1] for r in removed), sum(r[2] for r in removed)
    names = ", ".join(f"{name} ({size} bytes of log)" for name, size, _ in removed)
    s = "" if len(removed) == 1 else "s"
    return (
        f"removed {len(removed)} rotated file{s} ({log} bytes of log, {disk} bytes on disk) {reason}: {names}; "
        f"{so_far.files} in all so far ({so_far.log_bytes} bytes of log, {so_far.disk_bytes} bytes on disk)"
    )


def removal_of(record: dict[str, Any]) -> Removal | None:
    """Return what retention had removed from a rank file in all, as of a retention record; None for other records."""
    if record.get("logger") != REMOVAL_LOGGER:
        return None
    match = _REMOVAL.match(str(record.get("message", "")))
    return Removal(*map(int, match.groups()[3:])) if match else None


def rank_files(path: str) -> list[str]:
    """Return every file of the rank files in directory ``path`` (or ``path`` itself, if a file).

    Each rank file's set comes whole, its rotated files oldest first and the live file last
    (see :func:`rank_sets`); sets are in natural order. A directory that holds no rank files
    itself but has subdirectories that do (the layout ``logconf gather`` writes: one
    subdirectory per node) gives those, ordered by node, then name. Raises LogDirError for a
    missing path, an empty directory, a directory without rank files, and a file whose first
    line is not a logconf record.
    """
    if os.path.isfile(path):
        if not _looks_like_log(path):
            raise LogDirError(f"{path}: not a logconf log (its first line is not a text or JSON record)")
        return [path]
    return [part for found in rank_sets(path) for part in found.paths]


def rank_sets(path: str) -> list[RankSet]:
    """Return the rank files of directory ``path`` as sets (a rank file and its rotated files), in natural order.

    Raises LogDirError as :func:`rank_files` does.
    """
    if not os.path.exists(path):
        raise LogDirError(f"{path}: no such file or directory")
    if os.path.isfile(path):
        rank_files(path)  # the same check of its first line
        return [RankSet(os.path.basename(path), path)]
    if not os.path.isdir(path):
        raise LogDirError(f"{path}: not a directory or a regular file")
    names = os.listdir(path)
    if not names:
        raise LogDirError(f"{path}: empty directory; expected vllm_rank_N.log or skyrl_rank_N.log files")
    found = sets_under(path)
    if not found:
        raise LogDirError(
            f"{path}: no logconf rank files among its {len(names)} entries; "
            "expected vllm_rank_N.log/.jsonl or skyrl_rank_N.log/.jsonl (or NODE/vllm_rank_N.log from logconf gather)"
        )
    return found


def sets_under(directory: str) -> list[RankSet]:
    """The sets of ``directory``, or of its node subdirectories (named ``node/name``); [] if none."""
    own = sets_in(directory)
    if own:
        return [own[n] for n in sorted(own, key=natural_key)]
    try:
        subdirectories = [n for n in os.listdir(directory) if os.path.isdir(os.path.join(directory, n))]
    except (FileNotFoundError, NotADirectoryError):
        return []
    sets = []
    for node in sorted(subdirectories, key=natural_key):
        found = sets_in(os.path.join(directory, node))
        sets += [found[n]._replace_name(f"{node}/{n}") for n in sorted(found, key=natural_key)]
    return sets


def rank_names(directory: str) -> list[str]:
    """Return the rank files of ``directory`` as names relative to it, in natural order ([] if none).

    A run's directory holds them itself (``vllm_rank_0.log``). A gathered directory holds them
    one level down, one subdirectory per node (``node-a/vllm_rank_0.log``); it is read as such
    only when it holds no rank file itself. A rank file whose live file is missing but whose
    rotated files are there is named too.
    """
    return [found.name for found in sets_under(directory)]


def stdio_names(directory: str) -> list[str]:
    """Return the ``.stdio.log`` copies of ``directory`` as :func:`rank_names` returns rank files:
    the run's own, or in a gathered directory (no rank file of its own) each node's, as ``node/name``."""
    return [found.name for found in stdio_sets(directory)]


def stdio_sets(directory: str) -> list[RankSet]:
    """Return the ``.stdio.log`` copies of ``directory`` as sets (a copy rotates as its rank file does),
    named as :func:`stdio_names` names them, in natural order."""

    def copies(folder: str, node: str | None = None) -> list[RankSet]:
        found = {name: s for name, s in sets_in(folder, stdio=True).items() if stdio_name(name)}
        return [found[n]._replace_name(f"{node}/{n}" if node else n) for n in sorted(found, key=natural_key)]

    if sets_in(directory) or not rank_names(directory):
        return copies(directory)
    nodes = sorted({name.split("/")[0] for name in rank_names(directory)}, key=natural_key)
    return [found for node in nodes for found in copies(os.path.join(directory, node), node)]


def file_label(path: str, root: str | None = None) -> str:
    """Name a rank file as the tools show it: its path under ``root`` (``node/file`` in a gathered
    directory), or its base name when ``root`` is None or the file itself."""
    if root is None or not os.path.isdir(root):
        return os.path.basename(path)
    return os.path.relpath(path, root).replace(os.sep, "/")


def node_of(label: str) -> str | None:
    """Return the node part of a label (``node-a`` of ``node-a/vllm_rank_0.log``), or None."""
    return label.rpartition("/")[0] or None


def _looks_like_log(path: str) -> bool:
    try:
        with open_part(path) as file:
            first = file.readline(1 << 20).decode("utf-8", "replace")
    except OSError:  # not gzip after all, or unreadable
        return False
    return first == "" or parse_line(first) is not None


def time_key(value: object, *, round_up: bool = False) -> str:
    """Return ``value`` as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC, so times from any input sort as strings.

    logconf writes that form already; other ISO 8601 forms (an offset, no milliseconds) are
    converted, a finer time cut down to its millisecond, or raised to the next one with
    ``round_up`` (a lower bound: ``--since``). A time that does not parse returns "" (it sorts first).
    """
    text = str(value)
    if len(text) == 24 and text[-1] == "Z" and _CANONICAL_TIME.fullmatch(text):
        return text
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace(",", "."))
    except ValueError:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    moment = moment.astimezone(datetime.timezone.utc)
    if round_up and moment.microsecond % 1000:
        moment += datetime.timedelta(microseconds=1000 - moment.microsecond % 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(slots=True)
class TooLong:
    """A line longer than the limit: its first SHOWN bytes and its length, without the newline."""

    head: str
    size: int


class LineReader:
    """Split a binary file into lines, holding at most ``limit`` bytes of any one of them.

    :meth:`read` yields each whole line (decoded, without its newline) and a :class:`TooLong`
    for a line over ``limit`` bytes, until the file's end; an unfinished last line waits for
    the next :meth:`read` (a file still being written: tail) or for :meth:`finish` (a file
    read to its end).
    """

    def __init__(self, limit: int = LINE_LIMIT) -> None:
        self.limit = limit
        self.partial = b""  # the start of a line whose newline has not been read yet
        self.skipped = 0  # bytes so far of a line that is too long; its head is self.head
        self.head = b""

    @property
    def unfinished(self) -> bool:
        """Whether bytes of a line without its newline yet were read."""
        return bool(self.partial or self.skipped)

    def read(self, file: BinaryIO) -> Iterator[str | TooLong]:
        """Yield the lines that ``file`` completes from its position to its end."""
        readline, limit = file.readline, self.limit
        while True:
            if self.skipped:
                raw = readline(_SKIP)
                if not raw:
                    return
                if raw[-1] != 10:  # b"\n"
                    self.skipped += len(raw)
                    continue
                size, self.skipped = self.skipped + len(raw) - 1, 0
                yield TooLong(self.head.decode("utf-8", "replace"), size)
                continue
            partial = self.partial
            raw = readline(limit + 1 - len(partial))
            if not raw:
                return
            if partial:
                raw, self.partial = partial + raw, b""
            if raw[-1] == 10:
                yield raw[:-1].decode("utf-8", "replace")
            elif len(raw) > limit:
                self.head, self.skipped = raw[:SHOWN], len(raw)
            else:  # the file ends inside this line
                self.partial = raw
                return

    def finish(self) -> str | TooLong | None:
        """Return the unfinished last line of a file read to its end (a torn line), and forget it."""
        partial, skipped, self.partial, self.skipped = self.partial, self.skipped, b"", 0
        if skipped:
            return TooLong(self.head.decode("utf-8", "replace"), skipped)
        return partial.decode("utf-8", "replace") if partial else None


@dataclass(slots=True)
class Entry:
    """One record (or one bad line) of one file: what merge, summary and tail pass around."""

    time: str  # canonical UTC time; a bad line takes the time of the record before it
    order: int  # the file's place in the natural order of names
    position: int  # the entry's index within its file
    file: str  # the file's base name, or node/name in a gathered directory
    kind: str  # RECORD, UNPARSABLE, TORN or TOO_LONG
    record: dict[str, Any] | None
    lines: list[str] = field(default_factory=list)  # the raw lines, without newlines (TOO_LONG: the head)
    line_number: int = 0  # the number of the entry's first line in its file, from 1
    size: int = 0  # TOO_LONG: the line's length in bytes

    @property
    def key(self) -> tuple[str, int, int]:
        """Merge order: time, then the file's natural order, then the position in the file."""
        return (self.time, self.order, self.position)

    @property
    def line_count(self) -> int:
        return len(self.lines)


class EntryReader:
    """Turn one file's lines, fed in order, into entries; a text record waits for its continuation lines."""

    def __init__(self, path: str, order: int = 0, label: str | None = None) -> None:
        self.file = label or os.path.basename(path)
        self.json_file = live_name(self.file.rpartition("/")[2]).endswith(".jsonl")
        self.order = order
        self.position = 0
        self.line_number = 0
        self.last_time = ""
        self.pending: Entry | None = None

    def feed(self, line: str, whole: bool = True) -> Entry | None:
        """Take one line (without its newline); return the entry it completes, if any.

        ``whole`` is False for a last line with no newline: it becomes a TORN entry.
        """
        self.line_number += 1
        record: dict[str, Any] | None = None
        if not whole:
            pass
        elif self.json_file:
            record = parse_line(line)
        else:  # parse_line's text branch, inlined: this is merge's hot loop
            match = TEXT_LINE.fullmatch(line)
            if match is not None:
                record = match.groupdict()
                record["pid"] = int(record["pid"])
        pending = self.pending
        if record is None and whole and pending is not None and pending.kind == RECORD and not self.json_file:
            if not _torn_head(line):
                pending.lines.append(line)
                return None
        if record is not None:
            self.last_time = time_key(record.get("time"))
            self.pending = Entry(self.last_time, self.order, self.position, self.file, RECORD, record, [line], self.line_number)
        else:
            kind = TORN if not whole or (line.startswith("{") if self.json_file else _torn_head(line)) else UNPARSABLE
            self.pending = Entry(self.last_time, self.order, self.position, self.file, kind, None, [line], self.line_number)
        self.position += 1
        return pending

    def too_long(self, line: TooLong) -> Entry | None:
        """Take a line that is too long; return the entry it completes, if any."""
        self.line_number += 1
        pending = self.pending
        self.pending = Entry(
            self.last_time, self.order, self.position, self.file, TOO_LONG, None, [line.head], self.line_number, line.size
        )
        self.position += 1
        return pending

    def take(self, line: str | TooLong, whole: bool = True) -> Entry | None:
        """Take what a LineReader gave: a line (``whole`` False for a torn last one) or a TooLong."""
        return self.feed(line, whole) if isinstance(line, str) else self.too_long(line)

    def finish(self) -> Entry | None:
        """Return the entry still waiting for more lines, and forget it."""
        pending, self.pending = self.pending, None
        return pending


class _Stretch:
    """A binary file read from its position up to ``size`` more bytes, a line at a time."""

    def __init__(self, file: BinaryIO, size: int) -> None:
        self.file, self.left = file, size

    def readline(self, limit: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        raw = self.file.readline(self.left if limit < 0 else min(limit, self.left))
        self.left -= len(raw)
        return raw


@dataclass(slots=True)
class Tally:
    """What reading a file covered: its bytes (uncompressed), counted as :func:`iter_entries` reads."""

    bytes: int = 0


def iter_entries(
    path: str,
    order: int = 0,
    label: str | None = None,
    *,
    start: int = 0,
    stop: int | None = None,
    first_line: int = 1,
    tally: Tally | None = None,
) -> Iterator[Entry]:
    """Yield the entries of one rank file in file order, holding one record in memory at a time.

    In a text file, lines after a record that are not records themselves belong to it (a
    traceback). A line before the first record and any non-record line in a JSON file come out
    as UNPARSABLE entries of their own; a last line with no newline (a torn or unfinished
    write), a JSON line that starts with ``{`` but does not decode and a text line that starts
    with a record's time stamp but is not a record (the head of a write cut short) come out as
    TORN; a line over LINE_LIMIT bytes comes out as TOO_LONG, and only its first bytes are kept.

    ``start`` and ``stop`` (byte offsets at line starts) read one stretch of the file, whose first
    line is line ``first_line``; its entries' positions then start at ``first_line - 1``, so
    positions keep the file's order across stretches. A ``.gz`` file is read decompressed, its
    offsets counted in its decompressed bytes. ``tally``, if given, counts the bytes read.
    A file rotated while it is read is followed to its new name; one removed before it is read
    yields nothing, and one removed while it is read raises LogDirError.
    """
    reader, lines = EntryReader(path, order, label), LineReader()
    reader.line_number = reader.position = first_line - 1
    feed, too_long = reader.feed, reader.too_long
    with open_part(path, locate=locate_rotated(path)) as file:
        source: Any = file
        if start or stop is not None:
            file.seek(start)
            if stop is not None:
                source = _Stretch(file, stop - start)
        try:
            for line in lines.read(source):
                done = feed(line) if isinstance(line, str) else too_long(line)
                if done is not None:
                    yield done
        except FileMoved:
            raise LogDirError(f"{path}: removed while it was being read (by retention?); read it again") from None
        except FileNotFoundError:
            return  # removed since it was listed (retention): nothing of it is left to read
        if tally is not None:
            tally.bytes += file.tell() - start
    last = lines.finish()
    if last is not None and (done := reader.take(last, whole=False)) is not None:
        yield done
    done = reader.finish()
    if done is not None:
        yield done
