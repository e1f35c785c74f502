"""Capture what bypasses ``logging`` in vLLM's processes: Python warnings and raw stdout/stderr.

The shipped ``vllm_logging.json`` names :func:`install` as a filter factory, so every process
that applies it (engine actor, EngineCore, workers) runs it inside ``dictConfig``:

- ``warnings``: like ``logging.captureWarnings(True)``, but one line per warning (file, line,
  category, message) with the record's pathname and lineno set to where it was raised; the
  JSON routes ``py.warnings`` to the rank's vLLM file and console, so a warning is printed once,
  as a record, instead of as raw text on stderr.
- ``stdio`` (``LOGCONF_CAPTURE_STDIO=1``): file descriptors 1 and 2 are replaced by pipes, read
  by a tee process of their own (:mod:`logconf.tee`), which passes every byte on to the original
  descriptor unchanged and appends a copy to ``vllm_rank_<rank>.stdio.log``, each line prefixed
  ``process_name[pid]``, so C-level writes (torch's ``[W ...]`` lines, tqdm bars, NCCL) are
  captured too. The tee needs nothing of this process: it reads the pipes to their end after a
  crash, ``abort()``, ``os._exit()`` or ``exec``, and a C write that holds the GIL cannot block it.

This module is the captured process's side: it starts the tee, tells it the rank's file after
``set_rank`` (and the end of a rank hold), hands it the new destination when a framework moves
fd 1 or 2 (:func:`follow_redirect`), and gives children what they need. A child that inherits
the pipes and applies the config again (vLLM's spawned EngineCore and workers) reopens the
original destination through ``/proc/<owner>/fd`` and starts its own tee, so its lines carry its
own name and reach the console once. A multiprocessing fork child starts its own tee too. Any
other child (a compiler, a shell, an ``os.fork()`` or ``preexec_fn`` child, an exec-ed program)
simply writes into the parent's pipes and is copied with the parent's prefix.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import socket
import stat
import subprocess
import sys
import threading
import time
import warnings as _warnings
from typing import Any

from logconf import raycontext
from logconf.handlers import FilePlan, follow_rank
from logconf.ownership import DIR_TEMPLATE
from logconf.templating import switch

__all__ = [
    "EXIT_WAIT_S",
    "STDIO_ENV",
    "StdioTee",
    "capture_warnings",
    "check_install",
    "follow_redirect",
    "install",
    "installed",
]

STDIO_ENV = "LOGCONF_CAPTURE_STDIO"
_MARKER_ENV = "LOGCONF_STDIO_TEE"  # "<owner pid>:<fd>=<original fd>/<pipe inode>,..." for children
_PIPE_SIZE = 1 << 20  # what a writer can write before it waits for the tee (which starts in ~50 ms)
# What the tee's file takes (rotation included: the .stdio.log copy rotates as the rank file does).
_FILE_OPTIONS = (
    "file_mode",
    "dir_mode",
    "follow_symlinks",
    "reopen_check_s",
    "shared_dir",
    "rotate_bytes",
    "rotate_keep",
    "rotate_compress",
    "dir_max_bytes",
)
_REPLY_WAIT_S = 5.0  # how long set_rank waits for the tee to take the new path (it starts in ~50 ms)
EXIT_WAIT_S = 5.0  # how long a process that exits waits for its tee to pass on what it wrote
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


_TEE: StdioTee | None = None
_LOCK = threading.Lock()


def _flag(key: str, value: object) -> bool:
    return switch(value, factory="capture.install", arg=key)


def _process_name() -> str:
    mp = sys.modules.get("multiprocessing")
    return mp.current_process().name if mp else "MainProcess"


def _pipe() -> tuple[int, int]:
    read_end, write_end = os.pipe()  # both close-on-exec; the fd it is moved to stays inheritable
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
    return read_end, write_end


class _Stream:
    """One teed descriptor: ``fd``, the pipe now sitting there, and the original destination (ours)."""

    def __init__(self, fd: int, original: int, write_end: int) -> None:
        self.fd, self.original = fd, original
        self.inode = os.fstat(write_end).st_ino


class StdioTee:
    """Fds 1 and 2 of this process, copied by a tee process (:mod:`logconf.tee`)."""

    def __init__(self, plan: FilePlan, redact: bool, hold_s: float, options: dict[str, Any]) -> None:
        self.plan, self.redact, self.hold_s, self.options = plan, redact, hold_s, options
        self.path = plan.path
        self.name = _process_name()
        self.pid = os.getpid()
        self.streams: list[_Stream] = []
        self.control: socket.socket | None = None
        self.closed = False
        self.lock = threading.Lock()  # one conversation with the tee at a time
        self.helper_cpu_s: float | None = None  # the tee's CPU time copying, as it reported on close()
        self.helper_start_cpu_s: float | None = None  # and starting (interpreter and imports)

    def start(self, originals: dict[int, int]) -> None:
        """Start the tee on new pipes, then move them onto fds 1 and 2."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pipes = {fd: _pipe() for fd in sorted(originals)}
        spec = {
            "pid": self.pid,
            "name": self.name,
            "path": self.path,
            "options": self.options,
            "redact": self.redact,
            "hold_s": self.hold_s,
            "control": theirs.fileno(),
            "streams": [[fd, pipes[fd][0], originals[fd]] for fd in pipes],
        }
        try:
            starter = _spawn(spec, [theirs.fileno(), *(r for r, _ in pipes.values()), *originals.values()], originals.get(2))
        except BaseException:
            ours.close()
            for pair in pipes.values():
                for end in pair:
                    os.close(end)
            raise
        finally:
            theirs.close()
        self.control = ours
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()  # what Python buffered before goes where it was meant to
        for fd, (read_end, write_end) in pipes.items():
            os.close(read_end)
            self.streams.append(_Stream(fd, originals[fd], write_end))
            os.dup2(write_end, fd)
            os.close(write_end)
        self.mark()
        follow_rank(self)
        # The starter forks the tee and exits within milliseconds; reap it without making the
        # process wait (the tee's own start, ~50 ms, overlaps with whatever the process does next).
        threading.Thread(target=self._reap, args=(starter,), name="logconf-tee-starter", daemon=True).start()
        if self.hold_s > 0:
            timer = threading.Timer(self.hold_s, self.retarget, kwargs={"release": True})
            timer.daemon, timer.name = True, "logconf-stdio-hold"
            timer.start()

    def _reap(self, starter: subprocess.Popen) -> None:
        if starter.wait() == 0:
            return
        # No tee was forked: give fds 1 and 2 their destinations back before anyone writes into a
        # pipe that nobody reads.
        with self.lock:
            if self.pid != os.getpid() or self.closed:
                return
            self.closed = True
            for s in self.streams:
                with contextlib.suppress(OSError):
                    if os.fstat(s.fd).st_ino == s.inode:
                        os.dup2(s.original, s.fd)
        _tell(f"logconf: stdio is not captured: the stdio tee's starter exited with {starter.returncode}\n")

    def _send(self, message: bytes, fds: list[int] | None = None, reply: bytes = b"", wait_s: float = _REPLY_WAIT_S) -> bytes:
        """Send ``message``; wait ``wait_s`` at most for a reply that starts with ``reply``, if given."""
        with self.lock:
            control = self.control
            if control is None or self.pid != os.getpid():
                return b""
            try:
                if fds:
                    socket.send_fds(control, [message], fds)
                else:
                    control.send(message)
                if not reply:
                    return b"sent"
                deadline = time.monotonic() + wait_s
                while True:  # a reply that came too late for an earlier message is skipped
                    control.settimeout(max(0.001, deadline - time.monotonic()))
                    answer = control.recv(64)
                    if not answer or answer.startswith(reply):
                        return answer
            except OSError:
                return b""  # the tee is gone (killed), or slow: it copies what comes, on its own
            finally:
                with contextlib.suppress(OSError):
                    control.settimeout(None)

    def mark(self) -> None:
        """Tell children (spawned vLLM processes) which pipes are this tee's and where they lead."""
        os.environ[_MARKER_ENV] = f"{self.pid}:" + ",".join(f"{s.fd}={s.original}/{s.inode}" for s in self.streams)

    def retarget(self, release: bool = False) -> None:
        """Send the tee the rank's file as resolved now (after ``set_rank``); ``release`` ends a hold."""
        if self.pid != os.getpid() or self.closed:
            return
        try:
            path = self.plan.resolve()
            if path != self.path:
                self.plan.check(path, create=True)
        except Exception as exc:  # the copy stays where it is; the program goes on
            _tell(f"logconf: the stdio copy stays in {self.path}: {exc}\n")
            return
        name = _process_name()
        if name != self.name and self._send(b"name " + name.encode("utf-8", "backslashreplace")):
            self.name = name
        if (path != self.path or (release and self.hold_s > 0)) and self._send(b"path " + os.fsencode(path), reply=b"ok"):
            self.path, self.hold_s = path, 0.0

    def follow(self) -> None:
        """Tee the new destination of a descriptor that was moved away from this tee's pipe (``dup2``).

        What was written before the move still reaches the old destination: the tee reads the
        old pipe to its end before it reads the new one. From now on the new destination gets
        every byte, and the copy too.
        """
        for index, stream in enumerate(self.streams):
            try:
                if os.fstat(stream.fd).st_ino == stream.inode:
                    continue
                original = os.dup(stream.fd)  # close-on-exec, as at start
            except OSError:
                continue  # closed: nothing to tee
            read_end, write_end = _pipe()
            sent = self._send(b"stream %d" % stream.fd, [read_end, original])
            os.close(read_end)
            if not sent:
                os.close(write_end)
                os.close(original)
                continue
            self.streams[index] = _Stream(stream.fd, original, write_end)
            os.dup2(write_end, stream.fd)
            os.close(write_end)
            with contextlib.suppress(OSError):
                os.close(stream.original)
        self.mark()

    def close(self, wait_s: float = 1.0) -> None:
        """Give fds 1 and 2 their destinations back; wait ``wait_s`` at most for the tee to copy the rest."""
        if not self._give_back():
            return
        reply = self._send(b"close", reply=b"drained ", wait_s=wait_s)
        with contextlib.suppress(ValueError, IndexError):
            self.helper_cpu_s, self.helper_start_cpu_s = (float(part) for part in reply.split()[1:3])
        with self.lock:
            control, self.control = self.control, None
        if control is not None:
            control.close()

    def finish(self, wait_s: float = EXIT_WAIT_S) -> bool:
        """At exit: give fds 1 and 2 their destinations back, then wait ``wait_s`` at most for the tee
        to pass on every byte written before; return whether it said it has.

        The tee answers once it has read the pipes as far as they go and written it all on; it
        does not wait for their end, which a grandchild that inherited them may hold open. What
        is written from here on (later exit hooks, the interpreter's last flush) goes straight to
        the destination, after the tee's bytes, and is not copied.
        """
        if not self._give_back():
            return False
        return self._send(b"sync", reply=b"synced", wait_s=wait_s) == b"synced"

    def _give_back(self) -> bool:
        """Flush Python's streams and put the original destinations back on fds 1 and 2, once."""
        if self.closed or self.pid != os.getpid():
            return False
        self.closed = True
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        for s in self.streams:
            with contextlib.suppress(OSError):
                os.dup2(s.original, s.fd)
        return True

    def forsake(self) -> None:
        """In a fork child: let go of the parent's control socket, so the parent's tee can end."""
        control, self.control = self.control, None
        if control is not None:
            with contextlib.suppress(OSError):
                control.close()  # this process's descriptor only; the parent keeps its own


def _spawn(spec: dict[str, Any], fds: list[int], stderr: int | None) -> subprocess.Popen:
    """Start the tee as no one's child: the starter returned forks it and exits (reap the starter)."""
    import json

    if not sys.executable:
        raise OSError("sys.executable is unknown, so the stdio tee cannot be started")
    starter = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", _boot(), _PACKAGE_ROOT, json.dumps(spec)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr if stderr is not None else subprocess.DEVNULL,
        pass_fds=fds,
        close_fds=True,
        start_new_session=True,  # a Ctrl-C to the job's process group does not reach the tee
    )
    return starter


def _boot() -> str:
    from logconf.tee import BOOT

    return BOOT


def _tell(message: str) -> None:
    with contextlib.suppress(OSError):
        os.write(2, message.encode("utf-8", "backslashreplace"))


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
            return -1  # this process exec-ed a new program: its tee still reads this pipe, under this pid
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
    *,
    stdio: bool | str = "${LOGCONF_CAPTURE_STDIO:-0}",
    warnings: bool | str = "1",
    directory: str = DIR_TEMPLATE,
    filename: str = "vllm_rank_${LOGCONF_RANK:-${RANK:-0}}.stdio.log",
    redact: bool | str = "${LOGCONF_REDACT:-1}",
    **file_options: Any,
) -> logging.Filter:
    """Capture warnings and (if ``stdio`` resolves to 1) tee fds 1 and 2; safe to call again.

    Named as a filter factory by the shipped JSON, which is why it returns a filter (one that
    lets every record through). ``file_options`` go to the rank file (modes, hold time): the
    options of :class:`logconf.handlers.FilePlan`.
    """
    global _TEE
    settings = _Settings(stdio, warnings, directory, filename, redact, file_options)
    if settings.warnings:
        capture_warnings()
    if not settings.stdio:
        return logging.Filter()
    with _LOCK:
        tee = installed()
        if tee is not None:
            tee.retarget()  # the rank may have changed since; the next line goes there
            return logging.Filter()
        plan = settings.plan()  # a bad value fails here, naming its key
        plan.check(plan.path, create=True)
        hold_s = plan.hold_s if plan.hold_s > 0 and raycontext.unranked_actor() else 0.0
        options = {key: value for key, value in file_options.items() if key in _FILE_OPTIONS}
        originals = _originals()
        if not originals:
            return logging.Filter()
        tee = StdioTee(plan, settings.redact, hold_s, options)
        try:
            tee.start(originals)
        except Exception as exc:  # the program runs on, uncaptured, as without LOGCONF_CAPTURE_STDIO
            for fd in originals.values():
                os.close(fd)
            _tell(f"logconf: stdio is not captured: {exc}\n")
            return logging.Filter()
        _TEE = tee
    return logging.Filter()


class _Settings:
    """What a config asks :func:`install` for, resolved in this process; nothing is captured here."""

    def __init__(
        self, stdio: object, warnings: object, directory: str, filename: str, redact: object, file_options: dict[str, Any]
    ) -> None:
        self.stdio, self.warnings = _flag("stdio", stdio), _flag("warnings", warnings)
        self.redact = _flag("redact", redact)
        self.directory, self.filename, self.file_options = directory, filename, file_options

    def plan(self) -> FilePlan:
        return FilePlan(self.directory, self.filename, **self.file_options)


def check_install(*, create: bool = False, **arguments: Any) -> str | None:
    """Check what a config passes to :func:`install` as install would, capturing nothing.

    Every argument is resolved, the stdio copy's path among them; its directory is checked (and
    created when ``create``) only when ``stdio`` resolves to 1. Returns that path then, else None.
    """
    given = {**(install.__kwdefaults__ or {}), **arguments}
    settings = _Settings(
        given.pop("stdio"), given.pop("warnings"), given.pop("directory"), given.pop("filename"), given.pop("redact"), given
    )
    plan = settings.plan()
    if not settings.stdio:
        return None
    plan.check(plan.path, create=create)
    return plan.path


def follow_redirect() -> None:
    """Keep teeing after a framework ``dup2``-s a new destination onto fd 1 or 2 (SkyRL's infra log)."""
    with _LOCK:
        tee = installed()
        if tee is not None:
            tee.follow()


def _after_fork_in_child() -> None:
    """Leave the parent's tee to the parent; a multiprocessing child starts its own once it has its name.

    Anything else forked (``os.fork()``, ``subprocess`` with ``preexec_fn``) keeps writing into
    the parent's pipes: their tee copies it, under the parent's name, and an exec-ed program
    finds a reader there. Nothing here may be slow: a ``preexec_fn`` child runs it too.
    """
    tee = _TEE
    if tee is None or tee.closed or tee.pid == os.getpid():
        return
    tee.forsake()
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.register_after_fork(tee, _start_in_multiprocessing_child)


@atexit.register  # registered after logging's own, so it runs before logging.shutdown()
def _finish_at_exit() -> None:
    tee = installed()
    if tee is not None:
        tee.finish()


def _start_in_multiprocessing_child(parent: StdioTee) -> None:
    """Give a multiprocessing fork child its own tee, under its own name (run by its bootstrap)."""
    global _TEE
    if _TEE is not parent or parent.pid == os.getpid():
        return
    _TEE = None
    originals: dict[int, int] = {}
    try:
        for stream in parent.streams:
            originals[stream.fd] = os.dup(stream.original)  # inherited: the same destination
        tee = StdioTee(parent.plan, parent.redact, 0.0, parent.options)
        tee.start(originals)
        _TEE = tee
        # multiprocessing ends its children with os._exit, after its own exit hooks, not atexit's
        util = sys.modules["multiprocessing.util"]
        util.Finalize(None, _finish_at_exit, exitpriority=-100)
    except Exception as exc:  # a fork child must come up even if its tee cannot: it uses the parent's
        for fd in originals.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        _tell(f"logconf: stdio capture not restarted after fork: {exc}\n")


os.register_at_fork(after_in_child=_after_fork_in_child)
