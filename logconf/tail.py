"""Follow every rank file of a run at once, including files that appear later, as one timeline.

Polling, stdlib only. Each poll reads what every file gained, keeps an unfinished last line
back until its newline arrives, and prints the records completed since the last poll in merge
order. RankFileHandler writes a record, traceback included, in one ``write``, so a record is
complete once the bytes read so far end on a newline. Records that arrive in different polls
print in arrival order. Files stay open, so a file that logrotate renames is read to its end
while the new file at its path is followed.
"""

from __future__ import annotations

import collections
import heapq
import os
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

from logconf.logfiles import Entry, EntryReader, LineReader, LogDirError, natural_key, rank_files, rank_names
from logconf.merge import _KEY, merge_entries

__all__ = ["Follower", "follow", "last_entries"]


class _Stream:
    """One open file of a Follower: where reading stopped, its unfinished line, its pending record."""

    def __init__(self, path: str, order: int, file: BinaryIO, label: str | None = None) -> None:
        self.file = file
        info = os.fstat(file.fileno())
        self.identity = (info.st_dev, info.st_ino)
        self.reader = EntryReader(path, order, label)
        self.lines = LineReader()
        self.quiet_since = time.monotonic()

    def read(self) -> Iterator[Entry]:
        """Yield the entries completed by what the file gained; start over if it was truncated."""
        start = self.file.tell()
        if os.fstat(self.file.fileno()).st_size < start:  # truncated in place (copytruncate)
            yield from self.finish()
            self.file.seek(0)
            self.reader, start = EntryReader(self.reader.file, self.reader.order, self.reader.file), 0
        for line in self.lines.read(self.file):
            done = self.reader.take(line)
            if done is not None:
                yield done
        if self.file.tell() != start:
            self.quiet_since = time.monotonic()
        if not self.lines.unfinished:  # a record is written whole: bytes that end on a newline end it
            done = self.reader.finish()
            if done is not None:
                yield done

    def finish(self) -> Iterator[Entry]:
        """Yield what is left of a file that will not grow: its unfinished line (torn), its pending record."""
        last = self.lines.finish()
        if last is not None and (done := self.reader.take(last, whole=False)) is not None:
            yield done
        done = self.reader.finish()
        if done is not None:
            yield done


class Follower:
    """Read what one file gains between polls, across truncation and rotation.

    The file stays open, so a file renamed away (logrotate) is read to its end: after the
    path names a new file, the old one is still read for as long as it grows, and closed once
    it has been quiet for ``linger_s`` seconds (RankFileHandler notices a rename within its
    ``reopen_check_s``, 1 s by default, and until then keeps writing to the old file). A file
    truncated in place is read again from its start. An unfinished line is kept back, up to
    LINE_LIMIT bytes; a longer one is reported as TOO_LONG once its newline arrives.
    """

    def __init__(self, path: str, order: int, offset: int = 0, linger_s: float = 5.0, label: str | None = None) -> None:
        self.path = path
        self.label = label  # the file as entries name it (node/name in a gathered directory)
        self._order = order
        self.offset = offset  # where to start reading the first file this follower opens
        self.linger_s = linger_s
        self.current: _Stream | None = None
        self.retired: list[_Stream] = []  # files renamed away, read until they go quiet

    @property
    def order(self) -> int:
        """The file's place in the natural order of the directory's names (merge's tie order)."""
        return self._order

    @order.setter
    def order(self, order: int) -> None:
        self._order = order
        for stream in self._streams():
            stream.reader.order = order

    def _streams(self) -> list[_Stream]:
        return [*([self.current] if self.current else []), *self.retired]

    def poll(self) -> Iterator[Entry]:
        """Yield the entries completed by the bytes appended since the last poll.

        The current file is read first and files renamed away last, so that a writer's records
        in the old file never come out a poll later than its newer ones in the new file.
        """
        current = self.current
        if current is not None:
            yield from current.read()
        try:
            info = os.stat(self.path)
        except FileNotFoundError:  # renamed away and not yet replaced, or not yet created
            info = None
        if info is not None and (current is None or (info.st_dev, info.st_ino) != current.identity):
            fresh = self._open(current)
            if fresh is not None:
                if current is not None:
                    current.quiet_since = time.monotonic()  # give writers that still hold it linger_s from now
                    self.retired.append(current)
                self.current = fresh
                yield from fresh.read()
        now = time.monotonic()
        for stream in list(self.retired):
            yield from stream.read()
            if now - stream.quiet_since >= self.linger_s:
                yield from stream.finish()
                stream.file.close()
                self.retired.remove(stream)

    def _open(self, current: _Stream | None) -> _Stream | None:
        """Open the file at the path now, unless it is gone again or is the current one after all."""
        try:
            file = open(self.path, "rb")  # kept open across polls: close() closes it
        except FileNotFoundError:
            return None
        stream = _Stream(self.path, self._order, file, self.label)
        if current is not None and stream.identity == current.identity:
            file.close()
            return None
        if current is None and self.offset:
            file.seek(self.offset)
        return stream

    def close(self) -> None:
        """Close the files this follower holds open (what they still hold back is dropped)."""
        for stream in self._streams():
            stream.file.close()
        self.current, self.retired = None, []

    def __enter__(self) -> Follower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def last_entries(directory: str, count: int, keep: Callable[[Entry], bool]) -> list[Entry]:
    """Return the last ``count`` entries of the merged timeline that ``keep`` accepts (bounded memory)."""
    return list(collections.deque((e for e in merge_entries(rank_files(directory), directory) if keep(e)), maxlen=count))


def follow(
    directory: str,
    count: int,
    keep: Callable[[Entry], bool],
    emit: Callable[[list[Entry]], None],
    interval: float = 0.2,
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Emit the last ``count`` entries, then, each ``interval`` seconds, the entries that arrived.

    Files that appear later in ``directory`` are read from their start. A gathered directory
    (one subdirectory per node) is followed as such, and grows as ``logconf gather`` runs again.
    Runs until ``stop()``.
    """
    if not os.path.isdir(directory):
        raise LogDirError(f"{directory}: not a directory (tail -f follows a run's directory)")
    followers: dict[str, Follower] = {}

    def discover() -> None:
        names = rank_names(directory)  # [] while the run's directory is removed: keep waiting for it
        for name in names:
            if name not in followers:
                followers[name] = Follower(os.path.join(directory, name), 0, label=name)
        for order, name in enumerate(sorted(followers, key=natural_key)):
            followers[name].order = order

    try:
        discover()
        first = heapq.merge(*(f.poll() for f in followers.values()), key=_KEY)
        emit(list(collections.deque((e for e in first if keep(e)), maxlen=count)))  # maxlen 0 still reads to the end
        while not stop():
            time.sleep(interval)
            discover()
            batch = [e for f in followers.values() for e in f.poll() if keep(e)]
            if batch:
                batch.sort(key=_KEY)
                emit(batch)
    finally:
        for follower in followers.values():
            follower.close()
