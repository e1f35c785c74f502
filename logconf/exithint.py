"""When the job's driver ends with an uncaught exception, point at the run's first error, on stderr.

SkyRL's driver, for one, only learns that an engine "failed to start"; the cause is another
process's traceback in a rank file. ``apply()`` registers an exit handler, once per process
(:func:`logconf.config.apply`; this module is loaded only by a process that ends with an uncaught
exception). Python sets ``sys.last_value`` once it has printed an uncaught exception's traceback,
whoever owns ``sys.excepthook`` (Rich, Ray or a framework may replace it), and runs the exit
handlers after that: :func:`at_exit`, in a process that is neither a Ray worker nor a
multiprocessing child, then reads this process's log directories on this machine for the run's
first error (:func:`logconf.failures.scan`, records since this process started) and prints
where it is, who logged it, its message and its traceback's last lines, and the commands that
show the rest. A driver that ends normally, by ``sys.exit`` or by Ctrl-C prints nothing more.
"""

from __future__ import annotations

import os
import sys
import time

from logconf import raycontext
from logconf.reports import tell

__all__ = ["BUDGET_S", "at_exit", "hint"]

BUDGET_S = 10.0  # the most the handler reads at exit; past it, it says where to look instead
TAIL = 6  # traceback lines shown


def _started_at(fallback: float) -> float:
    """This process's start, as a Unix time (``/proc``, to 10 ms), or ``fallback`` if it cannot be read."""
    try:
        with open("/proc/self/stat", "rb") as file:
            ticks = int(file.read().rsplit(b")", 1)[1].split()[19])
        with open("/proc/uptime", "rb") as file:  # bytes: no codec module to load
            uptime = float(file.read().split()[0])
        return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return fallback


def _child() -> bool:
    mp = sys.modules.get("multiprocessing")
    return bool(mp and mp.parent_process() is not None)


def _uncaught() -> BaseException | None:
    """The exception that ended ``__main__``, or None.

    ``sys.last_value`` alone is not enough: a tool that catches exceptions (pytest, for a failed
    test) may set it too. An uncaught exception's traceback starts in the module-level code of
    ``__main__`` (a script, ``-c``), or in runpy for ``python -m``.
    """
    error, trace = getattr(sys, "last_value", None), getattr(sys, "last_traceback", None)
    if error is None or trace is None or error.__traceback__ is not trace:
        return None
    frame = trace.tb_frame
    module = frame.f_globals.get("__name__")
    return error if (module == "__main__" and frame.f_code.co_name == "<module>") or module == "runpy" else None


def at_exit(applied_at: float) -> None:
    """Print where the run's first error is, if ``__main__`` ended with an uncaught exception (an exit handler)."""
    error = _uncaught()
    if error is None or isinstance(error, KeyboardInterrupt) or raycontext.is_ray_worker() or _child():
        return
    if hasattr(sys, "ps1") or sys.flags.interactive:  # an interactive session keeps its last error around
        return
    try:
        text = hint(_log_dirs(), _started_at(applied_at))
    except Exception as exc:  # the program has failed already; this must not add a traceback of its own
        text = f"logconf: could not look for the run's first error: {exc}\n"
    if text:
        tell(text)


def _log_dirs() -> list[str]:
    from logconf.handlers import live_directories

    return live_directories()


def hint(directories: list[str], since: float, budget_s: float = BUDGET_S) -> str:
    """The lines to print: the first error found in ``directories`` since ``since`` (a Unix time), and where to look next."""
    from logconf.failures import scan, utc

    first = None
    found_in = ""
    complete = True
    for directory in directories:
        try:
            report = scan(directory, since=utc(since), deadline_s=budget_s)
        except ValueError:  # a directory without rank files (LogDirError)
            continue
        complete = complete and report.complete
        if report.first is not None and (first is None or report.first.time < first.time):
            first, found_in = report.first, directory
    if first is None:
        if complete:
            return ""
        where = " ".join(directories)
        return f"logconf: no error found in the time allowed; every error of the run: logconf errors {where}\n"
    lines = [
        f"logconf: the first error of this run on this host ({found_in}): {first.file} line {first.line}, "
        f"{'~' if first.estimated else ''}{first.time}, rank {first.rank}, {first.process}[{first.pid}]"
    ]
    if first.logger:  # a record: its message, then its traceback's last lines
        frames = [line for line in first.lines[1:] if line.strip(" ^~")]  # not the markers under a line
        lines += [f"  {first.logger}: {first.message}", *(f"  {line}" for line in frames[-TAIL:])]
    else:  # a raw error of a stdio copy: its last lines, the exception last
        lines += [f"  {line}" for line in first.lines[-TAIL - 1 :]]
    lines.append(
        f"logconf: every error of the run: logconf errors {found_in}; other nodes' files: "
        f"logconf gather DEST && logconf errors DEST"
    )
    return "\n".join(lines) + "\n"
