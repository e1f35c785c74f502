"""Records held while a Ray actor's rank is unknown: on disk as they are logged, in memory for their rank.

A Ray actor may be told its rank in ``__init__`` (``logconf.set_rank``, or a framework's set-up):
until then its records wait here, so that they land in that rank's file, with that rank. Each
held record is also written at once, with one ``write(2)``, to a spill file beside the rank
files: the rank file's name with the rank ``held-<pid>`` (``vllm_rank_held-4242.log``), its lines
carrying that rank, so that ``summary``, ``merge``, ``tail`` and ``gather`` read it as one more
rank file. A process that dies in the hold (SIGKILL, a native crash, ``os._exit``) leaves its
records there. The hold ends when the rank is told, when the hold time is over (a timer: no
record needs to come along), when it is full (by count or by bytes) and at exit: the frozen
copies are then formatted with the rank known, appended to its file in one ``write(2)``, and
the spill file is removed. Between that write and the removal (microseconds) a killed process
leaves the records in both files; nothing is lost.

One hold serves every handler of this process that writes the same rank file: a library's
``dictConfig`` (vLLM >= 0.31 re-applying its JSON, uvicorn) closes the handlers and builds new
ones, which join the hold their predecessors started, so the records stay in one order. A
forked child holds nothing: the parent writes what it held, and the child, which may end with
``os._exit`` (multiprocessing's do), writes its own records at once.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from logconf.reports import caller_error

__all__ = ["MAX_BYTES", "MAX_RECORDS", "Holder", "RecordHold", "forget_all", "holding", "join", "release", "spill_rank"]

MAX_RECORDS = 10_000
MAX_BYTES = 8 << 20  # of message, traceback and stack text: 800 records of 128 KiB must not hold 100 MiB
_RECORD_BYTES = 512  # what a frozen LogRecord costs besides its text
_SPILL_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

Entry = tuple["Holder", logging.LogRecord]  # who took a record, and its frozen copy


def spill_rank(attempt: int = 0) -> str:
    """Return the rank a held record's spill file is named with: ``held-<pid>``, then ``held-<pid>-2``..."""
    return f"held-{os.getpid()}" if attempt == 0 else f"held-{os.getpid()}-{attempt + 1}"


def freeze(record: logging.LogRecord) -> logging.LogRecord:
    """Return a copy of ``record`` whose message and traceback are text now: later changes must not show."""
    frozen = logging.makeLogRecord(record.__dict__)
    frozen.msg, frozen.args = record.getMessage(), None
    if record.exc_info and not record.exc_text:
        frozen.exc_text = logging.Formatter().formatException(record.exc_info)
    frozen.exc_info = None
    return frozen


def size_of(record: logging.LogRecord) -> int:
    """Return about how many bytes a frozen record holds."""
    return _RECORD_BYTES + len(record.msg) + len(record.exc_text or "") + len(record.stack_info or "")


class RecordHold:
    """The records this process holds for one rank file, in order, and the spill file that keeps them on disk.

    ``spill_path(rank)`` gives the spill file's path for a rank such as ``held-4242``; ``writers``
    are the :class:`Holder` of each handler that joined, newest last (kept alive until the hold
    ends: a handler that a later ``dictConfig`` replaced still formats the records it took).
    """

    def __init__(self, key: str, spill_path: Callable[[str], str], file_mode: int, seconds: float) -> None:
        self.key = key
        self.spill_path = spill_path
        self.file_mode = file_mode
        self.seconds = seconds
        self.until: float | None = None  # the hold time counts from the first record held
        self._due: Callable[[RecordHold], None] | None = None
        self.entries: list[Entry] = []
        self.bytes = 0
        self.writers: list[Holder] = []
        self.ended = False
        self.lock = threading.Lock()  # innermost: taken under a handler's lock, never the other way
        self.path: str | None = None  # the spill file, once a record needed it
        self.rank = spill_rank()
        self._fd: int | None = None
        self._timer: threading.Timer | None = None

    def line_rank(self) -> str | None:
        """Open the spill file if it is not open yet; return the rank its lines carry (None: no spill file)."""
        with self.lock:
            if self._fd is None and self.path is None and not self.ended:
                self._open()
            return self.rank if self._fd is not None else None

    def _open(self) -> None:
        for attempt in range(100):  # a file of a dead process that had this pid is not ours to append to or remove
            rank = spill_rank(attempt)
            try:
                path = self.spill_path(rank)
                fd = os.open(path, _SPILL_FLAGS, self.file_mode)
            except OSError as exc:
                if exc.errno == errno.EEXIST:
                    continue
                break  # a spill that cannot be written: the records are still held in memory
            except Exception:
                break  # the rank file's templates no longer resolve: likewise
            self.path, self.rank, self._fd = path, rank, fd
            return
        self.path = ""  # tried: do not try again on every record

    def handlers(self) -> list[Any]:
        """Return the handlers that joined this hold."""
        return [writer.handler for writer in self.writers]

    def add(self, owner: Holder, record: logging.LogRecord, line: bytes | None) -> bool | None:
        """Hold ``record`` (frozen) for ``owner`` and append ``line`` to the spill file.

        Return whether the hold must end now (full, or its time is over), or None when it has
        ended already: the caller writes the record itself.
        """
        with self.lock:
            if self.ended:
                return None
            if line is not None and self._fd is not None:
                with contextlib.suppress(OSError):  # a full disk: the copy in memory still reaches the rank file
                    os.write(self._fd, line)
            self.entries.append((owner, record))
            self.bytes += size_of(record)
            until = self.until if self.until is not None else self._start_timer()
            return len(self.entries) >= MAX_RECORDS or self.bytes >= MAX_BYTES or time.monotonic() >= until

    def end(self, write: Callable[[list[Entry]], bool]) -> None:
        """End the hold: ``write`` the held records to their rank's file; once it says they are written, remove the spill."""
        with self.lock:
            if self.ended:
                return
            self.ended = True
            _forget(self)
            if self._timer is not None:
                self._timer.cancel()
            entries, self.entries, self.bytes = self.entries, [], 0
            try:
                written = write(entries) if entries else True
            except Exception:
                written = False  # the spill file keeps them
            self._close(remove=written)
            self.writers = []

    def _close(self, remove: bool) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if remove and self.path:
                info, there = os.fstat(fd), os.stat(self.path, follow_symlinks=False)
                if (info.st_dev, info.st_ino) == (there.st_dev, there.st_ino):  # still ours, not a newcomer's
                    os.unlink(self.path)
        except OSError:
            pass
        finally:
            os.close(fd)

    def abandon(self) -> None:
        """In a fork child: hold nothing, and leave the parent's spill file to the parent."""
        self.lock = threading.Lock()  # another thread may have held it at the fork
        self.ended, self.entries, self.writers = True, [], []
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def when_due(self, due: Callable[[RecordHold], None]) -> None:
        """Call ``due(self)`` in a daemon thread once the hold time is over, counted from the first record held.

        A Ray worker configured at its start may wait long (an idle worker Ray started ahead, a busy
        machine) before it is given an actor and the actor's ``__init__`` logs and learns its rank:
        that wait holds nothing, and must not use up the hold.
        """
        self._due = due

    def _start_timer(self) -> float:
        """Start the hold time now; return when it is over."""
        self.until = until = time.monotonic() + self.seconds
        if self._due is None:
            return until
        timer = threading.Timer(self.seconds, self._due, args=(self,))
        timer.daemon = True
        timer.name = "logconf-rank-hold"
        self._timer = timer
        timer.start()
        return until


class Holder:
    """One rank file handler's part in a hold: what it spills, and how it writes what was held.

    ``handler`` is a :class:`logconf.handlers.RankFileHandler`; this class uses its plan, path,
    formatter, lock, ``_encode``, ``_append`` and ``handleError``.
    """

    def __init__(self, handler: Any, held: RecordHold) -> None:
        self.handler, self.held = handler, held
        self._spill_format: tuple[Any, str, Any] | None = None

    @classmethod
    def join(cls, handler: Any, due: Callable[[RecordHold], None]) -> Holder | None:
        """Join (or start) the hold of the file ``handler`` writes; None where this process holds no more."""
        plan = handler._plan
        key = spill_path(handler, spill_rank())
        held = join(key, lambda rank: spill_path(handler, rank), plan.file_mode, plan.hold_s, due)
        if held is None:
            return None
        holder = cls(handler, held)
        held.writers.append(holder)
        return holder

    def take(self, record: logging.LogRecord) -> bool:
        """Hold ``record``: in the spill file now, in memory for its rank; False once the hold has ended."""
        held = self.held
        frozen = freeze(record)
        rank = held.line_rank()
        must_end = held.add(self, frozen, None if rank is None else self.spill_line(frozen, rank))
        if must_end is None:  # ended meanwhile, by another handler of the same file
            return False
        if must_end:  # full, or the hold time is over
            held.end(self.write)
        return True

    def spill_line(self, record: logging.LogRecord, rank: str) -> bytes:
        """``record`` as a line of the spill file: the handler's format, with the spill's rank."""
        formatter = self.handler.formatter
        cached = self._spill_format
        if cached is None or cached[0] is not formatter or cached[1] != rank:
            with_rank = getattr(formatter, "with_rank", None)
            cached = self._spill_format = (formatter, rank, with_rank(rank) if with_rank else formatter)
        line = cached[2].format(record) if cached[2] is not None else self.handler.format(record)
        return (line + "\n").encode("utf-8", "backslashreplace")

    def write(self, entries: list[Entry]) -> bool:
        """Append held records, each formatted by the handler that took it, in one write; return whether they are written.

        The caller holds the handler's lock.
        """
        chunks = []
        for owner, record in entries:
            try:
                chunks.append(owner.handler._encode(record))
            except Exception as exc:
                caller_error(record, exc)
        if not chunks:
            return True
        try:
            self.handler._append(b"".join(chunks))
        except Exception:
            self.handler.handleError(entries[-1][1])
            return False
        return True


def spill_path(handler: Any, rank: str) -> str:
    """The path ``handler``'s templates give for ``rank`` (a spill file's), beside its own."""
    plan = copy.copy(handler._plan)  # resolve() also notes the filesystem it found: not in the handler's plan
    path = plan.resolve({**os.environ, "LOGCONF_RANK": rank, "RANK": rank})
    if path == handler.path:  # a file name without the rank: the spill file is named beside it
        stem, ext = os.path.splitext(path)
        path = f"{stem}.{rank}{ext}"
    return path


def release(held: RecordHold) -> None:
    """End ``held``: its records go to the rank's file through the newest handler that joined it."""
    writers = list(held.writers)
    if writers:
        with writers[-1].handler.lock:  # a handler's lock before the hold's, as when a record is logged
            held.end(writers[-1].write)


# This process's holds, one per rank file (keyed by the spill path for rank held-<pid>), and the
# keys whose hold has ended: a handler built later for the same file writes at once.
_HOLDS: dict[str, RecordHold] = {}
_ENDED: set[str] = set()
_REGISTRY = threading.Lock()
_FORKED = False


def join(
    key: str, paths: Callable[[str], str], file_mode: int, seconds: float, due: Callable[[RecordHold], None]
) -> RecordHold | None:
    """Return the hold for the rank file ``key`` names, started now if there is none; None if it has ended."""
    with _REGISTRY:
        if _FORKED or key in _ENDED:
            return None
        held = _HOLDS.get(key)
        if held is None:
            held = _HOLDS[key] = RecordHold(key, paths, file_mode, seconds)
            held.when_due(due)
        return held


def holding() -> list[RecordHold]:
    """Return the holds that have not ended, oldest first."""
    with _REGISTRY:
        return list(_HOLDS.values())


def _forget(held: RecordHold) -> None:
    with _REGISTRY:
        if _HOLDS.get(held.key) is held:
            del _HOLDS[held.key]
        _ENDED.add(held.key)


def forget_all() -> None:
    """Drop every hold without writing it, as if this process had never held (tests start clean)."""
    global _FORKED
    with _REGISTRY:
        holds = list(_HOLDS.values())
        _HOLDS.clear()
        _ENDED.clear()
        _FORKED = False
    for held in holds:
        if held._timer is not None:
            held._timer.cancel()
        held.abandon()


def _after_fork_in_child() -> None:
    global _FORKED, _REGISTRY
    _REGISTRY = threading.Lock()
    _FORKED = True
    for held in _HOLDS.values():
        held.abandon()
    _HOLDS.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
