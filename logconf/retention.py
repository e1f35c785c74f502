"""What happens to a rotated rank file: compressed once no process has it open, removed by retention.

:mod:`logconf.rotation` renames a rank file; this module works on the files it leaves, from the
rotation thread of a process (never the thread that logs):

- *Who still writes a rotated file*: every writer holds a shared ``flock`` on the file it has
  open, from open to close (:func:`logconf.rotation.share`, called by RankFileHandler). A rotated file is
  compressed or removed only under an exclusive ``flock`` taken without waiting, so only once no
  process has it open: none can append to it afterwards (writers open the live path only).
  Where the filesystem has no ``flock`` (some network filesystems), a rotated file is taken as
  settled once unchanged for UNLOCKED_QUIET_S seconds.
- *Compress*: into ``X.gz.tmp`` (gzip level LEVEL), synced, renamed to ``X.gz``, then ``X`` is
  removed: a crash leaves ``X``, or ``X`` and a complete ``X.gz`` (the tools read only ``X``
  then, and the next pass removes it), never neither. A stale ``X.gz.tmp`` (its compressor died)
  is removed by the next pass.
- *Retain*: ``keep`` rotated files per rank file, and ``dir_max_bytes`` for the whole directory
  (live files included), removing rotated files oldest first, never a live one, and never one a
  process still has open. Each removal is written as a WARNING record of logger
  ``logconf.rotation`` into the rank file that lost history, with what was removed from it in all
  (kept in its lock file), so ``summary`` shows the history missing at its start.

Only files named by logconf's rotation are compressed or removed: logrotate's stay its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
import time
from typing import Any

from logconf.reports import tell
from logconf.rotation import Policy, share

__all__ = ["LEVEL", "UNLOCKED_QUIET_S", "compress", "maintain", "settled"]

LEVEL = 1  # gzip level of rotated files: logs compress nearly as well as at 6, several times faster (make bench)
UNLOCKED_QUIET_S = 60.0  # without flock: a rotated file this long unchanged is taken as settled
_CHUNK = 1 << 20
_BUDGET_LOCK = ".logconf-retention.lock"
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
    import zlib  # here: only a process that compresses a rotated file pays for it

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
    import heapq

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
