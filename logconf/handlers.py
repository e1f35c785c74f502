"""Handlers that the shipped configs name: one rank file per subsystem, and the console.

``RankFileHandler`` writes each record with a single ``write(2)`` on an ``O_APPEND``
descriptor and keeps no buffer. Linux serialises such writes to a local file under the
inode lock, so the engine actor, its EngineCore and its workers can share one rank file
without interleaving partial lines, and nothing is left in a buffer when a process dies.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import functools
import logging
import math
import os
import stat
import sys
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from logconf import keep, netfs, ownership, raycontext, rotation, stackdump
from logconf.errors import ConfigError, current_source
from logconf.reports import WriteFailures, caller_error, tell
from logconf.sources import locate
from logconf.templating import expand_arg, has_field, has_fields, switch

if TYPE_CHECKING:
    from logconf import hold

__all__ = [
    "ConsoleHandler",
    "FilePlan",
    "RankFileHandler",
    "follow_rank",
    "live_directories",
    "parse_level",
    "plan_rank_file",
    "retarget_all",
    "switch_rank",
    "tell",
]

_LIVE: weakref.WeakSet[RankFileHandler] = weakref.WeakSet()
_FOLLOWERS: weakref.WeakSet[Any] = weakref.WeakSet()  # other writers of rank files (the stdio tee)
_T = TypeVar("_T")


def parse_level(value: object, *, file: str, key: str) -> int:
    """Return the numeric level for a name such as ``INFO``, ``warn`` or ``20``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip().upper()
    if text.isdigit():
        return int(text)
    level = logging.getLevelName(text)
    if isinstance(level, int):
        return level
    raise ConfigError(file, key, value, "unknown level", "use one of DEBUG, INFO, WARNING, ERROR, CRITICAL or a number")


def _parse_mode(value: str, *, file: str, key: str) -> int:
    try:
        mode = int(value, 8)
    except (TypeError, ValueError):
        mode = -1
    if not 0 <= mode <= 0o777:
        raise ConfigError(file, key, value, "not a file mode", "use octal digits such as 0640")
    return mode


def _component_complaint(name: str, value: str) -> str | None:
    if "/" in value or "\0" in value:
        return "holds '/' and would leave the log directory"
    if ".." in value:
        return "holds '..' and would leave the log directory"
    return None


def _locate(arg: str, value: object, factory: str = "RankFileHandler") -> str:
    return locate(factory, arg, value)


def _keyed(parse: Callable[..., _T], value: Any, arg: str, template: object, factory: str = "RankFileHandler") -> _T:
    """Return ``parse(value, file=..., key=arg)``; a ConfigError it raises names the config's key for ``arg``.

    The key is looked up (which reads the config file again) only when there is an error.
    """
    try:
        return parse(value, file=current_source(), key=arg)
    except ConfigError as exc:
        raise ConfigError(exc.file, _locate(arg, template, factory), exc.value, exc.problem, exc.expected) from None


class _Plan:
    """A RankFileHandler's arguments, resolved and checked in this process."""

    def __init__(
        self,
        directory: str,
        filename: str,
        *,
        logger_levels: Mapping[str, str] | None = None,
        file_mode: str = "0640",
        dir_mode: str = "0750",
        follow_symlinks: bool | str = False,
        reopen_check_s: float | str = 1.0,
        hold_unranked_s: float | str = 0,
        per_host: str = "${LOGCONF_PER_HOST:-auto}",
        shared_dir: bool | str = "${LOGCONF_SHARED_DIR:-0}",
        rotate_bytes: str = "${LOGCONF_ROTATE_BYTES:-0}",
        rotate_keep: str = "${LOGCONF_ROTATE_KEEP:-all}",
        rotate_compress: str = "${LOGCONF_ROTATE_COMPRESS:-1}",
        dir_max_bytes: str = "${LOGCONF_DIR_MAX_BYTES:-0}",
    ) -> None:
        self.templates = {"directory": directory, "filename": filename, "per_host": per_host}
        self.follow = switch(follow_symlinks, factory="RankFileHandler", arg="follow_symlinks")
        self.shared = switch(shared_dir, factory="RankFileHandler", arg="shared_dir")
        self.reopen_check_s = _seconds("reopen_check_s", reopen_check_s)
        self.hold_s = _seconds("hold_unranked_s", hold_unranked_s)
        self.file_mode = _keyed(_parse_mode, _expand("file_mode", file_mode), "file_mode", file_mode)
        self.dir_mode = _keyed(_parse_mode, _expand("dir_mode", dir_mode), "dir_mode", dir_mode)
        self.levels = {
            str(name): _keyed(parse_level, _level_text(f"logger_levels.{name}", template), f"logger_levels.{name}", template)
            for name, template in _mapping("logger_levels", logger_levels).items()
        }
        self.rotation = rotation.policy(rotate_bytes, rotate_keep, rotate_compress, dir_max_bytes, file_mode=self.file_mode)
        self.per_process = has_fields(directory) or has_fields(filename)
        self.network = self.per_host = False
        self.path = self.resolve()

    @property
    def repairs(self) -> bool:
        """Whether this handler may rewrite bytes it did not just append (cut-short repair, take-back).

        Not on a network filesystem shared with other hosts' writers: their appends are not
        serialised with ours, so the byte before our record, or the file's end, may be theirs.
        """
        return self.per_host or not self.network

    def resolve(self, environ: Mapping[str, str] | None = None) -> str:
        directory = os.path.abspath(os.path.expanduser(_expand("directory", self.templates["directory"], environ=environ)))
        template = self.templates["filename"]
        filename = _expand("filename", template, check=_component_complaint, environ=environ)
        if not filename or filename in (".", "..") or "/" in filename:
            raise ConfigError(
                current_source(),
                _locate("filename", template),
                filename,
                "is not a plain file name",
                "a name without '/' inside the directory",
            )
        self.network = netfs.is_network(netfs.fs_type(directory))
        mode = _expand("per_host", self.templates["per_host"], environ=environ)
        self.per_host = _keyed(functools.partial(netfs.per_host, network=self.network), mode, "per_host", mode)
        if self.per_host and not has_field(template, "hostname"):  # a name that has the host already keeps it
            filename = netfs.with_host(filename, netfs.host_name(environ, file=current_source()))
        return os.path.join(directory, filename)

    def fail(self, path: str, problem: str, expected: str) -> ConfigError:
        return ConfigError(current_source(), _locate("directory", self.templates["directory"]), path, problem, expected)

    def check(self, path: str, *, create: bool) -> None:
        """Refuse a path that cannot be written; create its directory when ``create``."""
        directory = os.path.dirname(path)
        writable = "point LOGCONF_DIR at a writable directory"
        if create:
            try:
                os.makedirs(directory, mode=self.dir_mode, exist_ok=True)
            except FileExistsError:
                raise self.fail(directory, "is a file, not a directory", writable) from None
            except OSError as exc:
                raise self.fail(directory, f"cannot create the log directory: {exc.strerror}", writable) from None
        existing = directory
        while not os.path.lexists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            raise self.fail(existing, "is a file, not a directory", writable)
        if not os.access(existing, os.W_OK | os.X_OK):
            raise self.fail(existing, "is not writable by this process", writable)
        if os.path.islink(path) and not self.follow:
            raise self.fail(
                path,
                "is a symbolic link; logconf does not follow links planted at a log file's path",
                "remove the link, or set follow_symlinks: true on the handler",
            )
        if os.path.isdir(path):
            raise self.fail(path, "is a directory", "remove it, or choose another file name")
        if os.path.isdir(directory):
            info = os.lstat(directory)
            self.refuse_foreign(directory, info)
            if stat.S_ISLNK(info.st_mode):
                self.refuse_foreign(directory, os.stat(directory))  # and the directory it leads to
        if os.path.lexists(path):
            self.refuse_foreign(path, os.lstat(path))

    def refuse_foreign(self, path: str, info: os.stat_result) -> None:
        """Refuse a log directory or file that another user controls (:mod:`logconf.ownership`), unless shared_dir."""
        complaint = None if self.shared else ownership.foreign(info)
        if complaint is None:
            return
        raise self.fail(
            path,
            f"{complaint} ({ownership.describe(info)}): that user could read every record and write forged lines",
            f"point LOGCONF_DIR at a directory of your own (by default {ownership.default_dir()}), "
            f"or set {ownership.SHARED_ENV}=1 to share this one on purpose",
        )


def _expand(
    arg: str, template: str, check=None, factory: str = "RankFileHandler", environ: Mapping[str, str] | None = None
) -> str:
    return expand_arg(template, factory=factory, arg=arg, check_value=check, environ=environ)


def _mapping(arg: str, value: object) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(
            current_source(), _locate(arg, value), value, "is not a mapping", "map logger names to levels: {vllm: INFO}"
        )
    return value


def _level_text(arg: str, template: object, factory: str = "RankFileHandler") -> object:
    # A number is a level already (YAML reads `vllm: 10` as one); anything else is a template.
    if isinstance(template, int) and not isinstance(template, bool):
        return template
    return _expand(arg, template, factory=factory)  # type: ignore[arg-type]


def _seconds(arg: str, template: float | str) -> float:
    text = _expand(arg, template) if isinstance(template, str) else str(template)
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ConfigError(current_source(), _locate(arg, template), text, "not a number of seconds", "use a number >= 0")
    return value


FilePlan = _Plan  # public name: logconf.capture resolves the stdio copy's path with it


# While apply() runs: the plans its check made, by arguments, for the handlers its dictConfig makes
# next (resolving a handler's templates is most of what it costs to make).
_PLANS: dict[str, _Plan] | None = None


@contextlib.contextmanager
def planning() -> Iterator[None]:
    """Let the RankFileHandlers made in this block take the plans that :func:`plan_rank_file` made in it."""
    global _PLANS
    _PLANS = {}
    try:
        yield
    finally:
        _PLANS = None


def _plan_key(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    named = dict(zip(("directory", "filename"), args, strict=False))
    named.update(kwargs)
    return repr(sorted(named.items()))


def plan_rank_file(*args: Any, create: bool = False, **kwargs: Any) -> str:
    """Resolve and check a RankFileHandler's arguments without opening anything; return its path."""
    plan = _Plan(*args, **kwargs)
    plan.check(plan.path, create=create)
    plans = _PLANS
    if plans is not None:
        plans[_plan_key(args, kwargs)] = plan
    return plan.path


class RankFileHandler(logging.Handler):
    """Append records to ``directory/filename``, both templates resolved in this process.

    It survives what a training run does to it: ``close()`` by a later ``dictConfig``
    (the next record reopens the file), a rename or deletion by logrotate or a user (noticed
    within ``reopen_check_s``), a full disk (reported once, recovered without
    a restart) and ``set_rank`` (it moves to the new rank's file). ``logger_levels`` sets the
    levels of the loggers it serves from the environment, so disabled calls stay as cheap as ever.
    With ``rotate_bytes`` it rotates the file, once among all the processes that share it
    (:mod:`logconf.rotation`): its periodic check reads the size, and it counts its own bytes
    between checks.

    Its parts: :class:`logconf.hold.Holder` keeps the records of a Ray actor whose rank is not
    known yet (on disk in a spill file, in memory for their rank); ``_append`` writes one record,
    ``_end_cut_short`` and ``_take_back`` repair what a killed writer or a full disk left;
    :class:`logconf.reports.WriteFailures` and :func:`logconf.reports.caller_error` say what
    went wrong, and whose fault it is. The process it runs in can be asked for its stacks
    (:mod:`logconf.stackdump`).
    """

    reachable = True  # register the process for `logconf stacks` (not logconf's own helper processes)

    def __init__(self, directory: str, filename: str, **options: Any) -> None:
        # Resolve first: a handler that fails here must not be registered with logging, whose
        # next shutdown (every later dictConfig, and interpreter exit) would close it half-built.
        plans = _PLANS
        planned = plans.pop(_plan_key((directory, filename), options), None) if plans is not None else None
        plan = planned if planned is not None else _Plan(directory, filename, **options)
        if self.reachable:
            stackdump.settings()  # a bad LOGCONF_STACKS_SIGNAL or LOGCONF_STALL_S fails here, by name
        self._fd: int | None = None
        super().__init__()
        self._plan = plan
        self.path = self._plan.path
        self._identity: tuple[int, int] | None = None
        self._next_check = 0.0
        self._failures = WriteFailures()
        self._forked = False
        self._torn = False  # the file ends with a record cut short: start the next on a fresh line
        self._regular = self._readable = False
        self._last_end = -1  # where this handler's last record ended in the file
        policy = self._plan.rotation
        self._rotator: rotation.Rotator | None = None
        if policy is not None:
            from logconf.retention import maintain  # here: a process whose files do not rotate never loads it

            self._rotator = rotation.Rotator(policy, maintain)
        self._room = math.inf  # bytes this process may append before its check is due (rotation)
        self.apply_levels()
        # A Ray actor without a rank may be told it in __init__ (logconf.set_rank): hold its
        # records until then, so that they land in the right rank's file, with that rank.
        self._held: hold.Holder | None = None
        if self._plan.hold_s > 0 and raycontext.unranked_actor():
            from logconf import hold  # here: only a Ray actor without a rank loads it

            self._plan.check(self.path, create=True)
            self._held = hold.Holder.join(self, _release_when_due)
        if self._held is not None:
            self._reach()
        else:
            self._open()
        _LIVE.add(self)
        keep.adopt(self, files=True)

    def _reach(self) -> None:
        """Let `logconf stacks` reach this process: once per process, and again in a fork child."""
        if self.reachable:
            with contextlib.suppress(ConfigError):  # checked in __init__; changed since: leave it
                registration = stackdump.register(os.path.dirname(self.path))
                if registration is not None:
                    follow_rank(registration)

    # The write-failure counters, by the names that subclasses (logconf.capture) use.
    @property
    def _failing(self) -> bool:
        return self._failures.failing

    @_failing.setter
    def _failing(self, value: bool) -> None:
        self._failures.failing = value

    @property
    def _dropped(self) -> int:
        return self._failures.dropped

    @_dropped.setter
    def _dropped(self, value: int) -> None:
        self._failures.dropped = value

    def apply_levels(self, names: tuple[str, ...] | None = None) -> None:
        """Set the levels that ``logger_levels`` gives the loggers it names (or only ``names``)."""
        for name, level in self._plan.levels.items():
            if names is None or name in names:
                logging.getLogger(name).setLevel(level)

    def _open(self) -> int:
        """Open ``self.path`` for appending; raise ConfigError naming the path if impossible."""
        plan = self._plan
        plan.check(self.path, create=True)
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC  # read: see _end_cut_short
        if not plan.follow:
            flags |= os.O_NOFOLLOW
        for attempt in range(3):
            try:
                try:
                    fd = os.open(self.path, flags, plan.file_mode)
                except PermissionError:  # a file we may append to but not read: no cut-short repair
                    fd = os.open(self.path, flags & ~os.O_RDWR | os.O_WRONLY, plan.file_mode)
                    flags = 0
            except OSError as exc:
                raise plan.fail(
                    self.path, f"cannot open the log file: {exc.strerror}", "point LOGCONF_DIR at a writable directory"
                ) from None
            if rotation.share(fd) or attempt == 2:  # held until closed: no writer's file is compressed
                break
            os.close(fd)  # a rotated file being compressed was at the path a moment ago: open the path again
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) and not plan.follow:
            os.close(fd)
            raise plan.fail(self.path, "is not a regular file", "point the handler at a regular file")
        try:
            plan.refuse_foreign(self.path, info)  # the file opened, whoever put it there since check()
        except ConfigError:
            os.close(fd)
            raise
        self._fd, self._identity = fd, (info.st_dev, info.st_ino)
        if self._rotator is not None:
            self._room = self._rotator.room(info.st_size)
            rotation.watch(self, plan.reopen_check_s)
        self._torn = self._torn and info.st_size > 0
        self._regular = stat.S_ISREG(info.st_mode)
        self._forked = False  # this descriptor, and so its offset, belongs to this process alone
        self._readable = flags != 0
        self._last_end = -1
        self._next_check = time.monotonic() + plan.reopen_check_s
        self._reach()
        return fd

    def retarget(self) -> None:
        """Re-resolve the templates (after ``set_rank`` or fork); the next record opens the new file."""
        with self.lock:  # type: ignore[union-attr]
            path = self._plan.resolve()
            if path == self.path:
                return
            self._plan.check(path, create=True)
            old, self.path, self._fd = self._fd, path, None
            if old is not None:
                os.close(old)

    # -- writing ----------------------------------------------------------------------

    def _ready_fd(self) -> int:
        """The descriptor to write to now: reopened after close, fork, rename or deletion."""
        fd = self._fd
        if fd is None or self._forked or time.monotonic() >= self._next_check:
            fd = self._current_fd(time.monotonic())
        return fd

    def _current_fd(self, now: float) -> int:
        if self._forked:
            # Per-process fields ({pid}, ...) may name another file now, and the parent's
            # descriptor shares its file offset, which _end_cut_short reads: resolve and reopen.
            if self._plan.per_process:
                self.retarget()
            fd, self._fd = self._fd, None
            if fd is not None:
                os.close(fd)
            return self._open()
        fd = self._fd
        if fd is None:
            return self._open()
        self._next_check = now + self._plan.reopen_check_s
        try:
            info = os.stat(self.path, follow_symlinks=self._plan.follow)
            moved = (info.st_dev, info.st_ino) != self._identity
        except FileNotFoundError:
            moved = True
        if not moved and self._rotator is not None:
            if info.st_size >= self._rotator.max_bytes:
                moved = self._rotator.rotate(self.path, self._identity)
            self._room = self._rotator.room(info.st_size)
        if moved:  # renamed by logrotate or a rotation, or deleted with its directory: start a fresh file
            self._fd = None
            os.close(fd)
            return self._open()
        return fd

    def recheck(self) -> None:
        """Run the periodic check if it is due: a process that logs nothing still lets go of a rotated file."""
        with self.lock:  # type: ignore[union-attr]
            if self._fd is not None and not self._forked and time.monotonic() >= self._next_check:
                self._current_fd(time.monotonic())

    def emit(self, record: logging.LogRecord) -> None:
        # A record that cannot be formatted is its caller's bug, reported as stdlib logging
        # reports it; a file that cannot be written is a write failure, reported once per outage.
        try:
            held = self._held
            if held is not None:
                if held.take(record):
                    return
                self._held = None  # the hold has ended: write at once
            data = self._encode(record)
        except RecursionError:
            raise
        except Exception as exc:
            caller_error(record, exc)
            return
        try:
            self._append(data)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def _encode(self, record: logging.LogRecord) -> bytes:
        return (self.format(record) + "\n").encode("utf-8", "backslashreplace")

    def _write(self, record: logging.LogRecord) -> None:
        """Format and append one record; raise what fails (``emit`` tells the two kinds apart)."""
        self._append(self._encode(record))

    def _append(self, data: bytes) -> None:
        fd = self._ready_fd()
        if self._torn:
            data = b"\n" + data
        written = os.write(fd, data)
        if written < len(data):  # a full device took only the head of the record
            self._take_back(fd, written, len(data))
        self._room -= written
        if self._room <= 0:  # this process's own bytes fill the file: check (and rotate) at the next record
            self._next_check = 0.0
        if self._regular and self._readable and not self._torn and self._plan.repairs:
            self._end_cut_short(fd, written)
        self._torn = False
        if self._failures.failing:
            self._recovered()

    def _end_cut_short(self, fd: int, size: int) -> None:
        """Put this record on its own line when the write before it was cut short.

        Appends to a local file are serialised, so the byte before this record is the last
        byte of the previous write. Anything but a newline means that write stopped early:
        Linux ends a write(2) at a page boundary when its process gets SIGKILL. That byte is
        overwritten with a newline, which ends the killed writer's partial line in place.
        """
        try:
            end = os.lseek(fd, 0, os.SEEK_CUR)
            start, previous, self._last_end = end - size, self._last_end, end
            if start <= 0 or start == previous:
                return  # the bytes before it are this handler's last record, whole
            if os.pread(fd, 1, start - 1) in (b"\n", b""):
                return  # b"": truncated meanwhile (copytruncate); writing there would leave a NUL hole
            fix = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_CLOEXEC)  # the same file, not appending
            try:
                os.pwrite(fix, b"\n", start - 1)
            finally:
                os.close(fix)
        except OSError:
            pass  # the record itself is written; this repair is best effort

    def _take_back(self, fd: int, written: int, size: int) -> None:
        """Remove the head of a record cut short, so that no torn line stays behind; then raise.

        Writing the rest instead could land after another process's record, or fail again on
        the full device. The head is removed only while the file still ends where it ends;
        if another process appended meanwhile, the next record starts on a fresh line instead.
        """
        try:
            end = os.lseek(fd, 0, os.SEEK_CUR)
            if self._plan.repairs and os.fstat(fd).st_size == end:
                os.ftruncate(fd, end - written)
            else:
                self._torn = True
        except OSError:
            self._torn = True
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)}: only {written} of {size} bytes fitted; record dropped")

    # -- telling what failed (logconf.reports) -------------------------------------------

    def handleError(self, record: logging.LogRecord) -> None:
        """Report the first write failure of a run of them once on stderr, count the rest; never raise."""
        self._failures.failed(self.path, sys.exc_info()[1])

    def _recovered(self) -> None:
        self._failures.recovered(self.path)

    def flush(self) -> None:
        """Nothing to flush: every record is written to the kernel as it is emitted."""

    def close(self) -> None:
        """Close the file (the next record reopens it); what is held stays held, in its spill file.

        dictConfig closes every handler (logging.shutdown) before it builds new ones: vLLM and
        uvicorn do so while a Ray actor may still be without its rank. The hold goes on until
        set_rank, its time, its caps or exit; a process that ends first leaves the spill file.
        """
        with self.lock:  # type: ignore[union-attr]
            fd, self._fd = self._fd, None
            if fd is not None:
                os.close(fd)
        super().close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path} ({logging.getLevelName(self.level)})>"


class ConsoleHandler(logging.StreamHandler):
    """Write to whatever ``sys.stderr`` (or stdout) is at emit time, from ``threshold`` up.

    Looking the stream up per record keeps it working when Ray, vLLM or a test harness
    replaces ``sys.stderr`` after the config was applied. A record is printed once: this
    handler yields it when another handler on the record's way writes it to the same stream
    (a framework's own console on root, beside logconf's), and of several logconf consoles on
    that way only the nearest to the record prints it.
    """

    def __init__(self, threshold: str = "${LOGCONF_CONSOLE_LEVEL:-WARNING}", stream: str = "stderr") -> None:
        if stream not in ("stderr", "stdout"):
            raise ConfigError(
                current_source(),
                _locate("stream", stream, "ConsoleHandler"),
                stream,
                "unknown stream",
                "use 'stderr' or 'stdout'",
            )
        self._stream_name = stream
        super().__init__()
        text = _level_text("threshold", threshold, "ConsoleHandler")
        self.setLevel(_keyed(parse_level, text, "threshold", threshold, "ConsoleHandler"))
        keep.adopt(self)

    def emit(self, record: logging.LogRecord) -> None:
        if not self._printed_elsewhere(record):
            super().emit(record)

    def _printed_elsewhere(self, record: logging.LogRecord) -> bool:
        """Tell whether another handler on the way of ``record`` prints it to this handler's stream."""
        stream = self.stream
        logger = logging.root.manager.loggerDict.get(record.name)
        current: logging.Logger | None = logger if isinstance(logger, logging.Logger) else logging.root
        nearest: ConsoleHandler | None = None
        while current is not None:
            for handler in current.handlers:
                if record.levelno < handler.level or not isinstance(handler, logging.StreamHandler):
                    continue
                if isinstance(handler, ConsoleHandler):
                    if nearest is None and handler._stream_name == self._stream_name:
                        nearest = handler
                elif _same_stream(handler.stream, stream):
                    return True  # a framework's own console: its choice of format stands
            current = current.parent if current.propagate else None
        return nearest is not None and nearest is not self

    @property
    def stream(self) -> TextIO:
        return getattr(sys, self._stream_name)

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # the stream is looked up per record


def _same_stream(one: Any, other: Any) -> bool:
    if one is other:
        return True
    try:
        return one is not None and other is not None and one.fileno() == other.fileno()
    except Exception:  # a stream without a descriptor (StringIO, a test harness's capture)
        return False


def _holding() -> list[hold.RecordHold]:
    """This process's holds: none where no handler ever held (the first that does loads logconf.hold)."""
    loaded = sys.modules.get("logconf.hold")
    return loaded.holding() if loaded is not None else []


def _release(held: hold.RecordHold) -> None:
    from logconf import hold  # loaded already: there is a hold

    hold.release(held)


def _release_when_due(held: hold.RecordHold) -> None:
    if held.ended:
        return
    try:
        switch_rank(releasing=[held])  # the rank (and Ray actor) as known now
    except Exception as exc:  # a rank that went bad since: write where the rank was last known
        tell(f"logconf: cannot follow the rank at the end of the hold: {exc}\n")
        _release(held)


def switch_rank(refresh: Callable[[], None] | None = None, releasing: Iterable[hold.RecordHold] | None = None) -> None:
    """Move every live RankFileHandler to the current rank; write what every hold (or each of ``releasing``) held.

    The formatters (``refresh``, by default :func:`logconf.formatters.refresh_all`) and the
    handlers switch while every handler's lock is held, so no record is formatted with one rank
    and written to another's file. The locks are taken in one order, so two switches never wait
    on each other; a thread that logs holds one handler lock at a time.
    """
    if refresh is None:
        from logconf.linebase import refresh_all  # linebase imports templating, which this module imports too

        refresh = refresh_all
    holds = _holding() if releasing is None else list(releasing)
    every = sorted(set(_LIVE).union(*(h.handlers() for h in holds)), key=id)
    with contextlib.ExitStack() as locked:
        for handler in every:
            locked.enter_context(handler.lock)  # type: ignore[arg-type]
        refresh()
        for handler in every:
            handler.retarget()
        for held in holds:
            _release(held)
    if releasing is None:  # the stdio tee's copy follows too, after the locks: it waits on its tee's reply
        for writer in list(_FOLLOWERS):
            writer.retarget(release=True)


def follow_rank(writer: Any) -> None:
    """Have ``switch_rank`` call ``writer.retarget(release=True)`` too (the stdio tee's file follows the rank)."""
    _FOLLOWERS.add(writer)


def live_directories() -> list[str]:
    """The directories that this process's live RankFileHandlers write into."""
    return sorted({os.path.dirname(h.path) for h in list(_LIVE) if h.reachable})


def retarget_all() -> None:
    """Move every live RankFileHandler, its formatters and the rank's other writers to the current rank."""
    switch_rank()


@atexit.register  # registered after logging's own, so it runs before logging.shutdown()
def _release_held_at_exit() -> None:
    holds = _holding()
    if not holds:
        return
    try:
        switch_rank()  # the rank as known at exit
    except Exception:
        for held in holds:
            _release(held)  # a rank that went bad since: write where the rank was last known


def _after_fork_in_child() -> None:
    # The parent writes what it held (logconf.hold forgets it here); this process writes its own
    # records at once, to a descriptor of its own.
    for handler in list(_LIVE):
        handler._forked = True


os.register_at_fork(after_in_child=_after_fork_in_child)
