"""Rotate a rank file that several processes append to, compress what was rotated, keep the disk bounded.

The processes of a rank (engine actor, EngineCore, workers; the stdio tee) share one file, so
they must agree on one rotation. The protocol:

- *Rotate*: a writer notices the size at its periodic check (:class:`logconf.handlers.RankFileHandler`
  stats its path every ``reopen_check_s``; between checks it counts its own bytes and checks
  early once they alone would fill the file: no ``fstat`` per record). It takes an ``flock`` on
  a lock file beside the rank file (``.vllm_rank_0.log.lock``), checks again under it that the
  path is still the file it writes and still over the size, and renames it to
  ``vllm_rank_0.log.<UTC time of the rotation>`` (:func:`logconf.logfiles.rotated_name`; the lock
  file keeps the last time used, so names keep the order of rotations). It then opens a new file.
  The other writers find the path changed at their next check and move; until then their
  records land, whole, in the rotated file, which the tools read as part of the rank file.
- *Who still writes a rotated file*: every writer holds a shared ``flock`` on the file it has
  open, from open to close (:func:`share`). A rotated file is compressed or removed only under an
  exclusive ``flock`` taken without waiting, so only once no process has it open: none can append
  to it afterwards (writers open the live path only). A process that logs nothing lets go within
  its check interval too: this module's thread runs the handler's check for it (:meth:`recheck`).
  Where the filesystem has no ``flock`` (some network filesystems), a rotated file is taken as
  settled once unchanged for UNLOCKED_QUIET_S seconds.
- *Compress*: in a thread of the process that rotated (never the thread that logs), into
  ``X.gz.tmp``, synced, renamed to ``X.gz``, then ``X`` is removed: a crash leaves ``X``, or ``X``
  and a complete ``X.gz`` (the tools read only ``X`` then, and the next pass removes it), never
  neither. A stale ``X.gz.tmp`` (its compressor died) is removed by the next pass.
- *Retain*: ``keep`` rotated files per rank file, and ``dir_max_bytes`` for the whole directory
  (live files included), removing rotated files oldest first, never a live one, and never one a
  process still has open. Each removal is written as a WARNING record of logger
  ``logconf.rotation`` into the rank file that lost history (``summary`` adds them up).

Only files named by logconf's own rotation are compressed or removed: logrotate's stay its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import logging
import math
import os
import re
import stat
import threading
import time
import weakref
import zlib
from dataclasses import dataclass
from typing import Any

from logconf.errors import ConfigError, current_source
from logconf.reports import tell
from logconf.sources import locate
from logconf.templating import expand_arg, switch

__all__ = ["LEVEL", "UNLOCKED_QUIET_S", "Policy", "Rotator", "compress", "maintain", "parse_size", "policy", "settled", "share"]

LEVEL = 1  # gzip level of rotated files: logs compress nearly as well as at 6, several times faster (make bench)
UNLOCKED_QUIET_S = 60.0  # without flock: a rotated file this long unchanged is taken as settled
_CHUNK = 1 << 20
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_BUDGET_LOCK = ".logconf-retention.lock"


# -- settings ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """A rank file's rotation settings, resolved in this process."""

    max_bytes: int  # the size at which the file rotates
    keep: int | None = None  # rotated files kept per rank file; None: every one
    compress: bool = True
    dir_max_bytes: int = 0  # the whole directory's budget; 0: none
    file_mode: int = 0o640  # of a rank file that a retention record creates


def parse_size(text: str, *, file: str, key: str) -> int:
    """Return a size in bytes: ``0``, ``4096``, ``64K``, ``256M``, ``1.5G`` (binary units; ``MiB``, ``MB`` alike)."""
    match = _SIZE.fullmatch(text.strip())
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
        if budget or keep is not None:
            raise ConfigError(
                current_source(), locate(factory, "rotate_bytes", rotate_bytes), "0",
                "is needed by rotate_keep and dir_max_bytes: they remove rotated files, and nothing rotates",
                "set rotate_bytes (LOGCONF_ROTATE_BYTES) to a size such as 256M, or leave the others unset",
            )
        return None
    return Policy(max_bytes, keep, compress, budget, file_mode)


# -- the writers' side: one rotation among all the processes of a rank ---------------------------


def share(fd: int) -> bool:
    """Take the shared lock a writer holds on its file; False if a compressor holds that file (reopen the path)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        pass  # no flock here: rotated files settle by time instead (UNLOCKED_QUIET_S)
    return True


class Rotator:
    """One handler's rotation: renames its file once it is over ``max_bytes``, under the rank file's lock."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
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
        worker().submit(directory, name, self.policy)
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
        self.jobs: dict[tuple[str, str], tuple[Policy, float]] = {}  # (directory, live name) -> policy, due time
        self.interval = 1.0
        self.busy = False
        threading.Thread(target=self._run, name="logconf-rotation", daemon=True).start()

    def tick(self, check_s: float) -> None:
        with self.wake:
            self.interval = max(0.05, min(self.interval, check_s))

    def submit(self, directory: str, name: str, policy: Policy) -> None:
        with self.wake:
            self.jobs[(directory, name)] = (policy, 0.0)
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
                due = [key for key, (_, at) in self.jobs.items() if at <= now]
                if not due:
                    self.wake.wait(self.interval)
                    due = [key for key, (_, at) in self.jobs.items() if at <= time.monotonic()]
                work = [(key, self.jobs.pop(key)[0]) for key in due]
                self.busy = bool(work)
                interval = self.interval
            for handler in list(_WATCHED):
                with contextlib.suppress(Exception):  # a write failure is the handler's to report, at its next record
                    handler.recheck()
            for (directory, name), policy in work:
                try:
                    settled_all = maintain(directory, name, policy)
                except Exception as exc:  # never let the thread die: the next rotation tries again
                    tell(f"logconf: rotation upkeep of {os.path.join(directory, name)} failed: {exc!r}\n")
                    settled_all = True
                if not settled_all:  # a rotated file still open in a writer: look again after its check
                    with self.wake:
                        self.jobs.setdefault((directory, name), (policy, time.monotonic() + interval))
            with self.wake:
                self.busy = False


def _reset_after_fork() -> None:
    global _WATCH_LOCK
    _WATCH_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)


# -- compression and retention ----------------------------------------------------------------------

_HELD, _DONE = "held", "done"


def _exclusive(fd: int, path: str) -> bool:
    """Take the exclusive lock that says no writer has ``path`` open; without flock, judge by its age."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError:
        return time.time() - os.fstat(fd).st_mtime >= UNLOCKED_QUIET_S


def settled(path: str) -> bool:
    """Whether a rotated file can no longer change: compressed, or open in no writer (it is never written again)."""
    if path.endswith(".gz"):
        return True
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        return _exclusive(fd, path)
    finally:
        os.close(fd)  # and the lock with it


def compress(path: str) -> str:
    """Compress the rotated file ``path`` into ``path.gz`` once no writer has it open; ``held`` if one still has."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return _DONE
    try:
        if not _exclusive(fd, path):
            return _HELD
        target = path + ".gz"
        if os.path.exists(target):  # a compression that stopped before removing the plain file
            os.unlink(path)
            return _DONE
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        temporary = target + ".tmp"
        out = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
        try:
            try:
                fcntl.flock(out, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return _HELD  # another process compresses it
            except OSError:
                pass
            os.ftruncate(out, 0)
            os.fchmod(out, mode)
            deflate = zlib.compressobj(LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            while data := os.read(fd, _CHUNK):
                _write_all(out, deflate.compress(data))
            _write_all(out, deflate.flush())
            os.fsync(out)
            os.rename(temporary, target)
        finally:
            os.close(out)
        _sync_directory(os.path.dirname(path))
        os.unlink(path)
        return _DONE
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _sync_directory(directory: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory or ".", os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _log_bytes(path: str, disk: int) -> int:
    """A rotated file's bytes of log: its size, or a compressed file's size as its gzip trailer records it."""
    if not path.endswith(".gz"):
        return disk
    try:
        with open(path, "rb") as file:
            file.seek(-4, os.SEEK_END)
            return int.from_bytes(file.read(4), "little")  # modulo 4 GiB: rotated files are smaller
    except OSError:
        return 0


def _remove(path: str) -> tuple[str, int, int] | None:
    """Remove a rotated file no writer has open; return (name, bytes of log, bytes on disk), or None if held."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    try:
        if not path.endswith(".gz") and not _exclusive(fd, path):
            return None
        disk = os.fstat(fd).st_size
        found = (os.path.basename(path), _log_bytes(path, disk), disk)
        os.unlink(path)
        return found
    finally:
        os.close(fd)


def maintain(directory: str, name: str, policy: Policy) -> bool:
    """Compress, clean up and retain the rotated files of ``name`` in ``directory``; False if some are still open."""
    from logconf.logfiles import sets_in

    _remove_stale(directory, name)
    found = sets_in(directory, stdio=True).get(name)
    ours = [p for p in (found.rotated if found else ()) if _ours(p)]
    everything_settled = True
    if policy.keep is not None and len(ours) > policy.keep:
        removed = []
        for path in ours[: len(ours) - policy.keep]:
            gone = _remove(path)
            if gone is None:
                everything_settled = False
                break  # never remove a newer file while an older one stays
            removed.append(gone)
        _report(directory, name, removed, f"to keep {policy.keep} rotated files (LOGCONF_ROTATE_KEEP)", policy)
        ours = [p for p in ours if os.path.lexists(p)]
    if policy.compress:
        for path in ours:
            if not path.endswith(".gz") and compress(path) == _HELD:
                everything_settled = False
    if policy.dir_max_bytes:
        _keep_budget(directory, policy)
    return everything_settled


def _ours(path: str) -> bool:
    """Whether logconf's rotation named this rotated file (logrotate's are left to logrotate)."""
    from logconf.logfiles import split_rotated

    rotated = split_rotated(os.path.basename(path))
    return rotated is not None and rotated.stamped


def _remove_stale(directory: str, name: str) -> None:
    """Remove ``X.gz.tmp`` files of ``name`` whose compressor is gone (no lock on them)."""
    with contextlib.suppress(OSError):
        for entry in os.listdir(directory):
            if not (entry.startswith(name + ".") and entry.endswith(".gz.tmp")):
                continue
            path = os.path.join(directory, entry)
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.unlink(path)
            except OSError:
                pass  # a compressor still writes it
            finally:
                os.close(fd)


def _keep_budget(directory: str, policy: Policy) -> None:
    """Remove the oldest rotated files of the whole directory until it fits in ``dir_max_bytes``."""
    from logconf.logfiles import sets_in

    lock = os.open(os.path.join(directory, _BUDGET_LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        sets = sets_in(directory, stdio=True)
        total = 0
        queues: dict[str, list[tuple[float, str, int]]] = {}
        for name, found in sets.items():
            for path in found.paths:
                with contextlib.suppress(FileNotFoundError):
                    info = os.stat(path)
                    total += info.st_size
                    if path in found.rotated and _ours(path):
                        queues.setdefault(name, []).append((info.st_mtime, path, info.st_size))
        if total <= policy.dir_max_bytes:
            return
        heap = [(q[0][0], name, 0) for name, q in queues.items()]  # each set's oldest file, by its last write
        heapq.heapify(heap)
        removed: dict[str, list[tuple[str, int, int]]] = {}
        while heap and total > policy.dir_max_bytes:
            _, name, index = heapq.heappop(heap)
            gone = _remove(queues[name][index][1])
            if gone is None:
                continue  # still open in a writer: this set's newer files wait behind it
            total -= gone[2]
            removed.setdefault(name, []).append(gone)
            if index + 1 < len(queues[name]):
                heapq.heappush(heap, (queues[name][index + 1][0], name, index + 1))
        for name, gone_files in removed.items():
            reason = f"to keep {directory} under {policy.dir_max_bytes} bytes (LOGCONF_DIR_MAX_BYTES)"
            _report(directory, name, gone_files, reason, policy)
    finally:
        os.close(lock)


def _count(directory: str, name: str, removed: list[tuple[str, int, int]], mode: int) -> Any:
    """Add ``removed`` to what retention removed from ``name`` in all (kept in its lock file); return the sum."""
    from logconf.logfiles import Removal

    fd = os.open(os.path.join(directory, f".{name}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, mode)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        before = os.pread(fd, 64, 32).split()
        files, log, disk = (int(v) for v in before) if len(before) == 3 and all(v.isdigit() for v in before) else (0, 0, 0)
        total = Removal(files + len(removed), log + sum(r[1] for r in removed), disk + sum(r[2] for r in removed))
        os.pwrite(fd, " ".join(map(str, total)).encode().ljust(63) + b"\n", 32)
        return total
    finally:
        os.close(fd)


def _report(directory: str, name: str, removed: list[tuple[str, int, int]], reason: str, policy: Policy) -> None:
    """Append a record saying what was removed to the rank file ``name`` (a raw line to a ``.stdio.log``)."""
    if not removed:
        return
    from logconf.logfiles import REMOVAL_LOGGER, rank_name, removal_message

    message = removal_message(removed, reason, _count(directory, name, removed, policy.file_mode))
    parts = rank_name(name)
    if parts is None:  # a .stdio.log copy holds raw lines, each prefixed by its writer
        line = f"{REMOVAL_LOGGER}[{os.getpid()}] WARNING {message}"
    else:
        from logconf.formatters import make_formatter

        literal = parts.rank.replace("$", "$$").replace("{", "{{").replace("}", "}}")
        formatter = make_formatter("json" if name.endswith(".jsonl") else "text", rank=literal, redact="0")
        line = formatter.format(logging.LogRecord(REMOVAL_LOGGER, logging.WARNING, __file__, 0, message, None, None))
    path = os.path.join(directory, name)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, policy.file_mode)
        except OSError as exc:
            tell(f"logconf: {message}; and cannot write that into {path}: {exc}\n")
            return
        try:
            if not share(fd):
                continue  # a rotated file being compressed was at the path a moment ago
            size = os.fstat(fd).st_size
            start = b"" if size == 0 or os.pread(fd, 1, size - 1) == b"\n" else b"\n"
            _write_all(fd, start + line.encode("utf-8", "backslashreplace") + b"\n")
            return
        except OSError as exc:
            tell(f"logconf: {message}; and cannot write that into {path}: {exc}\n")
            return
        finally:
            os.close(fd)
    tell(f"logconf: {message}; and {path} was being compressed each time this was to be written there\n")
