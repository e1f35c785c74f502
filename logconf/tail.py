"""Follow every rank file of a run at once, including files that appear later, as one timeline.

Polling, stdlib only. Each poll reads what every file gained, keeps an unfinished last line
back until its newline arrives, and prints the records completed since the last poll in merge
order. RankFileHandler writes a record, traceback included, in one ``write``, so a record is
complete once the bytes read so far end on a newline. Records that arrive in different polls
print in arrival order.
"""

from __future__ import annotations

import collections
import heapq
import os
import time
from collections.abc import Callable, Iterator

from logconf.logfiles import Entry, EntryReader, LineReader, LogDirError, natural_key, rank_files, subsystem_of
from logconf.merge import _KEY, merge_entries

__all__ = ["Follower", "follow", "last_entries"]


class Follower:
    """Read what one file gains between polls; start over when it is replaced or truncated.

    An unfinished line is kept back, up to LINE_LIMIT bytes; a longer one is reported as
    TOO_LONG once its newline arrives.
    """

    def __init__(self, path: str, order: int, offset: int = 0) -> None:
        self.path = path
        self.order = order
        self.reader = EntryReader(path, order)
        self.lines = LineReader()
        self.offset = offset
        self.inode: int | None = None

    def poll(self) -> Iterator[Entry]:
        """Yield the entries completed by the bytes appended since the last poll."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return
        if self.inode is not None and (stat.st_ino != self.inode or stat.st_size < self.offset):
            yield from self._flush()  # replaced or truncated: read the new file from its start
            self.reader, self.lines, self.offset = EntryReader(self.path, self.order), LineReader(), 0
        self.inode = stat.st_ino
        if stat.st_size == self.offset:
            return
        with open(self.path, "rb") as file:
            file.seek(self.offset)
            for line in self.lines.read(file):
                done = self.reader.take(line)
                if done is not None:
                    yield done
            self.offset = file.tell()
        if not self.lines.unfinished:
            yield from self._flush()

    def _flush(self) -> Iterator[Entry]:
        done = self.reader.finish()
        if done is not None:
            yield done


def last_entries(directory: str, count: int, keep: Callable[[Entry], bool]) -> list[Entry]:
    """Return the last ``count`` entries of the merged timeline that ``keep`` accepts (bounded memory)."""
    return list(collections.deque((e for e in merge_entries(rank_files(directory)) if keep(e)), maxlen=count))


def follow(
    directory: str,
    count: int,
    keep: Callable[[Entry], bool],
    emit: Callable[[list[Entry]], None],
    interval: float = 0.2,
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Emit the last ``count`` entries, then, each ``interval`` seconds, the entries that arrived.

    Files that appear later in ``directory`` are read from their start. Runs until ``stop()``.
    """
    if not os.path.isdir(directory):
        raise LogDirError(f"{directory}: not a directory (tail -f follows a run's directory)")
    followers: dict[str, Follower] = {}

    def discover() -> None:
        try:
            names = sorted((n for n in os.listdir(directory) if subsystem_of(n)), key=natural_key)
        except FileNotFoundError:  # the run's directory was removed: keep waiting for it
            return
        for name in names:
            if name not in followers:
                followers[name] = Follower(os.path.join(directory, name), 0)
        for order, name in enumerate(sorted(followers, key=natural_key)):
            followers[name].order = followers[name].reader.order = order

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
