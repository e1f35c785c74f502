"""The stdio tee: a process of its own that copies a captured process's fds 1 and 2.

:mod:`logconf.capture` starts one per captured process (``LOGCONF_CAPTURE_STDIO=1``). It reads
the pipes that now sit at the captured process's fds 1 and 2, writes every byte unchanged to
the original destinations, and appends a copy to the rank's ``.stdio.log``, each line prefixed
``process_name[pid]``. Being a process of its own, it needs neither the captured process's GIL
nor its life: after a crash, ``abort()``, ``os._exit()`` or ``exec`` it reads the pipes to their
end, so every byte written reaches the console and the copy.

It is started as ``python -I -S -c <BOOT> <package root> <spec>`` (no ``site``: no ``.pth`` hooks,
fast), forks at once and the first process exits, so the tee is no process's child to reap or
to count as leaked; it runs in a session of its own and ignores SIGINT, so a Ctrl-C to the job
does not stop it before it has drained. ``python -m logconf.tee <spec>`` runs it in the foreground.

The spec (JSON) names inherited descriptors: ``streams`` (pipe read end, original destination),
``control`` (a SOCK_SEQPACKET socket to the captured process). Control messages:

- ``path <path>``: copy to ``<path>`` from now on (the rank moved); ends a hold. Replied to with
  ``ok``: the sender waits for it, so that nothing it writes later is copied to the old path.
- ``name <name>``: prefix the lines with ``<name>`` from now on.
- ``stream`` with two descriptors (SCM_RIGHTS): a new pipe and destination for a descriptor
  that a framework moved (``dup2``); the old pipe is read to its end first.
- ``sync``: reply ``synced`` once every byte in the pipes now has been written on (the
  captured process is exiting: it waits for this, so that whoever reads its output after it
  ended finds all of it).
- ``close``: reply ``drained <CPU s copying> <CPU s starting>`` once every pipe has reached its
  end, then exit.

Before acting on a message the tee reads every pipe as far as it goes, so bytes written before
the message are copied (and forwarded) before any change it makes. It exits when every pipe has
reached its end and the control socket is closed (the captured process ended or exec-ed).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import resource
import select
import signal
import socket
import sys
import time
from typing import Any

from logconf.handlers import RankFileHandler
from logconf.redact import StreamRedactor

__all__ = ["BOOT", "main"]

# What the captured process runs: fork first, before any import, so that its wait is short.
BOOT = (
    "import os, sys\n"
    "if os.fork(): os._exit(0)\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "from logconf.tee import main\n"
    "sys.exit(main(sys.argv[2:]))\n"
)

_CHUNK = 1 << 16
_MAX_PENDING = 1 << 16  # a "line" longer than this is copied in pieces
_MAX_HELD = 16 << 20  # bytes held for an unranked actor before they are written where they would go
_HOLD_GRACE_S = 5.0  # the captured process ends the hold; this is for when it cannot (GIL held, killed)


def _literal(text: str) -> str:
    """Escape ``text`` for RankFileHandler's templates: the path is already resolved."""
    return text.replace("$", "$$").replace("{", "{{").replace("}", "}}")


class _StdioFile(RankFileHandler):
    """The rank's ``.stdio.log``: RankFileHandler's reopening after rotation or deletion, and its
    rotation (``rotate_bytes``...), with raw bytes."""

    reachable = False  # the tee is logconf's helper, not a process of the run: `logconf stacks` leaves it out

    def __init__(self, path: str, **options: Any) -> None:
        # per_host 0: the captured process resolved the name, with its host if it takes one.
        super().__init__(_literal(os.path.dirname(path)), _literal(os.path.basename(path)), per_host="0", **options)

    def move(self, path: str) -> None:
        """Copy to ``path`` from now on."""
        self._plan.templates.update(directory=_literal(os.path.dirname(path)), filename=_literal(os.path.basename(path)))
        try:
            self.retarget()
        except Exception:
            self.handleError(None)

    def write_bytes(self, data: bytes) -> None:
        """Append ``data`` (whole prefixed lines) with one ``write(2)``; never raise."""
        with self.lock:  # type: ignore[union-attr]
            try:
                fd = self._ready_fd()
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                self._room -= len(data)
                if self._room <= 0:  # rotation (logconf.rotation): check at the next block
                    self._next_check = 0.0
                if self._failing:
                    self._recovered()
            except Exception:
                self.handleError(None)

    def handleError(self, record: logging.LogRecord | None) -> None:
        self._dropped += 1
        if self._failing:
            return
        self._failing = True
        _tell(f"logconf: cannot write {self.path}: {sys.exc_info()[1]!s}; raw lines are dropped\n")

    def _recovered(self) -> None:
        self._failing = False
        dropped, self._dropped = self._dropped, 0
        _tell(f"logconf: writing {self.path} again; {dropped} blocks were dropped\n")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _tell(message: str) -> None:
    with contextlib.suppress(OSError):
        os.write(2, message.encode("utf-8", "backslashreplace"))


class _Stream:
    """One teed descriptor of the captured process: the pipe's read end and where its bytes go."""

    def __init__(self, label: int, read_end: int, original: int) -> None:
        self.label, self.read_end, self.original = label, read_end, original
        self.pending = b""
        self.forwarding = original >= 0
        self.redactor = StreamRedactor()  # per stream: a private key printed line by line is masked whole
        os.set_blocking(read_end, False)


class Tee:
    """Copy the pipes of one captured process until they and the control socket are closed."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.pid = int(spec["pid"])
        self.prefix = self._prefix(spec["name"])
        self.redact = bool(spec["redact"])
        self.path, self.options = str(spec["path"]), dict(spec.get("options", {}))
        self.sink: _StdioFile | None = None  # opened at the first line: a silent process leaves no file
        self.unwritable = False
        self.held: list[bytes] | None = None
        self.held_size = 0
        self.hold_until = 0.0
        if float(spec.get("hold_s", 0)) > 0:
            self.held, self.hold_until = [], time.monotonic() + float(spec["hold_s"]) + _HOLD_GRACE_S
        self.poller = select.poll()
        self.streams: dict[int, _Stream] = {}
        for label, read_end, original in spec["streams"]:
            self._add(_Stream(label, read_end, original))
        self.control: socket.socket | None = socket.socket(fileno=int(spec["control"]))
        self.poller.register(self.control.fileno(), select.POLLIN)
        self.closing = False
        self.reported = False
        self.start_cpu = _cpu_s()  # the interpreter's start and the imports, reported apart from the copying

    def _prefix(self, name: str) -> bytes:
        return f"{name}[{self.pid}] ".encode("utf-8", "backslashreplace")

    def _add(self, stream: _Stream) -> None:
        self.streams[stream.read_end] = stream
        self.poller.register(stream.read_end, select.POLLIN)

    def run(self) -> None:
        """Copy until every pipe has reached its end and the control socket is closed."""
        while self.streams or self.control is not None:
            timeout = -1
            if self.held is not None:
                timeout = max(0, int((self.hold_until - time.monotonic()) * 1000) + 1)
            try:
                events = self.poller.poll(timeout)
            except InterruptedError:
                continue
            for fd, _ in events:
                try:
                    if self.control is not None and fd == self.control.fileno():
                        self._on_control()
                    elif fd in self.streams:
                        self._read(self.streams[fd])
                except Exception as exc:  # keep reading: a pipe left without its reader kills its writers
                    self._report(exc)
            if self.held is not None and time.monotonic() >= self.hold_until:
                self._release()
            if self.closing and not self.streams:
                self._reply_drained()
        self._release()

    def _report(self, exc: Exception) -> None:
        if not self.reported:
            self.reported = True
            _tell(f"logconf: stdio tee error (reported once, the tee goes on): {exc!r}\n")

    # -- the pipes ------------------------------------------------------------------

    def _read(self, stream: _Stream) -> bool:
        """Read one chunk; return False when the pipe is empty for now or at its end."""
        try:
            data = os.read(stream.read_end, _CHUNK)
        except BlockingIOError:
            return False
        except InterruptedError:
            return True
        except OSError:
            data = b""
        if data:
            self._forward(stream, data)
            self._copy(stream, data)
            return True
        self._copy(stream, b"", final=True)  # end of file: every writer is gone
        self.poller.unregister(stream.read_end)
        del self.streams[stream.read_end]
        os.close(stream.read_end)
        if stream.original >= 0:
            with contextlib.suppress(OSError):
                os.close(stream.original)
        return False

    def _drain(self) -> None:
        """Read every pipe as far as it goes now."""
        for stream in list(self.streams.values()):
            while self._read(stream):
                pass

    def _forward(self, stream: _Stream, data: bytes) -> None:
        view = memoryview(data)
        while view and stream.forwarding:
            try:
                view = view[os.write(stream.original, view) :]
            except InterruptedError:
                continue
            except BlockingIOError:  # a destination someone made non-blocking: wait until it takes more
                select.select([], [stream.original], [])
            except OSError as exc:
                # The destination is gone (EPIPE, closed): as without the tee, these bytes are lost;
                # the copy goes on.
                stream.forwarding = exc.errno not in (errno.EPIPE, errno.EBADF, errno.EINVAL, errno.ENOSPC, errno.EIO)
                if stream.forwarding:
                    return

    def _copy(self, stream: _Stream, data: bytes, final: bool = False) -> None:
        data = stream.pending + data
        end = len(data) if final else data.rfind(b"\n") + 1
        if not final and end == 0 and len(data) > _MAX_PENDING:
            end = len(data)
        stream.pending = data[end:]
        if end:
            self._write(data[:end], stream.redactor)

    def _write(self, block: bytes, redactor: StreamRedactor) -> None:
        """Append complete lines (or a final partial one), each with the captured process's prefix.

        A carriage return (a progress bar redrawing itself) ends a line too; blank lines are
        dropped. Everything is done on bytes, at C speed, and written with one ``write(2)``.
        """
        if b"\r" in block:
            block = block.replace(b"\r", b"\n")
        if self.redact:
            # The lines are masked before they are prefixed, so that a masked line keeps its prefix.
            text = block.decode("utf-8", "surrogateescape")
            if redactor.needed(text):  # a cheap test first, as for every record
                block = redactor.redact(text).encode("utf-8", "surrogateescape")
        lines = [line for line in block.split(b"\n") if line]
        if not lines:
            return
        prefix = self.prefix
        data = prefix + (b"\n" + prefix).join(lines) + b"\n"
        if self.held is not None:
            self.held.append(data)
            self.held_size += len(data)
            if self.held_size >= _MAX_HELD:
                self._release()
            return
        self._append(data)

    def _append(self, data: bytes) -> None:
        if self.sink is None and not self.unwritable:
            try:
                self.sink = _StdioFile(self.path, **self.options)
            except Exception as exc:  # forward anyway: a pipe left without its reader would kill its writers
                self.unwritable = True
                _tell(f"logconf: cannot write {self.path}: {exc}; raw lines are not copied\n")
        if self.sink is not None:
            self.sink.write_bytes(data)

    def _release(self) -> None:
        held, self.held, self.held_size = self.held, None, 0
        if held:
            self._append(b"".join(held))

    # -- the control socket -------------------------------------------------------

    def _on_control(self) -> None:
        assert self.control is not None
        try:
            message, fds, _, _ = socket.recv_fds(self.control, 4096, 2)
        except InterruptedError:
            return
        except OSError:
            message, fds = b"", []
        self._drain()  # what was written before this message is copied before it takes effect
        if not message:  # the captured process ended, or exec-ed: its pipes may still be written
            self.poller.unregister(self.control.fileno())
            self.control.close()
            self.control = None
            self._release()
            return
        verb, _, rest = message.partition(b" ")
        if verb == b"path":
            self.path, self.unwritable = os.fsdecode(rest), False
            if self.sink is not None:
                self.sink.move(self.path)
            self._release()
            with contextlib.suppress(OSError):
                self.control.send(b"ok")
        elif verb == b"name":
            self.prefix = self._prefix(rest.decode("utf-8", "backslashreplace"))
        elif verb == b"stream" and len(fds) == 2:
            self._add(_Stream(int(rest), fds[0], fds[1]))
            fds = []
        elif verb == b"sync":  # the pipes were drained above
            with contextlib.suppress(OSError):
                self.control.send(b"synced")
        elif verb == b"close":
            self.closing = True
        for fd in fds:
            os.close(fd)

    def _reply_drained(self) -> None:
        self.closing = False
        if self.control is not None:
            with contextlib.suppress(OSError):
                self.control.send(b"drained %.6f %.6f" % (_cpu_s() - self.start_cpu, self.start_cpu))
            self.poller.unregister(self.control.fileno())
            self.control.close()
            self.control = None


def main(argv: list[str] | None = None) -> int:
    """Run the tee described by the JSON spec in ``argv[0]`` until its pipes are drained."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        _tell("usage: python -m logconf.tee SPEC_JSON (started by logconf.capture)\n")
        return 2
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        # Stop only when the pipes end: a Ctrl-C or a job's TERM goes to the writers, which end, and
        # then the pipes do. SIGKILL still ends the tee at once.
        signal.signal(signum, signal.SIG_IGN)
    try:
        tee = Tee(json.loads(args[0]))
    except Exception as exc:
        _tell(f"logconf: the stdio tee cannot start: {exc}\n")
        return 1
    tee.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
