"""The stall watcher: when a run makes no progress for ``LOGCONF_STALL_S`` seconds, dump every process's stacks once.

Progress means: some rank file of the run in its log directory changed on this machine (a new
file, another size, another inode), as ``stat`` sees it every INTERVAL (a quarter of the stall
time, at most 5 s); records of the watchers themselves do not count. An engine that is idle
while the trainer logs is not a stall: the trainer's file grows. When nothing changed for the
stall time, the watcher signals every live process of the run on this machine (as
``logconf stacks`` does), writes the grouped stacks to ``<log dir>/stacks/stall-<time>@<host>.txt``
and one WARNING record (logger ``logconf.stall``) into each of this machine's rank files. It
does so again only after progress was seen and the run stalled anew. It exits when no process
of the run is left on this machine, so a run that ends gets no dump.

One watcher runs per log directory and machine, holding a lock in the registry directory:
the first process that registers with ``LOGCONF_STALL_S`` set starts it
(:func:`logconf.stackdump.ensure_watcher`), as a process of its own in a session of its own, so
it watches whatever the run's processes do, the GIL held or not.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import logging
import os
import sys
import time
from typing import Any

from logconf import netfs
from logconf.formatters import make_formatter
from logconf.handlers import RankFileHandler
from logconf.logfiles import RECORD, LogDirError, iter_entries, rank_name, rank_names
from logconf.reports import tell
from logconf.stackdump import host_key, watcher_lock
from logconf.stackgroups import plural
from logconf.stacks import collection_of, find_processes, render

__all__ = ["LOGGER", "Watcher", "interval_for", "main", "snapshot"]

LOGGER = "logconf.stall"
START_GRACE_S = 60.0  # a watcher that sees no process of its run for this long after it started leaves
_READ_LIMIT = 1 << 20  # new bytes read to tell the watchers' own records from progress, per file


def interval_for(stall_s: float) -> float:
    """How often the rank files are looked at: a quarter of the stall time, between 0.05 and 5 s."""
    return min(5.0, max(0.05, stall_s / 4))


def snapshot(log_dir: str) -> dict[str, tuple[int, int]]:
    """Each rank file of ``log_dir`` (a run's directory) and its inode and size."""
    found = {}
    for name in rank_names(log_dir):
        with contextlib.suppress(OSError):
            info = os.stat(os.path.join(log_dir, name))
            found[name] = (info.st_ino, info.st_size)
    return found


def only_stall_records(log_dir: str, before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> bool:
    """Whether everything that changed between two snapshots is stall warnings (another machine's watcher's)."""
    for name, (inode, size) in after.items():
        old = before.get(name)
        if old == (inode, size):
            continue
        if old is None or old[0] != inode or size < old[1] or size - old[1] > _READ_LIMIT:
            return False
        read = False
        try:
            for entry in iter_entries(os.path.join(log_dir, name), start=old[1], stop=size):
                read = True
                if entry.kind != RECORD or entry.record is None or entry.record.get("logger") != LOGGER:
                    return False
        except (OSError, LogDirError):
            return False
        if not read:  # it grew, but what it gained is gone: renamed or removed since the snapshot (a rotation)
            return False
    return True


def _literal(text: str) -> str:
    return text.replace("$", "$$").replace("{", "{{").replace("}", "}}")


class _WarningFile(RankFileHandler):
    reachable = False  # the watcher is not a process of the run


def _utc(moment: float, compact: bool = False) -> str:
    stamp = datetime.datetime.fromtimestamp(moment, datetime.timezone.utc)
    return stamp.strftime("%Y%m%dT%H%M%SZ" if compact else "%Y-%m-%dT%H:%M:%SZ")


class Watcher:
    """One run's log directory on this machine, watched until no process of the run is left."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.log_dir = str(spec["log_dir"])
        self.registry = str(spec["registry"])
        self.stall_s = float(spec["stall_s"])
        self.interval = interval_for(self.stall_s)
        self.host = host_key()[0]
        self.fires = 0

    def run(self) -> int:
        """Watch until the run's processes on this machine are gone; 0, or 1 if another watcher runs."""
        fd = os.open(watcher_lock(self.registry, self.log_dir), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 1
        started = last_progress = time.monotonic()
        baseline, fired, seen = snapshot(self.log_dir), False, False
        while True:
            time.sleep(self.interval)
            live = find_processes(self.registry, [self.log_dir])
            now = time.monotonic()
            if not live:
                if seen or now - started > START_GRACE_S:
                    return 0
                continue
            seen = True
            current = snapshot(self.log_dir)
            if current != baseline:
                progress = not (fired and only_stall_records(self.log_dir, baseline, current))
                baseline = current
                if progress:
                    last_progress, fired = now, False
                continue
            if not fired and now - last_progress >= self.stall_s:
                self.fire(live, time.time() - (now - last_progress))
                fired, baseline = True, snapshot(self.log_dir)  # our own warnings are not progress

    def fire(self, live: list[dict[str, Any]], since: float) -> str:
        """Dump the stacks of ``live``, write them beside the logs, and say so in each of this machine's rank files."""
        collection = collection_of(live, registry=self.registry)
        self.fires += 1
        folder = os.path.join(self.log_dir, "stacks")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"stall-{_utc(time.time(), compact=True)}-{self.fires}@{self.host}.txt")
        with open(path, "w", encoding="utf-8") as file:
            file.write(render(collection, frames=40) + "\n")
            for dump in collection.dumps:
                file.write(f"\n{dump.header()}\n{dump.text if not dump.problem else '# ' + dump.problem + chr(10)}")
        summary = "; ".join(line[2:] for line in render(collection).splitlines()[1:] if line.startswith("- "))
        message = (
            f"no rank file in {self.log_dir} grew on {self.host} since {_utc(since)} (LOGCONF_STALL_S={self.stall_s:g}): "
            f"the stacks of {plural(len(collection.dumps), 'process')} are in {path}: {summary}"
        )
        self.warn(message)
        return path

    def warn(self, message: str) -> None:
        """Append one WARNING record to each rank file of this machine, in the file's own format and rank."""
        mine = netfs.host_name(file="logconf stall watcher")
        for name in rank_names(self.log_dir):
            parts = rank_name(name)
            if parts is None or parts.host not in (None, mine):
                continue
            try:
                fmt = "json" if name.endswith(".jsonl") else "text"
                handler = _WarningFile(_literal(self.log_dir), _literal(name), per_host="0")
                handler.setFormatter(make_formatter(fmt, rank=_literal(parts.rank), redact="0"))
                record = logging.LogRecord(LOGGER, logging.WARNING, __file__, 0, message, None, None)
                record.processName = "StallWatch"
                handler.handle(record)
                handler.close()
            except Exception as exc:
                tell(f"logconf: the stall warning could not be written to {name}: {exc}\n")


def main(argv: list[str] | None = None) -> int:
    """Run the watcher that the JSON spec in ``argv[0]`` describes (started by logconf.stackdump)."""
    args = sys.argv[1:] if argv is None else argv
    try:
        watcher = Watcher(json.loads(args[0]))
    except (IndexError, ValueError, KeyError) as exc:
        tell(f"logconf: the stall watcher cannot start: {exc!r}\n")
        return 2
    return watcher.run()


if __name__ == "__main__":
    sys.exit(main())
