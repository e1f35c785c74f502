"""Make each process that logs through logconf write its threads' stacks when ``logconf stacks`` asks.

Every process that builds a :class:`logconf.handlers.RankFileHandler` (the trainer through
``apply()``, vLLM's engine actor, EngineCore and workers through ``vllm_logging.json``) calls
:func:`register` once: :func:`faulthandler.register` then dumps every thread's Python stack, from
C, to a file of this process's own when the stacks signal arrives. The dump needs neither the
GIL nor the interpreter's attention, so it works while the process is blocked in a lock, a
socket, a collective or a C call that holds the GIL.

Beside the dump file, a small JSON record (pid, start time, host, boot id, rank, process name,
log directories, signal) lets ``logconf stacks`` find the process, make sure the pid is still
that process (and still catches the signal: an ``exec`` resets handlers, and the default action
of the signal would end it), signal it and read the dump back. Both live in a private
directory of this user on this machine (``LOGCONF_STACKS_DIR``), not in the run's log
directory. A handler that already caught the signal in this process keeps it (``chain``).
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # the C module: signal.py builds enums every process would pay for
import atexit
import contextlib
import faulthandler
import functools
import json
import os
import re
import stat
import sys
import threading
from typing import Any

from logconf import raycontext
from logconf.errors import ConfigError, current_source
from logconf.linebase import resolve_rank
from logconf.reports import tell

__all__ = [
    "DEFAULT_SIGNAL",
    "Registration",
    "Settings",
    "caught_signals",
    "host_key",
    "process_start",
    "register",
    "registered",
    "registry_dir",
    "settings",
]

SIGNAL_ENV = "LOGCONF_STACKS_SIGNAL"
DIR_ENV = "LOGCONF_STACKS_DIR"
STALL_ENV = "LOGCONF_STALL_S"
# Neither vLLM, Ray, torch nor SkyRL installs a handler for this signal (SIGUSR1 and SIGUSR2 are
# taken by Ray Tune, Ray's dashboard, torchrun's forwarding and SLURM); glibc keeps the two
# real-time signals below SIGRTMIN for itself.
DEFAULT_SIGNAL = "SIGRTMIN+5"
SCHEMA = "logconf.stackdump/1"
_OFF = ("off", "0", "none", "no", "false")
# faulthandler refuses these (it handles the fatal ones through enable()); nobody can catch the others.
_REFUSED = {"SIGKILL", "SIGSTOP", "SIGSEGV", "SIGFPE", "SIGABRT", "SIGBUS", "SIGILL"}
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


class Settings:
    """What the environment asks of this process: the signal (None: off), where records live, the stall time.

    A plain class, not a NamedTuple: see :class:`logconf.rotation.Policy`.
    """

    __slots__ = ("directory", "signum", "stall_s")

    def __init__(self, signum: int | None, directory: str, stall_s: float) -> None:
        self.signum = signum
        self.directory = directory
        self.stall_s = stall_s

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and (self.signum, self.directory, self.stall_s) == (
            other.signum, other.directory, other.stall_s)

    def __hash__(self) -> int:
        return hash((self.signum, self.directory, self.stall_s))

    def __repr__(self) -> str:
        return f"Settings(signum={self.signum!r}, directory={self.directory!r}, stall_s={self.stall_s!r})"


def _refuse(key: str, value: str, problem: str, expected: str) -> ConfigError:
    return ConfigError(current_source(), key, value, problem, expected)


def parse_signal(text: str, key: str = SIGNAL_ENV) -> int | None:
    """Return the signal number that ``text`` names (``SIGRTMIN+5``, ``USR2``, ``40``), or None for ``off``."""
    expected = f"name a signal such as {DEFAULT_SIGNAL}, SIGRTMAX-2 or SIGUSR2, give its number, or 'off'"
    word = text.strip().upper()
    if word.lower() in _OFF:
        return None
    if word.isdigit():
        number = int(word)
    else:
        name = word if word.startswith("SIG") else "SIG" + word
        if name in _REFUSED:
            raise _refuse(key, text, "cannot carry stack dumps", expected)
        rt = _realtime(name)
        if rt is not None:
            number = rt
        else:
            found = None if name.startswith("SIG_") else getattr(_signal, name, None)  # SIG_IGN, SIG_BLOCK...: no signal
            if not isinstance(found, int):
                raise _refuse(key, text, "is not a signal", expected)
            number = found
    if number not in _usable():
        raise _refuse(key, text, "is not a signal that can carry stack dumps here", expected)
    return number


@functools.cache
def _usable() -> frozenset[int]:
    """The signals this machine has and faulthandler may take (once: each process parses its setting twice)."""
    refused = {getattr(_signal, n) for n in _REFUSED if hasattr(_signal, n)}
    return frozenset(_signal.valid_signals()) - refused - {0}


def _realtime(name: str) -> int | None:
    """``SIGRTMIN``, ``SIGRTMAX``, ``SIGRTMIN+5``, ``SIGRTMAX-2``: the number; None for any other name.

    Read by hand, not by a regular expression: every configured process parses the default, and
    compiling a pattern would cost each of them more than the rest of this module's start-up.
    """
    for edge, base in (("SIGRTMIN", _signal.SIGRTMIN), ("SIGRTMAX", _signal.SIGRTMAX)):
        if name.startswith(edge):
            rest = name[len(edge):]
            if not rest:
                return base
            if rest[0] in "+-" and rest[1:].isdigit() and rest[1:].isascii():
                offset = int(rest[1:])
                return base + offset if rest[0] == "+" else base - offset
    return None


def _file_name(text: str) -> str:
    """``text`` with each run of characters other than letters, digits, ``.``, ``_`` and ``-`` made one ``_``."""
    if _SAFE.issuperset(text):
        return text
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def signal_name(number: int) -> str:
    """Name a signal as the environment variable takes it (``SIGRTMIN+5``, ``SIGUSR2``)."""
    import signal

    if signal.SIGRTMIN <= number <= signal.SIGRTMAX:
        return f"SIGRTMIN+{number - signal.SIGRTMIN}"
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _temp_dir(env: Any) -> str:
    # tempfile.gettempdir()'s choice (TMPDIR, TEMP, TMP, then /tmp) without importing tempfile, which
    # costs every configured process some 15 ms (shutil, bz2, lzma...).
    for name in ("TMPDIR", "TEMP", "TMP"):
        value = env.get(name)
        if value and os.path.isdir(value):
            return os.path.abspath(value)
    return "/tmp"


def registry_dir(environ: Any = None) -> str:
    """Return the directory of this user's registrations on this machine (``LOGCONF_STACKS_DIR``)."""
    env = os.environ if environ is None else environ
    value = env.get(DIR_ENV)
    if value is None:
        return os.path.join(_temp_dir(env), f"logconf-stacks-{os.getuid()}")
    if not value:
        raise _refuse(DIR_ENV, value, "is empty", "unset it, or name a directory")
    return os.path.abspath(os.path.expanduser(value))


def settings(environ: Any = None) -> Settings:
    """Read ``LOGCONF_STACKS_SIGNAL``, ``LOGCONF_STACKS_DIR`` and ``LOGCONF_STALL_S``; raise ConfigError on a bad one."""
    env = os.environ if environ is None else environ
    raw_signal = env.get(SIGNAL_ENV, DEFAULT_SIGNAL)
    if not raw_signal:
        raise _refuse(SIGNAL_ENV, raw_signal, "is empty", f"unset it (default {DEFAULT_SIGNAL}), or say 'off'")
    raw_stall = env.get(STALL_ENV, "0")
    try:
        stall = float(raw_stall)
    except ValueError:
        stall = -1.0
    if not stall >= 0 or stall == float("inf"):
        raise _refuse(STALL_ENV, raw_stall, "is not a number of seconds", "use a number > 0, or 0 for off")
    return Settings(parse_signal(raw_signal), registry_dir(env), stall)


def private_dir(path: str) -> None:
    """Create ``path`` (mode 0700) if missing; refuse one that another user owns or others may write."""
    with contextlib.suppress(FileExistsError):
        os.makedirs(path, mode=0o700)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise PermissionError(f"{path} is not a private directory of this user (mode 0700, owned by uid {os.getuid()})")


def process_start(pid: int | str = "self") -> int | None:
    """Return a process's start time in clock ticks since boot (``/proc/<pid>/stat``), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            fields = file.read().rsplit(b")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def caught_signals(pid: int | str = "self") -> int:
    """Return the mask of signals that ``pid`` has a handler for (``SigCgt``); 0 if unreadable."""
    try:  # bytes: a text file would load the ascii codec's module in every configured process
        with open(f"/proc/{pid}/status", "rb") as file:
            for line in file:
                if line.startswith(b"SigCgt:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return 0


def catches(mask: int, signum: int) -> bool:
    """Tell whether a ``SigCgt`` mask holds ``signum``."""
    return bool(mask >> (signum - 1) & 1)


def host_key() -> tuple[str, str]:
    """This machine as registrations name it: host name and kernel boot id (pids and start times are per boot)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as file:
            boot = file.read().strip().decode("ascii")
    except (OSError, ValueError):
        boot = ""
    return os.uname().nodename, boot  # gethostname() without importing socket


def _process_name() -> str:
    mp = sys.modules.get("multiprocessing")
    name = mp.current_process().name if mp else "MainProcess"
    if name == "MainProcess":
        return raycontext.actor_class() or name  # an actor's main process, as the formatters name it
    return name


def _rank() -> str | None:
    try:
        return resolve_rank()
    except ConfigError:
        return None


class Registration:
    """This process's dump file and record; ``retarget`` (called by ``set_rank``) keeps the record current."""

    def __init__(self, config: Settings, log_dir: str) -> None:
        assert config.signum is not None
        private_dir(config.directory)
        self.pid = os.getpid()
        self.signum = config.signum
        self.host, self.boot = host_key()
        stem = os.path.join(config.directory, f"{_file_name(self.host)}-{self.pid}")
        self.path, self.dump = stem + ".json", stem + ".stacks"
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW
        self.fd = os.open(self.dump, flags, 0o600)  # appends: the collector reads from the size it saw
        self.chained = catches(caught_signals(), self.signum)
        try:
            # chain only to a handler that exists: chaining to the default action would end the process
            faulthandler.register(self.signum, file=self.fd, all_threads=True, chain=self.chained)
        except (OSError, RuntimeError, ValueError):
            os.close(self.fd)
            raise
        self.dirs = [log_dir]
        self.fields: dict[str, Any] = {}
        self.retarget()

    def record(self) -> dict[str, Any]:
        """What ``logconf stacks`` reads about this process."""
        return {
            "schema": SCHEMA,
            "pid": self.pid,
            "start": process_start(),
            "host": self.host,
            "boot_id": self.boot,
            "rank": _rank(),
            "process_name": _process_name(),
            "main_thread": threading.main_thread().ident,
            "signal": self.signum,
            "chained": self.chained,
            "dump": self.dump,
            "dirs": list(self.dirs),
        }

    def retarget(self, release: bool = False) -> None:
        """Write the record again if the rank, the process name or the directories changed; never raise."""
        if self.pid != os.getpid():
            return
        fields = self.record()
        if fields == self.fields:
            return
        temporary = f"{self.path}.{self.pid}.tmp"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW
            data = json.dumps(fields).encode()
            fd = os.open(temporary, flags, 0o600)
            try:
                while data:  # os.write, not a file object: a text file costs more than the record
                    data = data[os.write(fd, data) :]
            finally:
                os.close(fd)
            os.replace(temporary, self.path)  # the collector never reads half a record
            self.fields = fields
        except OSError as exc:
            tell(f"logconf: cannot record this process for `logconf stacks` in {self.path}: {exc}\n")

    def add_dir(self, log_dir: str) -> None:
        """Record ``log_dir`` too, and what may have changed since (a spawn child learns its name late)."""
        if log_dir not in self.dirs:
            self.dirs.append(log_dir)
        self.retarget()

    def close(self) -> None:
        """At exit: remove the record and the dump file (a stall's dumps were copied beside the logs)."""
        if self.pid != os.getpid():
            return
        for path in (self.path, self.dump):
            with contextlib.suppress(OSError):
                os.unlink(path)


_CURRENT: Registration | None = None
_FAILED: set[str] = set()  # registries this process could not use: said once
_LOCK = threading.Lock()
_WATCHED: set[tuple[int, str]] = set()  # (pid, log directory) whose stall watcher this process saw to
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What the starter runs: fork at once and exit, so the watcher is no process's child (see logconf.tee).
_BOOT = (
    "import os, sys\n"
    "if os.fork(): os._exit(0)\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "from logconf.stallwatch import main\n"
    "sys.exit(main(sys.argv[2:]))\n"
)


def watcher_lock(registry: str, log_dir: str) -> str:
    """The lock file that the one stall watcher of ``log_dir`` on this machine holds while it runs."""
    import hashlib

    return os.path.join(registry, f"stall-{hashlib.sha256(log_dir.encode()).hexdigest()[:16]}.lock")


def ensure_watcher(log_dir: str, config: Settings) -> None:
    """Start the stall watcher of ``log_dir`` on this machine unless one runs (:mod:`logconf.stallwatch`)."""
    import fcntl
    import subprocess

    if (os.getpid(), log_dir) in _WATCHED:
        return
    _WATCHED.add((os.getpid(), log_dir))
    lock = watcher_lock(config.directory, log_dir)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # a watcher holds it
        finally:
            os.close(fd)  # releases the test lock; the watcher takes it for good (and a second one exits)
        env = {k: v for k, v in os.environ.items() if k != "LOGCONF_AUTO"}
        env[SIGNAL_ENV] = "off"  # the watcher is not a process of the run: it never registers
        spec = {"log_dir": log_dir, "registry": config.directory, "stall_s": config.stall_s, "signal": config.signum}
        starter = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT, _PACKAGE_ROOT, json.dumps(spec)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # a pipe here (a stdio tee's) would stay open as long as the watcher
            close_fds=True,
            start_new_session=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        tell(f"logconf: {STALL_ENV} is set but the stall watcher of {log_dir} cannot start: {exc}\n")
        return
    threading.Thread(target=starter.wait, name="logconf-stall-starter", daemon=True).start()


def registered() -> Registration | None:
    """Return this process's registration, or None."""
    current = _CURRENT
    return current if current is not None and current.pid == os.getpid() else None


def register(log_dir: str) -> Registration | None:
    """Have this process dump its stacks on the stacks signal, once; record it as writing into ``log_dir``.

    Raises ConfigError for a bad ``LOGCONF_STACKS_SIGNAL``, ``LOGCONF_STACKS_DIR`` or
    ``LOGCONF_STALL_S``; any other failure is said once on stderr and the process goes on.
    """
    global _CURRENT
    config = settings()
    if config.signum is None:
        return None
    with _LOCK:
        current = registered()
        if current is not None:
            current.add_dir(log_dir)
        elif config.directory not in _FAILED:
            if _CURRENT is not None:  # a fork child: the parent's dump file is the parent's
                with contextlib.suppress(OSError):
                    os.close(_CURRENT.fd)
                _CURRENT = None
            try:
                current = _CURRENT = Registration(config, log_dir)
            except (OSError, RuntimeError, ValueError) as exc:
                _FAILED.add(config.directory)
                tell(f"logconf: `logconf stacks` cannot reach this process (pid {os.getpid()}): {exc}\n")
                return None
    if current is not None and config.stall_s > 0:
        ensure_watcher(log_dir, config)
    return current


@atexit.register
def _close_at_exit() -> None:
    current = registered()
    if current is not None:
        current.close()


def _after_fork_in_child() -> None:
    """A multiprocessing child registers itself at once; any other fork child at its first record."""
    if _CURRENT is None or _CURRENT.pid == os.getpid():
        return
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.register_after_fork(_CURRENT, _register_child)


def _register_child(parent: Registration) -> None:
    with contextlib.suppress(Exception):  # a child must come up even if it cannot be reached
        for log_dir in parent.dirs:
            register(log_dir)


os.register_at_fork(after_in_child=_after_fork_in_child)
