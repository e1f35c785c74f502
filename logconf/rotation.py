"""Rotate a rank file that several processes append to: one rename among them all.

The processes of a rank (engine actor, EngineCore, workers; the stdio tee) share one file, so
they must agree on one rotation:

- A writer notices the size at its periodic check (:class:`logconf.handlers.RankFileHandler`
  stats its path every ``reopen_check_s``; between checks it counts its own bytes and checks
  early once they alone would fill the file: no ``fstat`` per record). It takes an ``flock`` on
  a lock file beside the rank file (``.vllm_rank_0.log.lock``), checks again under it that the
  path is still the file it writes and still over the size, and renames it to
  ``vllm_rank_0.log.<UTC time of the rotation>`` (:func:`logconf.logfiles.rotated_name`; the lock
  file keeps the last time used, so names keep the order of rotations). It then opens a new file.
- The other writers find the path changed at their next check and move; until then their
  records land, whole, in the rotated file, which the tools read as part of the rank file. A
  process that logs nothing lets go of the rotated file within its check interval too: a thread
  per process (:func:`worker`) runs the handler's check for it (``recheck``).
- That thread also runs :func:`logconf.retention.maintain` after each rotation: compression of
  the rotated files no process has open any more, and retention (``keep``, ``dir_max_bytes``).
  Every writer holds a shared ``flock`` on the file it has open (:func:`share`), so that a
  rotated file is compressed only once no process has it open. The handler hands that upkeep to
  its :class:`Rotator`: a process whose files do not rotate never loads :mod:`logconf.retention`.

A rotation that fails (the lock file cannot be made) is reported once; the file keeps growing
until one succeeds. Nothing here ever raises into the thread that logs.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import re
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from logconf.errors import ConfigError, current_source
from logconf.reports import tell
from logconf.sources import locate
from logconf.templating import expand_arg, switch

__all__ = ["Policy", "Rotator", "parse_size", "policy", "share", "watch", "worker"]

_SIZE = r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?"  # compiled at the first size with a unit: not by every process
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
Upkeep = Callable[[str, str, "Policy"], bool]  # (directory, live name, policy) -> whether every rotated file is settled


def share(fd: int) -> bool:
    """Take the shared lock a writer holds on its file; False if a compressor holds that file (reopen the path)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        pass  # no flock here: rotated files settle by time instead (logconf.retention.UNLOCKED_QUIET_S)
    return True


# -- settings ----------------------------------------------------------------------------------


class Policy:
    """A rank file's rotation settings, resolved in this process.

    A plain class: a NamedTuple or a dataclass would compile code when this module loads, and the
    first compile() in a process costs it some 2 ms (every configured process loads this module).
    """

    __slots__ = ("compress", "dir_max_bytes", "file_mode", "keep", "max_bytes")

    def __init__(
        self, max_bytes: int, keep: int | None = None, compress: bool = True, dir_max_bytes: int = 0, file_mode: int = 0o640
    ) -> None:
        self.max_bytes = max_bytes  # the size at which the file rotates
        self.keep = keep  # rotated files kept per rank file; None: every one
        self.compress = compress
        self.dir_max_bytes = dir_max_bytes  # the whole directory's budget; 0: none
        self.file_mode = file_mode  # of a rank file that a retention record creates

    def _fields(self) -> tuple[int, int | None, bool, int, int]:
        return self.max_bytes, self.keep, self.compress, self.dir_max_bytes, self.file_mode

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Policy) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return "Policy(max_bytes={}, keep={}, compress={}, dir_max_bytes={}, file_mode={:#o})".format(*self._fields())


def parse_size(text: str, *, file: str, key: str) -> int:
    """Return a size in bytes: ``0``, ``4096``, ``64K``, ``256M``, ``1.5G`` (binary units; ``MiB``, ``MB`` alike)."""
    stripped = text.strip()
    if stripped.isdigit() and stripped.isascii():  # the defaults (0) and plain byte counts
        return int(stripped)
    match = re.fullmatch(_SIZE, stripped, re.IGNORECASE)
    if match is None:
        raise ConfigError(file, key, text, "not a size", "use a number of bytes, or one with K, M, G or T: 0, 64K, 256M, 1G")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def policy(
    rotate_bytes: str,
    rotate_keep: str,
    rotate_compress: str,
    dir_max_bytes: str,
    *,
    file_mode: int = 0o640,
    factory: str = "RankFileHandler",
) -> Policy | None:
    """Resolve a handler's rotation arguments; None when rotation is off (``rotate_bytes`` 0)."""

    def size(arg: str, template: str) -> int:
        text = expand_arg(str(template), factory=factory, arg=arg)
        try:
            return parse_size(text, file=current_source(), key=arg)
        except ConfigError as exc:
            raise ConfigError(exc.file, locate(factory, arg, template), text, exc.problem, exc.expected) from None

    max_bytes = size("rotate_bytes", rotate_bytes)
    budget = size("dir_max_bytes", dir_max_bytes)
    keep_text = expand_arg(str(rotate_keep), factory=factory, arg="rotate_keep").strip()
    keep = None if keep_text.lower() == "all" else int(keep_text) if keep_text.isdigit() else 0
    if keep is not None and keep < 1:
        raise ConfigError(
            current_source(), locate(factory, "rotate_keep", rotate_keep), keep_text, "not a number of rotated files to keep",
            "use 'all' (LOGCONF_ROTATE_KEEP's default) or a whole number of at least 1",
        )
    compress = switch(rotate_compress, factory=factory, arg="rotate_compress")
    if max_bytes == 0:
        if budget or keep is not None:  # name the setting the user gave, not the one left at its default
            arg, template, text = ("rotate_keep", rotate_keep, keep_text) if keep is not None else (
                "dir_max_bytes", dir_max_bytes, str(budget))
            raise ConfigError(
                current_source(), locate(factory, arg, template), text,
                "removes rotated files, but nothing rotates: rotate_bytes (LOGCONF_ROTATE_BYTES) is 0",
                "set rotate_bytes to a size such as 256M, or leave rotate_keep and dir_max_bytes unset",
            )
        return None
    return Policy(max_bytes, keep, compress, budget, file_mode)


# -- the writers' side: one rotation among all the processes of a rank ---------------------------


class Rotator:
    """One handler's rotation: renames its file once it is over ``max_bytes``, under the rank file's lock."""

    def __init__(self, policy: Policy, upkeep: Upkeep) -> None:
        self.policy = policy
        self.upkeep = upkeep  # logconf.retention.maintain, run by the rotation thread after each rotation
        self.max_bytes = policy.max_bytes
        self.file_mode = policy.file_mode
        self.failing = False

    def room(self, size: int) -> float:
        """Bytes the file may still grow before the next check is due (infinite while rotation fails)."""
        return math.inf if self.failing else self.max_bytes - size

    def rotate(self, path: str, identity: tuple[int, int] | None) -> bool:
        """Rotate ``path`` if it is still ``identity`` and over the size; return whether it now names another file.

        Never raises: a rotation that fails is reported once, and the file keeps growing until
        a later check succeeds.
        """
        directory, name = os.path.split(path)
        try:
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
            lock = os.open(os.path.join(directory, f".{name}.lock"), flags, self.file_mode)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    info = os.stat(path, follow_symlinks=False)
                except FileNotFoundError:
                    return True
                if (info.st_dev, info.st_ino) != identity:
                    return True  # another process rotated it first
                if info.st_size < self.max_bytes:
                    return False
                _rename(path, lock)
            finally:
                os.close(lock)  # and with it the flock
        except OSError as exc:
            if not self.failing:
                self.failing = True
                tell(f"logconf: cannot rotate {path}: {exc}; it keeps growing until rotation works again\n")
            return False
        if self.failing:
            self.failing = False
            tell(f"logconf: rotating {path} again\n")
        worker().submit(directory, name, self.policy, self.upkeep)
        return True


def _rename(path: str, lock: int) -> None:
    """Rename ``path`` to its rotated name, later than every earlier one.

    The lock file's first line holds the last rotation's time (ms) and how many rotations there
    were; its second, what retention removed in all (see :func:`_count`).
    """
    from logconf.logfiles import rotated_name

    directory, name = os.path.split(path)
    fields = os.pread(lock, 32, 0).split()
    last, count = (int(fields[0]), int(fields[1])) if len(fields) == 2 and all(f.isdigit() for f in fields) else (0, 0)
    now = max(int(time.time() * 1000), last + 1)
    while True:
        target = os.path.join(directory, rotated_name(name, now))
        if not (os.path.lexists(target) or os.path.lexists(target + ".gz")):
            break
        now += 1
    os.rename(path, target)
    os.pwrite(lock, f"{now} {count + 1}".encode().ljust(31) + b"\n", 0)


# -- a thread per process: idle writers let go, rotated files are compressed and retained -----------

_WATCH_LOCK = threading.Lock()
_WATCHED: weakref.WeakSet[Any] = weakref.WeakSet()
_WORKER: _Worker | None = None


def watch(handler: Any, check_s: float) -> None:
    """Run ``handler.recheck()`` every ``check_s`` from this process's rotation thread (a handler that logs nothing)."""
    with _WATCH_LOCK:
        _WATCHED.add(handler)
    worker().tick(check_s)


def worker() -> _Worker:
    """This process's rotation thread, started on first use (and again in a forked child)."""
    global _WORKER
    with _WATCH_LOCK:
        if _WORKER is None or _WORKER.pid != os.getpid():
            _WORKER = _Worker()
        return _WORKER


class _Worker:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.wake = threading.Condition(threading.Lock())
        self.jobs: dict[tuple[str, str], tuple[Policy, Upkeep, float]] = {}  # (directory, live name) -> policy, upkeep, due time
        self.interval = 1.0
        self.busy = False
        threading.Thread(target=self._run, name="logconf-rotation", daemon=True).start()

    def tick(self, check_s: float) -> None:
        with self.wake:
            self.interval = max(0.05, min(self.interval, check_s))

    def submit(self, directory: str, name: str, policy: Policy, upkeep: Upkeep) -> None:
        with self.wake:
            self.jobs[(directory, name)] = (policy, upkeep, 0.0)
            self.wake.notify()

    def idle(self) -> bool:
        """Whether no job is queued or running (tests wait for it)."""
        with self.wake:
            return not self.jobs and not self.busy

    def _run(self) -> None:
        import logconf.logfiles  # noqa: F401  (here, not in the first rotation's logging thread)

        while True:
            with self.wake:
                now = time.monotonic()
                due = [key for key, (_, _, at) in self.jobs.items() if at <= now]
                if not due:
                    self.wake.wait(self.interval)
                    due = [key for key, (_, _, at) in self.jobs.items() if at <= time.monotonic()]
                work = [(key, *self.jobs.pop(key)[:2]) for key in due]
                self.busy = bool(work)
                interval = self.interval
            for handler in list(_WATCHED):
                with contextlib.suppress(Exception):  # a write failure is the handler's to report, at its next record
                    handler.recheck()
            for (directory, name), policy, upkeep in work:
                try:
                    settled_all = upkeep(directory, name, policy)
                except Exception as exc:  # never let the thread die: the next rotation tries again
                    tell(f"logconf: rotation upkeep of {os.path.join(directory, name)} failed: {exc!r}\n")
                    settled_all = True
                if not settled_all:  # a rotated file still open in a writer: look again after its check
                    with self.wake:
                        self.jobs.setdefault((directory, name), (policy, upkeep, time.monotonic() + interval))
            with self.wake:
                self.busy = False


def _reset_after_fork() -> None:
    global _WATCH_LOCK
    _WATCH_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)


