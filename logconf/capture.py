"""Capture what bypasses ``logging`` in vLLM's processes: Python warnings and raw stdout/stderr.

The shipped ``vllm_logging.json`` names :func:`install` as a filter factory, so every process
that applies it (engine actor, EngineCore, workers) runs it inside ``dictConfig``:

- ``warnings``: like ``logging.captureWarnings(True)``, but one line per warning (file, line,
  category, message) with the record's pathname and lineno set to where it was raised; the
  JSON routes ``py.warnings`` to the rank's vLLM file and console, so a warning is printed once,
  as a record, instead of as raw text on stderr.
- ``stdio`` (``LOGCONF_CAPTURE_STDIO=1``): file descriptors 1 and 2 are replaced by pipes. A
  daemon thread per descriptor passes every byte on to the original descriptor unchanged and
  appends a copy to ``vllm_rank_<rank>.stdio.log``, each line prefixed ``process_name[pid]``,
  so C-level writes (torch's ``[W ...]`` lines, tqdm bars, NCCL) are captured too.

A child that inherits the pipes and applies the config again (vLLM's spawned EngineCore and
workers) reopens the original destination through ``/proc/<owner>/fd`` and tees on its own,
so its lines carry its own name and reach the console once. A fork child re-installs in
``register_at_fork``. Any other child (a compiler, a shell) simply writes into the parent's
pipe and is copied with the parent's prefix.
"""

from __future__ import annotations

import atexit
import contextlib
import faulthandler
import fcntl
import logging
import os
import select
import stat
import sys
import threading
import time
import warnings as _warnings
from typing import Any

from logconf.handlers import RankFileHandler
from logconf.redact import redact as _redact
from logconf.templating import switch

__all__ = ["STDIO_ENV", "StdioTee", "capture_warnings", "follow_redirect", "install", "installed"]

STDIO_ENV = "LOGCONF_CAPTURE_STDIO"
_MARKER_ENV = "LOGCONF_STDIO_TEE"  # "<owner pid>:<fd>=<original fd>/<pipe inode>,..." for children
_PIPE_SIZE = 1 << 20  # a C writer that holds the GIL can write this much before it blocks
_CHUNK = 1 << 16
_MAX_PENDING = 1 << 16  # a "line" longer than this is written in pieces
_EXIT_WAIT_S = 1.0


_TEE: StdioTee | None = None
_LOCK = threading.Lock()


def _flag(key: str, value: object) -> bool:
    return switch(value, factory="capture.install", arg=key)


class _StdioFile(RankFileHandler):
    """The rank's ``.stdio.log``: RankFileHandler's reopening and rank moves, raw lines as records."""

    def __init__(self, directory: str, filename: str, original_stderr: int, **options: Any) -> None:
        super().__init__(directory, filename, **options)
        self.setFormatter(logging.Formatter("%(message)s"))
        self._report_fd = original_stderr

    def write_bytes(self, data: bytes) -> None:
        """Append ``data`` (whole prefixed lines) with one ``write(2)``; never raise."""
        if self._held is not None:  # an unranked Ray actor: hold the lines as records until set_rank
            text = data.decode("utf-8", "backslashreplace").rstrip("\n")
            self.handle(logging.LogRecord("logconf.stdio", logging.INFO, __file__, 0, text, None, None))
            return
        with self.lock:  # type: ignore[union-attr]
            try:
                fd = self._ready_fd()
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self._failing:
                    self._recovered()
            except Exception:
                self.handleError(logging.LogRecord("logconf.stdio", logging.INFO, __file__, 0, "", None, None))

    def handleError(self, record: logging.LogRecord) -> None:
        # Never report on fd 2: it is the pipe that this very thread drains.
        self._dropped += 1
        if self._failing:
            return
        self._failing = True
        self._report(f"logconf: cannot write {self.path}: {sys.exc_info()[1]!s}; raw lines are dropped\n")

    def _recovered(self) -> None:
        self._failing = False
        dropped, self._dropped = self._dropped, 0
        self._report(f"logconf: writing {self.path} again; {dropped} blocks were dropped\n")

    def _report(self, message: str) -> None:
        with contextlib.suppress(OSError):
            os.write(self._report_fd, message.encode("utf-8", "backslashreplace"))


class _Stream:
    """One teed descriptor: the pipe now sitting at ``fd`` and the reader thread draining it."""

    def __init__(self, tee: StdioTee, fd: int, original: int) -> None:
        self.tee, self.fd, self.original = tee, fd, original
        self.retired = False  # fd was given another destination: close the original once drained
        self.pending = b""
        self.lock = threading.Lock()
        self.drained = threading.Event()
        read_end, write_end = os.pipe()  # both close-on-exec; fd itself stays inheritable
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        self.read_end = read_end
        self.wake_r, self.wake_w = os.pipe()  # close() wakes the reader through this
        self.inode = os.fstat(write_end).st_ino
        os.dup2(write_end, fd)
        os.close(write_end)
        self.thread = threading.Thread(target=self._run, name=f"logconf-stdio-tee-{fd}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self.read_end, select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        while True:
            try:
                ready = dict(poller.poll())
            except InterruptedError:
                continue
            if self.read_end in ready:
                try:
                    data = os.read(self.read_end, _CHUNK)
                except InterruptedError:
                    continue
                except OSError:
                    data = b""
                with self.lock:
                    if data:
                        self._forward(data)
                    self._copy(data, final=not data)
                if data:
                    continue
            elif self.wake_r not in ready:
                continue
            # End of file, or close() asked and the pipe is empty: everything written is copied.
            with self.lock:
                self._copy(b"", final=True)
                self.drained.set()
                retired = self.retired
            if retired:
                with contextlib.suppress(OSError):
                    os.close(self.original)
            return

    def _forward(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.original, view) :]
            except InterruptedError:
                continue
            except OSError:
                return  # the original is gone (closed, EPIPE): as without the tee, the bytes are lost

    def _copy(self, data: bytes, final: bool = False) -> None:
        data = self.pending + data
        end = len(data) if final else data.rfind(b"\n") + 1
        if not final and end == 0 and len(data) > _MAX_PENDING:
            end = len(data)
        self.pending = data[end:]
        if end:
            self.tee.write(data[:end])

    def close(self, deadline: float) -> None:
        """Give the fd its original back and let the reader copy what is in the pipe by ``deadline``."""
        with contextlib.suppress(OSError):
            os.dup2(self.original, self.fd)
        with contextlib.suppress(OSError):
            os.write(self.wake_w, b"x")
        self.drained.wait(max(0.0, deadline - time.monotonic()))


class StdioTee:
    """Fds 1 and 2 of this process teed to the original destinations and to ``sink``."""

    def __init__(self, sink: _StdioFile, redact: bool) -> None:
        self.sink = sink
        self.redact = redact
        self.pid = os.getpid()
        self.streams: list[_Stream] = []
        self.retired: list[_Stream] = []  # streams whose fd was moved away; their readers drain to EOF
        self.closed = False

    def start(self, originals: dict[int, int]) -> None:
        for fd in (1, 2):
            if fd in originals:
                self.streams.append(_Stream(self, fd, originals[fd]))
        self.mark()

    def mark(self) -> None:
        """Tell children (spawned vLLM processes) which pipes are this tee's and where they lead."""
        os.environ[_MARKER_ENV] = f"{self.pid}:" + ",".join(f"{s.fd}={s.original}/{s.inode}" for s in self.streams)

    def follow(self) -> None:
        """Tee the new destination of a descriptor that was moved away from this tee's pipe (``dup2``).

        What was written before the move still reaches the old destination; the pipe's reader
        drains it and ends. From now on the new destination gets every byte, and the copy too.
        """
        for index, stream in enumerate(self.streams):
            try:
                if os.fstat(stream.fd).st_ino == stream.inode:
                    continue
                original = os.dup(stream.fd)  # close-on-exec, as at start
            except OSError:
                continue  # closed: nothing to tee
            self.streams[index] = _Stream(self, stream.fd, original)
            self.retired.append(stream)
            with stream.lock:
                stream.retired = True
                drained = stream.drained.is_set()
            if stream.fd == 2:
                self.sink._report_fd = original
                if faulthandler.is_enabled():
                    faulthandler.enable(file=original, all_threads=True)
            if drained:
                with contextlib.suppress(OSError):
                    os.close(stream.original)
        self.mark()

    def write(self, block: bytes) -> None:
        """Append complete lines (or a final partial one) to the sink, each with this process's prefix.

        A carriage return (a progress bar redrawing itself) ends a line too; blank lines are
        dropped. Everything is done on bytes, at C speed, and written with one ``write(2)``.
        """
        mp = sys.modules.get("multiprocessing")
        name = mp.current_process().name if mp else "MainProcess"
        prefix = f"{name}[{os.getpid()}] ".encode("utf-8", "backslashreplace")
        if b"\r" in block:
            block = block.replace(b"\r", b"\n")
        lines = [line for line in block.split(b"\n") if line]
        if not lines:
            return
        data = prefix + (b"\n" + prefix).join(lines) + b"\n"
        if self.redact:
            text = data.decode("utf-8", "surrogateescape")
            masked = _redact(text)  # checks cheaply first; returns the same object when nothing is masked
            if masked is not text:
                data = masked.encode("utf-8", "surrogateescape")
        self.sink.write_bytes(data)

    def close(self, wait_s: float = _EXIT_WAIT_S) -> None:
        """Restore fds 1 and 2 and copy what is still in the pipes, waiting ``wait_s`` at most."""
        if self.closed or self.pid != os.getpid():
            return
        self.closed = True
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        deadline = time.monotonic() + wait_s
        for stream in self.retired:  # what was written before a move: its reader is at or near EOF
            stream.drained.wait(max(0.0, deadline - time.monotonic()))
        for stream in self.streams:
            stream.close(deadline)


def _showwarning(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    if file is not None:  # an explicit file is the caller's business, as in logging.captureWarnings
        _original_showwarning(message, category, filename, lineno, file, line)
        return
    logger = logging.getLogger("py.warnings")
    if not logger.isEnabledFor(logging.WARNING):
        return
    text = f"{filename}:{lineno}: {category.__name__}: {message}"
    logger.handle(logger.makeRecord(logger.name, logging.WARNING, filename, lineno, text.rstrip("\n"), (), None))


_original_showwarning = _warnings.showwarning


def capture_warnings() -> None:
    """Send Python warnings to the ``py.warnings`` logger as one-line records (no source line)."""
    global _original_showwarning
    if _warnings.showwarning is not _showwarning:
        _original_showwarning = _warnings.showwarning
        _warnings.showwarning = _showwarning


def installed() -> StdioTee | None:
    """Return this process's tee, or None when stdout/stderr are not captured here."""
    tee = _TEE
    return tee if tee is not None and tee.pid == os.getpid() and not tee.closed else None


def _inherited_original(fd: int) -> int | None:
    """Open the destination that an ancestor's tee saved for ``fd``, if ``fd`` is that tee's pipe.

    Returns -1 when ``fd`` is an ancestor's pipe but its destination cannot be reopened
    here: the ancestor's tee then copies this process's output, under the ancestor's name.
    """
    marker = os.environ.get(_MARKER_ENV, "")
    owner, _, entries = marker.partition(":")
    try:
        info = os.fstat(fd)
    except OSError:
        return None
    if not owner.isdigit() or not stat.S_ISFIFO(info.st_mode):
        return None
    for entry in entries.split(","):
        name, _, rest = entry.partition("=")
        original, _, inode = rest.partition("/")
        if name != str(fd) or inode != str(info.st_ino):
            continue
        if int(owner) == os.getpid():
            return None
        return _reopen(int(owner), int(original))
    return None


def _reopen(pid: int, fd: int) -> int:
    link = f"/proc/{pid}/fd/{fd}"
    try:
        target = os.stat(link)
        flags = os.O_WRONLY | os.O_CLOEXEC
        if stat.S_ISREG(target.st_mode):
            with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii") as info:
                mode = next(int(line.split()[1], 8) for line in info if line.startswith("flags:"))
            if not mode & os.O_APPEND:
                return -1  # writing at our own offset would overwrite the ancestor's lines
            flags |= os.O_APPEND
        elif not (stat.S_ISFIFO(target.st_mode) or stat.S_ISCHR(target.st_mode)):
            return -1
        return os.open(link, flags)
    except (OSError, StopIteration, ValueError, IndexError):
        return -1


def _originals() -> dict[int, int]:
    originals = {}
    for fd in (1, 2):
        inherited = _inherited_original(fd)
        if inherited == -1:
            continue
        if inherited is not None:
            originals[fd] = inherited
            continue
        try:
            originals[fd] = os.dup(fd)  # close-on-exec: children get fd itself, never the original
        except OSError:
            continue  # fd is closed in this process: nothing to tee
    return originals


def install(
    stdio: str = "${LOGCONF_CAPTURE_STDIO:-0}",
    warnings: str = "1",
    directory: str = "${LOGCONF_DIR:-/tmp/logconf}",
    filename: str = "vllm_rank_${LOGCONF_RANK:-${RANK:-0}}.stdio.log",
    redact: str = "${LOGCONF_REDACT:-1}",
    **file_options: Any,
) -> logging.Filter:
    """Capture warnings and (if ``stdio`` resolves to 1) tee fds 1 and 2; safe to call again.

    Named as a filter factory by the shipped JSON, which is why it returns a filter (one that
    lets every record through). ``file_options`` go to the rank file (modes, hold time).
    """
    global _TEE
    if _flag("warnings", warnings):
        capture_warnings()
    if not _flag("stdio", stdio):
        return logging.Filter()
    with _LOCK:
        tee = installed()
        if tee is not None:
            tee.sink.retarget()  # the rank may have changed since; the next line goes there
            return logging.Filter()
        originals = _originals()
        if 2 not in originals and 1 not in originals:
            return logging.Filter()
        try:
            sink = _StdioFile(directory, filename, originals.get(2, originals.get(1, 2)), **file_options)
            tee = StdioTee(sink, _flag("redact", redact))
        except BaseException:
            for fd in originals.values():
                os.close(fd)
            raise
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()  # what Python buffered before goes where it was meant to
        tee.start(originals)
        _TEE = tee
        if 2 in originals and faulthandler.is_enabled():
            # A fatal error kills the reader thread with the process: send its traceback past the pipe.
            faulthandler.enable(file=originals[2], all_threads=True)
    return logging.Filter()


def follow_redirect() -> None:
    """Keep teeing after a framework ``dup2``-s a new destination onto fd 1 or 2 (SkyRL's infra log)."""
    with _LOCK:
        tee = installed()
        if tee is not None:
            tee.follow()


@atexit.register  # after logging's own registration, so this runs before logging.shutdown()
def _close_at_exit() -> None:
    tee = installed()
    if tee is not None:
        tee.close()


def _after_fork_in_child() -> None:
    """Give a fork child its own pipes and reader threads: the parent's threads did not follow."""
    global _TEE
    parent = _TEE
    if parent is None or parent.closed or parent.pid == os.getpid():
        return
    _TEE = None
    try:
        tee = StdioTee(parent.sink, parent.redact)
        originals = {}
        for stream in parent.streams:
            for fd in (stream.read_end, stream.wake_r, stream.wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)  # never read the parent's pipe here
            originals[stream.fd] = stream.original  # inherited: the same destination, this process's own fd
        tee.start(originals)
        _TEE = tee
        _close_in_multiprocessing_child()
    except Exception as exc:  # a fork child must come up even if its tee cannot
        with contextlib.suppress(OSError):
            os.write(2, f"logconf: stdio capture not restarted after fork: {exc}\n".encode())


def _close_in_multiprocessing_child() -> None:
    # multiprocessing's fork children leave by os._exit(), which skips atexit; its finalizers run.
    util = sys.modules.get("multiprocessing.util")
    if util is not None and _TEE is not None:
        util.register_after_fork(_TEE, lambda tee: util.Finalize(tee, tee.close, exitpriority=-(10**6)))


os.register_at_fork(after_in_child=_after_fork_in_child)
