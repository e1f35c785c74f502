"""Find a run's rank files and read them back as whole records, one file at a time, streaming.

A text record is its first line plus the lines that follow it until the next record (a
traceback); a JSON record is one line. Reading keeps one record and one line in memory.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from logconf.records import TEXT_LINE, parse_line

__all__ = [
    "TRAINER_LOGGERS",
    "VLLM_LOGGERS",
    "Entry",
    "EntryReader",
    "LogDirError",
    "iter_entries",
    "natural_key",
    "rank_files",
    "subsystem_of",
    "time_key",
]

VLLM_LOGGERS = ("vllm", "uvicorn", "py.warnings")  # warnings in vLLM processes: logconf.capture
TRAINER_LOGGERS = ("skyrl_train", "skyrl", "skyrl_gym", "harbor", "examples")

# Kinds of entry: a parsed record, a line that is not a record, or a last line with no newline.
RECORD, UNPARSABLE, TORN = "record", "unparsable", "torn"

_DIGITS = re.compile(r"(\d+)")
_CANONICAL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


class LogDirError(ValueError):
    """A directory or file that the operator tools cannot read as a run's logs; one line says why."""


def subsystem_of(filename: str) -> str | None:
    """Return ``vllm`` or ``skyrl`` for a rank file's name, or None for other files."""
    for prefix in ("vllm", "skyrl"):
        if filename.startswith(prefix + "_rank_") and filename.endswith((".log", ".jsonl")) and ".stdio." not in filename:
            return prefix
    return None


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that puts ``vllm_rank_2.log`` before ``vllm_rank_10.log``; the name breaks ties."""
    return (tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(name)), name)


def rank_files(path: str) -> list[str]:
    """Return the rank files in directory ``path`` (or ``path`` itself, if a file), in natural order.

    Raises LogDirError for a missing path, an empty directory, a directory without rank files,
    and a file whose first line is not a logconf record.
    """
    if not os.path.exists(path):
        raise LogDirError(f"{path}: no such file or directory")
    if os.path.isfile(path):
        if not _looks_like_log(path):
            raise LogDirError(f"{path}: not a logconf log (its first line is not a text or JSON record)")
        return [path]
    if not os.path.isdir(path):
        raise LogDirError(f"{path}: not a directory or a regular file")
    names = os.listdir(path)
    if not names:
        raise LogDirError(f"{path}: empty directory; expected vllm_rank_N.log or skyrl_rank_N.log files")
    ranked = sorted((n for n in names if subsystem_of(n) and os.path.isfile(os.path.join(path, n))), key=natural_key)
    if not ranked:
        raise LogDirError(
            f"{path}: no logconf rank files among its {len(names)} entries; "
            "expected vllm_rank_N.log/.jsonl or skyrl_rank_N.log/.jsonl"
        )
    return [os.path.join(path, n) for n in ranked]


def _looks_like_log(path: str) -> bool:
    with open(path, encoding="utf-8", errors="replace") as file:
        first = file.readline(1 << 20)
    return first == "" or parse_line(first) is not None


def time_key(value: object) -> str:
    """Return ``value`` as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC, so times from any input sort as strings.

    logconf writes that form already; other ISO 8601 forms (an offset, no milliseconds) are
    converted. A time that does not parse returns "" (it sorts first).
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
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(slots=True)
class Entry:
    """One record (or one bad line) of one file: what merge, summary and tail pass around."""

    time: str  # canonical UTC time; a bad line takes the time of the record before it
    order: int  # the file's place in the natural order of names
    position: int  # the entry's index within its file
    file: str  # the file's base name
    kind: str  # RECORD, UNPARSABLE or TORN
    record: dict[str, Any] | None
    lines: list[str] = field(default_factory=list)  # the raw lines, without newlines

    @property
    def key(self) -> tuple[str, int, int]:
        """Merge order: time, then the file's natural order, then the position in the file."""
        return (self.time, self.order, self.position)

    @property
    def line_count(self) -> int:
        return len(self.lines)


class EntryReader:
    """Turn one file's lines, fed in order, into entries; a text record waits for its continuation lines."""

    def __init__(self, path: str, order: int = 0) -> None:
        self.file = os.path.basename(path)
        self.json_file = self.file.endswith(".jsonl")
        self.order = order
        self.position = 0
        self.last_time = ""
        self.pending: Entry | None = None

    def feed(self, line: str, whole: bool = True) -> Entry | None:
        """Take one line (without its newline); return the entry it completes, if any.

        ``whole`` is False for a last line with no newline: it becomes a TORN entry.
        """
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
            pending.lines.append(line)
            return None
        if record is not None:
            self.last_time = time_key(record.get("time"))
            self.pending = Entry(self.last_time, self.order, self.position, self.file, RECORD, record, [line])
        else:
            torn = not whole or (self.json_file and line.startswith("{"))
            self.pending = Entry(self.last_time, self.order, self.position, self.file, TORN if torn else UNPARSABLE, None, [line])
        self.position += 1
        return pending

    def finish(self) -> Entry | None:
        """Return the entry still waiting for more lines, and forget it."""
        pending, self.pending = self.pending, None
        return pending


def iter_entries(path: str, order: int = 0) -> Iterator[Entry]:
    """Yield the entries of one rank file in file order, holding one record in memory at a time.

    In a text file, lines after a record that are not records themselves belong to it (a
    traceback). A line before the first record and any non-record line in a JSON file come out
    as UNPARSABLE entries of their own; a last line with no newline (a torn or unfinished
    write) and a JSON line that starts with ``{`` but does not decode come out as TORN.
    """
    reader = EntryReader(path, order)
    with open(path, encoding="utf-8", errors="replace", newline="\n") as file:
        for raw in file:
            whole = raw.endswith("\n")
            done = reader.feed(raw[:-1] if whole else raw, whole)
            if done is not None:
                yield done
    done = reader.finish()
    if done is not None:
        yield done
