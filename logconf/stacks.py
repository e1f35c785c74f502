"""``logconf stacks``: every process of a run writes the stacks of all its threads, and they come back grouped.

Each process that logs through logconf registered itself (:mod:`logconf.stackdump`) in this
user's registry on its machine. On each machine (this one, or every alive Ray node with
``--address``, one pinned task per node as ``logconf gather`` runs them) the collector:

1. lists the registrations, keeps those whose pid still runs with the recorded start time
   (a reused pid is never signalled) and that write into the run's directory (``--dir``);
2. checks in ``/proc/<pid>/status`` that the process still catches the stacks signal (an
   ``exec`` resets handlers, and the signal's default action would end the process), then sends
   it: the same user may, no ptrace needed;
3. waits until each dump file has grown and then stayed the same size for SETTLE_S seconds
   (faulthandler writes a dump from the signal handler, in one go), or until the time-out, and
   reads back the bytes that were added.

Then :mod:`logconf.stackgroups` groups the stacks and names the odd ones out.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from logconf.logfiles import LogDirError, time_key
from logconf.stackdump import SCHEMA, catches, caught_signals, host_key, process_start, registry_dir, signal_name
from logconf.stackgroups import Group, ProcessStacks, group, parse_dump, plural, sentences

__all__ = [
    "Collection",
    "Dump",
    "collect_cluster",
    "collect_here",
    "collect_local",
    "collection_of",
    "find_processes",
    "render",
    "report_json",
    "write_dest",
]

SETTLE_S = 0.2  # a dump is whole once its file has not grown for this long
POLL_S = 0.02
TIMEOUT_S = 5.0
DUMP_LIMIT = 8 << 20  # bytes of one dump read back (faulthandler stops at 100 threads x 100 frames anyway)
_STATES = {
    "R": "running",
    "S": "sleeping",
    "D": "uninterruptible sleep",
    "T": "stopped",
    "t": "stopped by a tracer",
    "Z": "zombie",
}
_TITLE = re.compile(r"ray::([A-Za-z_][\w]*)")


@dataclass
class Dump:
    """One process's registration and what came back from it."""

    record: dict[str, Any]
    node: str
    name: str
    state: str = "?"
    time: str = ""
    text: str = ""
    problem: str | None = None

    @property
    def pid(self) -> int:
        return int(self.record["pid"])

    def stacks(self) -> ProcessStacks:
        return ProcessStacks(
            self.pid,
            self.record.get("rank"),
            self.name,
            self.node,
            self.state,
            parse_dump(self.text),
            self.record.get("main_thread"),
            self.problem,
        )

    def header(self) -> str:
        rank = self.record.get("rank")
        state = _STATES.get(self.state, self.state)
        return (
            f"# logconf stacks: rank {rank}, {self.name}, pid {self.pid}, host {self.record.get('host')}, "
            f"node {self.node}, {self.time}, state {self.state} ({state})"
        )

    def as_json(self) -> dict[str, Any]:
        stacks = self.stacks()
        return {
            "node": self.node,
            "host": self.record.get("host"),
            "pid": self.pid,
            "rank": self.record.get("rank"),
            "process_name": self.name,
            "time": self.time,
            "state": self.state,
            "problem": self.problem,
            "main_thread": self.record.get("main_thread"),
            "chained": self.record.get("chained"),  # it had a handler of its own for the signal, which ran too
            "threads": [{"id": t.ident, "current": t.current, "frames": [f.as_json() for f in t.frames]} for t in stacks.threads],
        }


@dataclass
class Collection:
    """What one run of the command found on every node it reached."""

    dumps: list[Dump] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    signal: str = ""

    def groups(self) -> list[Group]:
        return group(d.stacks() for d in self.dumps if not d.problem)

    @property
    def missing(self) -> list[Dump]:
        return [d for d in self.dumps if d.problem]


def _title(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return file.read().split(b"\0", 1)[0].decode("utf-8", "replace")
    except OSError:
        return ""


def _stat(pid: int) -> tuple[str, int, str]:
    """A process's state letter, parent pid and command name (``?``, 0, ``""`` when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            raw = file.read()
        comm = raw[raw.index(b"(") + 1 : raw.rindex(b")")].decode("utf-8", "replace")
        fields = raw.rsplit(b")", 1)[1].split()
        return fields[0].decode(), int(fields[1]), comm
    except (OSError, ValueError, IndexError):
        return "?", 0, ""


def display_name(record: dict[str, Any], title: str) -> str:
    """The process name to show: the registered one, or for a Ray worker's main process its actor class
    as Ray's process title has it (``ray::EngineActor.generate``) when it was not known at registration."""
    name = str(record.get("process_name") or "MainProcess")
    match = _TITLE.match(title)
    return match.group(1) if name == "MainProcess" and match else name


def _raylet_of(pid: int) -> int | None:
    """The raylet that ``pid`` descends from (a Ray worker, or a child of one), or None."""
    for _ in range(64):
        _, parent, comm = _stat(pid)
        if comm == "raylet":
            return pid
        if parent <= 1:
            return None
        pid = parent
    return None


def find_processes(
    registry: str | None = None, dirs: Sequence[str] | None = None, *, exclude: Iterable[int] = (), include_idle: bool = False
) -> list[dict[str, Any]]:
    """Return the registrations of live processes on this machine (writing into one of ``dirs``, if given).

    Registrations of processes that ended are removed, with their dump files. Ray's idle
    workers (process title ``ray::IDLE``) run no code of the job and are left out unless asked for.
    """
    registry = registry or registry_dir()
    wanted = {os.path.abspath(d) for d in dirs} if dirs else None
    host, boot = host_key()
    skip = set(exclude)
    found = []
    try:
        names = sorted(os.listdir(registry))
    except FileNotFoundError:
        return []
    for name in names:
        if not name.endswith(".json"):
            continue
        path = os.path.join(registry, name)
        try:
            with open(path, encoding="utf-8") as file:
                record = json.load(file)
            pid = int(record["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if record.get("schema") != SCHEMA or (record.get("host"), record.get("boot_id")) != (host, boot):
            continue
        if process_start(pid) != record.get("start"):
            _forget(path, record)
            continue
        if pid in skip or (wanted is not None and not wanted & {os.path.abspath(d) for d in record.get("dirs", [])}):
            continue
        record["title"] = _title(pid)
        if record["title"] == "ray::IDLE" and not include_idle:
            continue
        found.append(record)
    return found


def _forget(path: str, record: dict[str, Any]) -> None:
    """Remove the registration and the dump file of a process that ended without removing them (``os._exit``)."""
    with contextlib.suppress(OSError):
        os.unlink(path)
    with contextlib.suppress(OSError, KeyError, TypeError):
        if os.path.dirname(record["dump"]) == os.path.dirname(path):  # only a file of the registry's own
            os.unlink(record["dump"])


def _now() -> str:
    return time_key(datetime.datetime.now(datetime.timezone.utc).isoformat())


@contextlib.contextmanager
def _signalling(registry: str, timeout: float):
    """Hold this machine's signalling lock: two collectors would read each other's dumps."""
    fd = os.open(os.path.join(registry, "signal.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LogDirError(f"another `logconf stacks` holds {registry}/signal.lock") from None
                time.sleep(POLL_S)
        yield
    finally:
        os.close(fd)


def collect_local(
    records: Sequence[dict[str, Any]], node: str, *, registry: str | None = None, timeout: float = TIMEOUT_S
) -> list[Dump]:
    """Signal each registered process in ``records`` (all on this machine) and read back its dump."""
    registry = registry or registry_dir()
    dumps = [Dump(r, node, display_name(r, r.get("title", ""))) for r in records]
    if not dumps:
        return []
    waiting: dict[int, tuple[Dump, int, int]] = {}  # pid: (dump, its file, where its new bytes start)
    try:
        with _signalling(registry, timeout):
            for dump in dumps:
                signum = int(dump.record["signal"])
                dump.state = _stat(dump.pid)[0]
                dump.time = _now()
                if not catches(caught_signals(dump.pid), signum):
                    dump.problem = f"no longer catches {signal_name(signum)} (an exec resets handlers): not signalled"
                    continue
                try:
                    # Opened first: a process that ends right after its dump removes the file at exit.
                    fd = os.open(dump.record["dump"], os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
                except (OSError, KeyError) as exc:
                    dump.problem = f"not signalled: {exc}"
                    continue
                offset = os.fstat(fd).st_size
                waiting[dump.pid] = (dump, fd, offset)
                try:
                    os.kill(dump.pid, signum)
                except OSError as exc:
                    dump.problem = f"not signalled: {exc}"
                    del waiting[dump.pid]
                    os.close(fd)
            _wait_for_dumps(waiting, timeout)
    finally:
        for _, fd, _ in waiting.values():
            os.close(fd)
    return dumps


def _wait_for_dumps(waiting: dict[int, tuple[Dump, int, int]], timeout: float) -> None:
    """Read each dump once its file has grown and then not changed for SETTLE_S; name those that did not come."""
    pending = dict(waiting)
    sizes = {pid: (offset, time.monotonic()) for pid, (_, _, offset) in pending.items()}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        time.sleep(POLL_S)
        now = time.monotonic()
        for pid, (dump, fd, offset) in list(pending.items()):
            size = os.fstat(fd).st_size
            if size != sizes[pid][0]:
                sizes[pid] = (size, now)
            elif size > offset and now - sizes[pid][1] >= SETTLE_S:
                dump.text = os.pread(fd, min(size - offset, DUMP_LIMIT), offset).decode("utf-8", "replace")
                del pending[pid]
    for dump, _, _ in pending.values():
        state = _stat(dump.pid)[0]
        dump.problem = f"no dump within {timeout:g} s (state {state}: {_STATES.get(state, 'gone')})"


def _node_collect(dirs: list[str] | None, timeout: float, claim_unowned: bool, caller: list[Any]) -> dict[str, Any]:
    """Run on a Ray node: collect this node's processes (those of its raylet, and unowned ones if asked),
    never this task's own process nor the command's (``caller``: host, boot id, pid)."""
    mine = _raylet_of(os.getpid())
    skip = [os.getpid()] + ([int(caller[2])] if list(host_key()) == list(caller[:2]) else [])
    records = []
    for record in find_processes(dirs=dirs, exclude=skip):
        owner = _raylet_of(int(record["pid"]))
        if owner == mine or (owner is None and claim_unowned):
            records.append(record)
    dumps = collect_local(records, "", timeout=timeout)
    return {"host": host_key()[0], "dumps": [(d.record, d.name, d.state, d.time, d.text, d.problem) for d in dumps]}


def collect_cluster(address: str, dirs: Sequence[str] | None = None, timeout: float = TIMEOUT_S) -> Collection:
    """Collect every alive Ray node's processes, one pinned task per node (as ``logconf gather`` reaches them).

    A process that descends from no raylet (the job's driver) is collected by the first node of
    its machine only, so that nodes sharing a machine do not signal it twice.
    """
    from logconf.gather import cluster_nodes  # Ray loads only here

    ray, nodes, names, pinned = cluster_nodes(address)
    task = ray.remote(num_cpus=0)(_node_collect)
    machines: set[tuple[str, str]] = set()
    refs = []
    for node in nodes:
        first = (node.hostname, node.ip) not in machines
        machines.add((node.hostname, node.ip))
        caller = [*host_key(), os.getpid()]
        refs.append(task.options(**pinned(node)).remote(list(dirs) if dirs else None, timeout, first, caller))
    collection = Collection(nodes=[names[n.node_id] for n in nodes])
    for node, result in zip(nodes, ray.get(refs), strict=True):
        for record, name, state, moment, text, problem in result["dumps"]:
            collection.dumps.append(Dump(record, names[node.node_id], name, state, moment, text, problem))
    collection.signal = _signal_of(collection.dumps)
    return collection


def collect_here(dirs: Sequence[str] | None = None, timeout: float = TIMEOUT_S, registry: str | None = None) -> Collection:
    """Collect the processes on this machine (every one registered here, whichever Ray node runs it)."""
    return collection_of(find_processes(registry, dirs, exclude=[os.getpid()]), registry=registry, timeout=timeout)


def collection_of(records: Sequence[dict[str, Any]], *, registry: str | None = None, timeout: float = TIMEOUT_S) -> Collection:
    """Signal the registered processes ``records`` of this machine and gather what they dump."""
    host = host_key()[0]
    collection = Collection(collect_local(records, host, registry=registry, timeout=timeout), [host])
    collection.signal = _signal_of(collection.dumps)
    return collection


def _signal_of(dumps: Sequence[Dump]) -> str:
    return ", ".join(sorted({signal_name(int(d.record["signal"])) for d in dumps}))


def report_json(collection: Collection) -> dict[str, Any]:
    """The collection as JSON (schema ``logconf.stacks/1``)."""
    groups = collection.groups()
    return {
        "schema": "logconf.stacks/1",
        "nodes": collection.nodes,
        "signal": collection.signal,
        "summary": sentences(groups),
        "groups": [g.as_json() for g in groups],
        "processes": [d.as_json() for d in collection.dumps],
    }


def render(collection: Collection, frames: int = 8) -> str:
    """The plain-text report: one sentence per group, each group's main-thread stack, then what is missing."""
    groups = collection.groups()
    got = len(collection.dumps) - len(collection.missing)
    lines = [
        f"{plural(len(collection.dumps), 'process')} on {plural(len(collection.nodes), 'node')} "
        f"({', '.join(collection.nodes)}), signalled with {collection.signal or '-'}: {plural(got, 'dump')}"
    ]
    lines += [f"- {s}" for s in sentences(groups)]
    lines += [f"- no dump from {d.stacks().who()} on {d.node}: {d.problem}" for d in collection.missing]
    for item in groups:
        who = ", ".join(f"{m.who()}@{m.node}" for m in item.members)
        lines += ["", f"{item.kind} x{len(item.members)}{' (odd one out)' if item.odd else ''}: {who}"]
        lines += [f"  {f.function} ({f.file}:{f.line})" for f in item.stack[:frames]]
        if len(item.stack) > frames:
            lines.append(f"  ... {len(item.stack) - frames} more frames")
    return "\n".join(lines)


def write_dest(collection: Collection, dest: str) -> list[str]:
    """Write each dump whole, under a header naming it, as ``DEST/<node>/rank<R>-<name>-<pid>.txt``, and ``stacks.json``."""
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise LogDirError(f"{dest}: not a directory (stacks writes DEST/<node>/<file>)")
    written = []
    for dump in collection.dumps:
        directory = os.path.join(dest, dump.node)
        os.makedirs(directory, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"rank{dump.record.get('rank')}-{dump.name}-{dump.pid}") + ".txt"
        path = os.path.join(directory, name)
        with open(path, "w", encoding="utf-8") as file:
            file.write(dump.header() + "\n")
            file.write(dump.text if not dump.problem else f"# {dump.problem}\n")
        written.append(path)
    with open(os.path.join(dest, "stacks.json"), "w", encoding="utf-8") as file:
        json.dump(report_json(collection), file, indent=1)
        file.write("\n")
    return written
