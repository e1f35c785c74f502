"""Follow every rank file of a run at once, including files that appear later, as one timeline.

Polling, stdlib only. Each poll reads what every file gained, keeps an unfinished last line
back until its newline arrives, and prints the records completed since the last poll in merge
order. RankFileHandler writes a record, traceback included, in one ``write``, so a record is
complete once the bytes read so far end on a newline. Records that arrive in different polls
print in arrival order.

A rank file is followed with its rotated files (:class:`logconf.logfiles.RankSet`): when the
live file is renamed (logconf's rotation or logrotate's), the renamed file is read to its end
while the new live file is followed, and rotated files that appeared in between (several
rotations within one poll) are read whole. Descriptors come from :mod:`logconf.openfiles`, a
bounded number at once: a file whose descriptor was closed is opened again at its offset, and
found by its identity if it was renamed meanwhile (or as ``X.gz`` once compressed).
"""

from __future__ import annotations

import collections
import heapq
import os
import time
from collections.abc import Callable, Iterable, Iterator

from logconf.logfiles import (
    Entry,
    EntryReader,
    LineReader,
    LogDirError,
    RankSet,
    iter_entries,
    locate_rotated,
    natural_key,
    rank_sets,
    sets_in,
    sets_under,
    split_rotated,
)
from logconf.merge import _KEY, merge_entries
from logconf.openfiles import FileMoved, open_part

__all__ = ["Follower", "follow", "last_entries"]


class _Stream:
    """One file of a Follower: where reading stopped, its unfinished line, its pending record."""

    def __init__(self, path: str, order: int, label: str | None, offset: int = 0) -> None:
        self.path = path
        self.file = open_part(path, locate=locate_rotated(path))
        self.file.seek(offset)
        self.identity = self._identity()  # None: gone before it could be opened
        self.reader = EntryReader(path, order, label)
        self.lines = LineReader()
        self.quiet_since = time.monotonic()
        self.lost = False  # the file is no longer at its path: renamed, or rewritten in place

    def _identity(self) -> tuple[int, int] | None:
        try:
            self.file.peek(1)  # type: ignore[attr-defined]  # opens it
        except FileNotFoundError:
            return None
        return self.file.raw.identity  # type: ignore[attr-defined]

    def is_at(self, path: str) -> bool:
        """Whether ``path`` names this stream's file (its inode and first bytes: inode numbers are reused)."""
        try:
            return bool(self.file.raw.is_at(path))  # type: ignore[attr-defined]
        except (OSError, ValueError):
            return False

    def moved_to(self, path: str) -> None:
        """Read on in ``path``: the file was renamed there (or compressed to ``path.gz``)."""
        self.path = self.file.raw.path = path  # type: ignore[attr-defined]
        self.lost = False

    def read(self) -> Iterator[Entry]:
        """Yield the entries completed by what the file gained; start over if it was truncated."""
        start = self.file.tell()
        if not self.path.endswith(".gz") and self._size() < start:  # truncated in place (copytruncate)
            yield from self._restart()
            start = 0
        try:
            for line in self.lines.read(self.file):
                done = self.reader.take(line)
                if done is not None:
                    yield done
        except FileMoved:  # its descriptor was closed, and its path holds another file now
            self.lost = True
            return  # the poll finds out where it went
        if self.file.tell() != start:
            self.quiet_since = time.monotonic()
        if not self.lines.unfinished:  # a record is written whole: bytes that end on a newline end it
            done = self.reader.finish()
            if done is not None:
                yield done

    def _size(self) -> int:
        try:
            return self.file.raw.size()  # type: ignore[attr-defined]
        except OSError:
            return self.file.tell()

    def same_inode(self) -> bool:
        """Whether the path still names this file's inode (after ``lost``: truncated and written again)."""
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return False
        return (info.st_dev, info.st_ino) == self.identity

    def _restart(self) -> Iterator[Entry]:
        yield from self.finish()
        self.file.close()
        self.file = open_part(self.path, locate=locate_rotated(self.path))
        self.reader = EntryReader(self.reader.file, self.reader.order, self.reader.file)
        self.lost = False

    def reread(self) -> Iterator[Entry]:
        """Read the file again from its start: it was truncated in place (copytruncate) and written again."""
        yield from self._restart()
        yield from self.read()

    def finish(self) -> Iterator[Entry]:
        """Yield what is left of a file that will not grow: its unfinished line (torn), its pending record."""
        last = self.lines.finish()
        if last is not None and (done := self.reader.take(last, whole=False)) is not None:
            yield done
        done = self.reader.finish()
        if done is not None:
            yield done

    def close(self) -> None:
        self.file.close()


class Follower:
    """Read what one rank file gains between polls, across truncation and rotation.

    The live file is read at ``path``. When logconf's rotation renames it, the rotated files
    that appeared since the last poll say so (their names are the times of the rotations, in
    order, and never change): the first is the file being read, which is read on there (or in
    its ``.gz``) as long as it grows, and let go once quiet for ``linger_s`` seconds
    (RankFileHandler notices a rename within its ``reopen_check_s``, 1 s by default, and until
    then keeps writing to the old file); the others, rotated between two polls, are read from
    their start. A rename by logrotate is noticed by the path naming another file; the renamed
    file is found by its identity. A file truncated in place is read again from its start. An
    unfinished line is kept back, up to LINE_LIMIT bytes; a longer one is reported as TOO_LONG
    once its newline arrives.
    """

    def __init__(
        self,
        path: str,
        order: int,
        offset: int = 0,
        linger_s: float = 5.0,
        label: str | None = None,
        found: RankSet | None = None,
    ) -> None:
        self.path = path
        self.label = label  # the file as entries name it (node/name in a gathered directory)
        self._order = order
        self.offset = offset  # where to start reading the first file this follower opens
        self.linger_s = linger_s
        self.current: _Stream | None = None
        self.retired: list[_Stream] = []  # files renamed away, read until they go quiet
        self.known = {_plain(p) for p in self._rotated(found)}  # there before: history, not news

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

    def _rotated(self, found: RankSet | None) -> tuple[str, ...]:
        if found is None:
            directory, name = os.path.split(self.path)
            found = sets_in(directory, stdio=True).get(name)
        return found.rotated if found else ()

    def _label(self, path: str) -> str:
        node = (self.label or "").rpartition("/")[0]
        return f"{node}/{os.path.basename(path)}" if node else os.path.basename(path)

    def poll(self, found: RankSet | None = None) -> Iterator[Entry]:
        """Yield the entries completed by the bytes appended since the last poll.

        ``found`` is this rank file's set as listed for this poll (listed here if not given).
        Files renamed away are read in the same poll as the new live file, so that a writer's
        records in the old file never come out a poll later than its newer ones.
        """
        self._look(found)
        listed_inode = found.live_inode if found is not None else 0
        current = self.current
        if current is not None:
            yield from current.read()
            if current.lost:  # renamed since the listing (look again), or truncated in place and written again
                self._look(None)
                if self.current is current and current.same_inode():
                    yield from current.reread()
        if os.path.exists(self.path) and (self.current is None or not self.current.is_at(self.path)):
            stream = _Stream(self.path, self._order, self.label, self.offset)
            if stream.identity is None or (self.current is not None and self.current.is_at(self.path)):
                stream.close()  # gone again, or the current one after all
            else:
                if self.current is not None:
                    self._retire(self.current)  # renamed by logrotate: its reader finds it by its identity
                self.current, self.offset = stream, 0
                if stream.identity[1] != listed_inode:  # rotated since the listing: files older than it appeared
                    self._look(None)
                yield from stream.read()
        now = time.monotonic()
        for stream in list(self.retired):
            yield from stream.read()
            if stream.path.endswith(".gz") or now - stream.quiet_since >= self.linger_s:
                yield from stream.finish()
                stream.close()
                self.retired.remove(stream)

    def _look(self, found: RankSet | None) -> None:
        """Place the rotated files that logconf made since the last look (``found``: this poll's listing)."""
        fresh = [p for p in self._rotated(found) if _plain(p) not in self.known and _stamped(p)]
        if fresh:
            self.known.update(map(_plain, fresh))
            self._place(fresh)

    def _place(self, fresh: list[str]) -> None:
        """Follow the files being read that were renamed into ``fresh``; read the rest of ``fresh`` from their start."""
        streams = [*self.retired, *([self.current] if self.current else [])]
        renamed = [s for s in streams if s.path == self.path and not s.is_at(self.path)]
        for stream in renamed:
            found = next((p for p in fresh if not p.endswith(".gz") and stream.is_at(p)), None)
            if found is None and fresh:
                found = fresh[0]  # compressed already: it is the oldest of the new ones
            if found is not None:
                fresh.remove(found)
                stream.moved_to(_plain(found))
            if stream is self.current:
                self._retire(stream)
                self.current = None
        self.retired += [_Stream(p, self._order, self._label(p)) for p in fresh]

    def _retire(self, stream: _Stream) -> None:
        stream.quiet_since = time.monotonic()  # give writers that still hold it linger_s from now
        self.retired.append(stream)

    def close(self) -> None:
        """Close the files this follower holds open (what they still hold back is dropped)."""
        for stream in self._streams():
            stream.close()
        self.current, self.retired = None, []

    def __enter__(self) -> Follower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _plain(path: str) -> str:
    return path.removesuffix(".gz")


def _stamped(path: str) -> bool:
    rotated = split_rotated(os.path.basename(path))
    return rotated is not None and rotated.stamped


def _count(path: str, keep: Callable[[Entry], bool]) -> int:
    return sum(1 for entry in iter_entries(path) if keep(entry))


def _history(found: RankSet, count: int, keep: Callable[[Entry], bool], live: bool = True) -> list[str]:
    """The newest files of a set that hold its last ``count`` records ``keep`` accepts, plus the one before
    them (laggard writers' records overlap the boundary); ``live`` False leaves the live file out."""
    paths = found.paths
    chosen: list[str] = []
    seen = 0
    for index in range(len(paths) - 1, -1, -1):
        if paths[index] != found.live or live:
            chosen.insert(0, paths[index])
        if seen >= count or index == 0:
            break
        seen += _count(paths[index], keep)
    return chosen


def last_entries(directory: str, count: int, keep: Callable[[Entry], bool]) -> list[Entry]:
    """Return the last ``count`` entries of the merged timeline that ``keep`` accepts (bounded memory).

    Of a rotated rank file only the newest files that hold its last ``count`` such entries are
    read (and the one before them), not its whole history.
    """
    paths = [path for found in rank_sets(directory) for path in _history(found, count, keep)]
    return list(collections.deque((e for e in merge_entries(paths, directory) if keep(e)), maxlen=count))


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

    def discover() -> dict[str, RankSet]:
        listed = {found.name: found for found in sets_under(directory)}  # {} while the directory is removed
        for name in listed:
            if name not in followers:
                followers[name] = Follower(os.path.join(directory, name), 0, label=name, found=listed[name])
        for order, name in enumerate(sorted(followers, key=natural_key)):
            followers[name].order = order
        return listed

    try:
        listed = discover()
        history: Iterable[Entry] = ()
        if count:  # the rotated files that hold part of the last `count` records
            older = [path for found in listed.values() for path in _history(found, count, keep, live=False)]
            history = merge_entries(older, directory)
        first = heapq.merge(history, *(f.poll(listed.get(n)) for n, f in followers.items()), key=_KEY)
        emit(list(collections.deque((e for e in first if keep(e)), maxlen=count)))  # maxlen 0 still reads to the end
        while not stop():
            time.sleep(interval)
            listed = discover()
            batch = [e for name, f in followers.items() for e in f.poll(listed.get(name)) if keep(e)]
            if batch:
                batch.sort(key=_KEY)
                emit(batch)
    finally:
        for follower in followers.values():
            follower.close()
