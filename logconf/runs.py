"""Split a rank file into stretches that are in time order, so that merge can keep one timeline.

A rank file is written by several processes, and not always in time order: records that a Ray
actor held until it learned its rank are written after newer records of the processes that
share its file, and records of concurrent writers may land a few places out of turn. Merge
reads each file as a few stretches (runs) instead of one stream:

- inside a run, a small window (WINDOW entries) puts records that landed a few places late back
  in order, so concurrent writers never start a run of their own;
- a record older than what that window has already let out starts a new run, read by a reader
  of its own and merged like another file. A released hold is one such run.

Finding the runs is a first pass over the file that reads only each line's time stamp (a regular
expression over 1 MiB blocks; a file in order costs one sorted-check per block). Memory stays
bounded: at most MAX_RUNS runs per file, each holding at most WINDOW entries. Past MAX_RUNS, a
file's remaining disorder is left to the last run's window.
"""

from __future__ import annotations

import heapq
import operator
import re
from collections.abc import Iterator
from dataclasses import dataclass

from logconf.logfiles import Entry, iter_entries, locate_rotated
from logconf.openfiles import open_part

__all__ = ["MAX_RUNS", "WINDOW", "Run", "find_runs", "run_entries"]

WINDOW = 64
MAX_RUNS = 32
_BLOCK = 1 << 20  # LINE_LIMIT: a line the tools read whole fits in a block
# A record's time stamp where its line starts (after a newline: a literal first character makes
# the search several times faster than ``^`` with re.M): a text record's first field, a JSON
# record's "time".
_STAMP = re.compile(rb'\n(?:\{"time": ?")?(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)')


@dataclass
class Run:
    """A stretch of a file from byte ``start`` (line ``first_line``) to the next run; ``shuffled``
    when some of its records are out of order (its window puts them back)."""

    start: int
    first_line: int
    shuffled: bool = False
    stop: int | None = None


class _Finder:
    """The first pass: feed it blocks of whole lines; it keeps the runs and the window's times."""

    def __init__(self) -> None:
        self.runs = [Run(0, 1)]
        self.window: list[bytes] = []  # a heap of the last WINDOW time stamps
        self.low = b""  # the newest time the window has let out
        self.last = b""
        self.offset = 0  # of the block being fed
        self.lines = 0  # before it

    def feed(self, text: bytes, start: int, end: int) -> None:
        """Take the lines of ``text`` that end by its newline at ``end``; ``text[0]`` is the newline before them.

        Stamps are looked for after ``start`` (past the end of a line too long for a block).
        """
        stamps = _STAMP.findall(text, start, end)
        if stamps and not self._in_order(stamps):
            self._walk(text, start, end)
        self.offset += end
        self.lines += text.count(b"\n", 1, end + 1)

    def _in_order(self, stamps: list[bytes]) -> bool:
        """Take ``stamps`` at once when they follow everything before them in order."""
        window = self.window
        if stamps[0] < self.last or (window and stamps[0] < max(window)):
            return False
        if not all(map(operator.le, stamps, stamps[1:])):
            return False
        merged = sorted(window) + stamps[-WINDOW - 1 :]
        if len(merged) > WINDOW:
            self.low = max(self.low, merged[-WINDOW - 1])
        self.window = merged[-WINDOW:]  # sorted: a valid heap
        self.last = stamps[-1]
        return True

    def _walk(self, text: bytes, start: int, end: int) -> None:
        window = self.window
        for match in _STAMP.finditer(text, start, end):
            stamp = match.group(1)
            if stamp < self.low and len(self.runs) < MAX_RUNS:
                at = match.start()  # in text, the newline before the line; in the block, the line's start
                self.runs[-1].stop = self.offset + at
                self.runs.append(Run(self.offset + at, self.lines + text.count(b"\n", 1, at + 1) + 1))
                window[:] = [stamp]
                self.low = b""
            else:
                if stamp < self.last:
                    self.runs[-1].shuffled = True
                heapq.heappush(window, stamp)
                if len(window) > WINDOW:
                    self.low = heapq.heappop(window)
            self.last = stamp


def find_runs(path: str) -> list[Run]:
    """Return the runs of ``path``: one, not shuffled, for a file in time order."""
    finder = _Finder()
    with open_part(path, locate=locate_rotated(path)) as file:  # a .gz file is read decompressed
        carry, skip = b"", False  # the unfinished last line of a block; inside a line too long for a block
        while True:
            try:
                data = file.read(_BLOCK)
            except FileNotFoundError:  # removed since it was listed (retention)
                break
            if not data:
                break
            text = b"\n" + carry + data  # the newline that ended the line before
            end = text.rfind(b"\n")
            if end == 0:  # no line ends in it: pass over the line, counting its bytes
                finder.offset += len(text) - 1
                carry, skip = b"", True
                continue
            finder.feed(text, text.index(b"\n", 1) if skip else 0, end)
            carry, skip = text[end + 1 :], False
    return finder.runs


def _windowed(entries: Iterator[Entry]) -> Iterator[Entry]:
    held: list[tuple[str, int, Entry]] = []
    for entry in entries:
        item = (entry.time, entry.position, entry)
        if len(held) < WINDOW:
            heapq.heappush(held, item)
        else:
            yield heapq.heappushpop(held, item)[2]
    while held:
        yield heapq.heappop(held)[2]


def run_entries(path: str, order: int, run: Run, label: str | None = None) -> Iterator[Entry]:
    """Yield the entries of one run in time order (as far as its window reaches); ``label`` names the file."""
    if run.start == 0 and run.stop is None:
        entries = iter_entries(path, order, label)
    else:
        entries = iter_entries(path, order, label, start=run.start, stop=run.stop, first_line=run.first_line)
    return _windowed(entries) if run.shuffled else entries
