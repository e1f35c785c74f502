"""Collect every node's rank files into one directory through Ray: ``DEST/<node>/<file>``.

One listing task is pinned to each alive node (``NodeAffinitySchedulingStrategy``, not soft);
it names the node's rank files and, for each, the end of its last whole line. One streaming
task per file then sends that file's bytes in chunks of at most CHUNK bytes, and the caller
appends each chunk to its copy as it arrives: memory on both sides is a couple of chunks, and
Ray's generator backpressure keeps at most BACKPRESSURE chunks waiting in the object store.

A file is copied up to the end of its last whole line at listing time, so a record still being
written is left for the next run; a last line with no newline is copied only once the file has
not changed for QUIET_S seconds (a writer that died inside it). Running gather again continues
each copy from its size, after checking that the copy's last bytes are still the node file's
bytes at that place; a node file that was truncated or replaced (logrotate) is copied anew.

Rotated files (``vllm_rank_0.log.<time>[.gz]``, see :mod:`logconf.logfiles`) never change once
settled (compressed, or open in no writer: :func:`logconf.retention.settled`): each is copied
once, as it is (compressed or not), under a temporary name renamed when complete, and never
again, whether DEST holds it plain or compressed. One not settled yet waits for the next run.

Ray is imported only when gather runs: ``import logconf`` never imports it.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from logconf.logfiles import LogDirError, sets_in

__all__ = [
    "CHUNK",
    "MANIFEST",
    "FileCopy",
    "GatherResult",
    "NodeInfo",
    "copied_before",
    "copy_file",
    "gather",
    "list_rank_files",
    "memory_kib",
    "node_names",
    "read_chunks",
    "resume_check",
    "write_copy",
]

CHUNK = 8 << 20  # bytes per chunk: what one object in the store and one write on DEST hold
BACKPRESSURE = 2  # chunks a node may send ahead of the writer
CHECK = 4096  # bytes at the end of a copy compared with the node's file before resuming
QUIET_S = 10.0  # a last line with no newline is copied once its file is this many seconds unchanged
MANIFEST = "logconf-gather.json"  # DEST's record of which node each subdirectory holds
DEFAULT_DIR = "/tmp/logconf"
_RANK_NAME = re.compile(r"(?:vllm|skyrl)_rank_[^/]+\.(?:log|jsonl)")  # rank files and their .stdio.log copies
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class NodeInfo:
    """An alive Ray node as gather names it."""

    node_id: str
    hostname: str
    ip: str


@dataclass
class FileCopy:
    """What gather did with one node file: bytes at the start, bytes copied, and whether it started over."""

    node: str
    name: str
    end: int  # the node file's size up to its last whole line, when listed
    copied: int = 0
    restarted: bool = False
    peak_rss_kib: int = 0  # the node worker's peak RSS, as it reported at the end of the stream
    peak_anon_kib: int = 0  # the private part of it, the most seen after any chunk


@dataclass
class GatherResult:
    """One run of gather: per node, where its files were read and what was copied."""

    dest: str
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    copies: list[FileCopy] = field(default_factory=list)
    worker_peak_rss_kib: int = 0
    worker_peak_anon_kib: int = 0

    @property
    def copied(self) -> int:
        return sum(c.copied for c in self.copies)


def node_names(nodes: Sequence[NodeInfo]) -> dict[str, str]:
    """Name each node's subdirectory: its host name where that is unique among ``nodes``.

    Nodes that share a host name (containers, or several raylets on one machine) add their IP
    where that tells them apart, and else the first 8 characters of their node id.
    """
    hosts: dict[str, int] = {}
    pairs: dict[tuple[str, str], int] = {}
    for node in nodes:
        hosts[node.hostname] = hosts.get(node.hostname, 0) + 1
        pairs[(node.hostname, node.ip)] = pairs.get((node.hostname, node.ip), 0) + 1
    names = {}
    for node in nodes:
        host = _UNSAFE.sub("_", node.hostname) or "node"
        if hosts[node.hostname] == 1:
            names[node.node_id] = host
        elif pairs[(node.hostname, node.ip)] == 1:
            names[node.node_id] = f"{host}-{_UNSAFE.sub('_', node.ip)}"
        else:
            names[node.node_id] = f"{host}-{node.node_id[:8]}"
    return names


def _whole_end(path: str, size: int, quiet: bool) -> int:
    """Return the offset just past the last newline in the first ``size`` bytes (``size`` if ``quiet``)."""
    if quiet:
        return size
    with open(path, "rb") as file:
        position = size
        while position > 0:
            start = max(0, position - (1 << 16))
            file.seek(start)
            block = file.read(position - start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                return start + newline + 1
            position = start
    return 0


def list_rank_files(directory: str, now: float | None = None) -> list[dict[str, Any]]:
    """List ``directory``'s rank files (and their ``.stdio.log`` copies) with their size and copyable end.

    ``end`` is the offset past the file's last newline, or its size once the file has been
    unchanged for QUIET_S seconds. Settled rotated files follow, marked ``"rotated": True``, whole.
    A missing directory lists nothing.
    """
    now = time.time() if now is None else now
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    files = []
    for name in names:
        if not _RANK_NAME.fullmatch(name):
            continue
        path = os.path.join(directory, name)
        try:
            info = os.stat(path)
        except FileNotFoundError:
            continue
        if not os.path.isfile(path):
            continue
        end = _whole_end(path, info.st_size, now - info.st_mtime >= QUIET_S)
        files.append({"name": name, "size": info.st_size, "end": end})
    return files + _settled_rotated(directory)


def _settled_rotated(directory: str) -> list[dict[str, Any]]:
    from logconf.retention import settled

    files = []
    for found in sets_in(directory, stdio=True).values():
        for path in found.rotated:
            try:
                size = os.stat(path).st_size
            except FileNotFoundError:
                continue
            if settled(path):
                files.append({"name": os.path.basename(path), "size": size, "end": size, "rotated": True})
    return sorted(files, key=lambda f: f["name"])


def copied_before(target: str) -> bool:
    """Whether DEST already holds the rotated file ``target``, plain or compressed (it is copied once)."""
    twin = target.removesuffix(".gz") if target.endswith(".gz") else target + ".gz"
    return os.path.exists(target) or os.path.exists(twin)


def resume_check(path: str) -> tuple[int, bytes]:
    """Return a copy's size and its last CHECK bytes (``(0, b"")`` when there is no copy)."""
    try:
        with open(path, "rb") as file:
            size = file.seek(0, os.SEEK_END)
            start = max(0, size - CHECK)
            file.seek(start)
            return size, file.read(size - start)
    except FileNotFoundError:
        return 0, b""


def read_chunks(path: str, offset: int, tail: bytes, end: int, chunk: int = CHUNK) -> Iterator[int | bytes]:
    """Yield where copying starts, then the bytes of ``path`` from there to ``end``, ``chunk`` at a time.

    Copying starts at ``offset`` when the node file's bytes before ``offset`` end with ``tail``
    (the copy's last bytes) and ``offset <= end``; otherwise at 0: the file was truncated or
    replaced since the copy was made. A chunk ends on a newline where it holds one, so a copy
    that a stopped gather leaves behind ends on a whole line.
    """
    with open(path, "rb") as file:
        start = offset
        if offset > end:
            start = 0
        elif tail:
            file.seek(offset - len(tail))
            if file.read(len(tail)) != tail:
                start = 0
        yield start
        file.seek(start)
        position = start
        while position < end:
            data = file.read(min(chunk, end - position))
            if not data:  # the file shrank under us: stop where it ends
                return
            if position + len(data) < end:
                newline = data.rfind(b"\n")
                if newline >= 0 and newline + 1 < len(data):
                    data = data[: newline + 1]
                    file.seek(position + len(data))
            position += len(data)
            yield data


def write_copy(target: str, size: int, values: Iterable[Any], done: FileCopy) -> FileCopy:
    """Write what a node's stream yields (start offset, chunks, stats) into ``target``, whose size is ``size``."""
    with open(target, "r+b" if size else "wb") as out:
        for value in values:
            if isinstance(value, int):
                done.restarted = value != size
                out.seek(value)
                out.truncate()
            elif isinstance(value, bytes):
                out.write(value)
                done.copied += len(value)
            else:
                done.peak_rss_kib, done.peak_anon_kib = int(value["peak_rss_kib"]), int(value["peak_anon_kib"])
    return done


def copy_file(source: str, target: str, chunk: int = CHUNK, now: float | None = None) -> FileCopy:
    """Bring ``target`` up to date with ``source`` on this machine, as gather does across nodes."""
    listed = list_rank_files(os.path.dirname(source), now)
    file = next(f for f in listed if f["name"] == os.path.basename(source))
    done = FileCopy("", file["name"], file["end"])
    if file.get("rotated"):
        return _copy_once(target, lambda: read_chunks(source, 0, b"", file["end"], chunk), done)
    size, tail = resume_check(target)
    return write_copy(target, size, read_chunks(source, size, tail, file["end"], chunk), done)


def _copy_once(target: str, values: Callable[[], Iterable[Any]], done: FileCopy) -> FileCopy:
    """Copy a rotated file into ``target`` unless DEST holds it already; whole, or not at all."""
    if copied_before(target):
        return done
    partial = target + ".partial"
    write_copy(partial, 0, values(), done)
    os.replace(partial, target)
    return done


def _values(ray: Any, refs: Iterable[Any]) -> Iterator[Any]:
    for ref in refs:
        value = ray.get(ref)
        del ref  # the chunk leaves the object store once it is written
        yield value


def memory_kib(pid: int | str = "self") -> tuple[int, int]:
    """Return a process's peak RSS and its private (anonymous) RSS now, in KiB ((0, 0) if unreadable).

    RSS also counts the object-store pages a Ray process has mapped; the private part is what
    the process itself holds.
    """
    fields = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as file:
            for line in file:
                key, _, value = line.partition(":")
                if key in ("VmHWM", "RssAnon"):
                    fields[key] = int(value.split()[0])
    except (OSError, ValueError):
        return 0, 0
    return fields.get("VmHWM", 0), fields.get("RssAnon", 0)


def _node_listing(directory: str | None) -> dict[str, Any]:
    """Run on a node: the directory gather reads there, its rank files, and the node's host name."""
    where = directory or os.environ.get("LOGCONF_DIR") or DEFAULT_DIR
    where = os.path.abspath(os.path.expanduser(where))
    return {"dir": where, "hostname": socket.gethostname(), "files": list_rank_files(where)}


def _node_stream(path: str, offset: int, tail: bytes, end: int, chunk: int) -> Iterator[Any]:
    """Run on a node: read_chunks, then this worker's peak RSS and peak private RSS (seen at each chunk) in KiB."""
    anon = 0
    for value in read_chunks(path, offset, tail, end, chunk):
        yield value
        anon = max(anon, memory_kib()[1])
    yield {"peak_rss_kib": memory_kib()[0], "peak_anon_kib": anon}


def _connect(address: str | None) -> Any:
    """Return the ``ray`` module, connected to the cluster at ``address`` (or already connected)."""
    try:
        import ray
    except ImportError as exc:
        problem = f"gather runs through Ray, which this Python cannot import ({exc}); run it beside the job's Ray"
        raise LogDirError(problem) from None
    if not ray.is_initialized():
        try:
            ray.init(address=address or "auto", logging_level="WARNING", log_to_driver=False)
        except ConnectionError as exc:
            raise LogDirError(f"no Ray cluster to gather from at {address or 'auto'}: {exc}") from None
    return ray


def _alive_nodes(ray: Any) -> list[NodeInfo]:
    return [
        NodeInfo(n["NodeID"], n.get("NodeManagerHostname") or n["NodeManagerAddress"], n["NodeManagerAddress"])
        for n in ray.nodes()
        if n.get("Alive")
    ]


def _write_manifest(dest: str, result: GatherResult) -> None:
    """Record which node each subdirectory holds; nodes of earlier runs that are gone stay listed."""
    path = os.path.join(dest, MANIFEST)
    try:
        with open(path, encoding="utf-8") as file:
            manifest = json.load(file)
    except (FileNotFoundError, ValueError):
        manifest = {}
    nodes = dict(manifest.get("nodes") or {})
    nodes.update(result.nodes)
    manifest = {"schema": "logconf.gather/1", "nodes": dict(sorted(nodes.items()))}
    with open(path + ".tmp", "w", encoding="utf-8") as file:
        json.dump(manifest, file, indent=2)
        file.write("\n")
    os.replace(path + ".tmp", path)


def gather(
    dest: str,
    *,
    address: str | None = None,
    directory: str | None = None,
    chunk: int = CHUNK,
    jobs: int = 4,
    progress: Callable[[FileCopy], None] | None = None,
) -> GatherResult:
    """Copy every alive node's rank files into ``dest/<node>/``, continuing copies from an earlier run.

    ``directory`` is the rank-file directory on every node; None reads each node's own
    ``LOGCONF_DIR`` (the environment its raylet was started with), else /tmp/logconf there.
    Connects to the running cluster at ``address`` (default: ``auto``) unless Ray is already
    initialised in this process. Up to ``jobs`` files are copied at once.
    """
    if chunk < 1:
        raise LogDirError(f"--chunk-mib: must be positive, got {chunk} bytes")
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise LogDirError(f"{dest}: not a directory (gather writes DEST/<node>/<file>)")
    ray = _connect(address)
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = _alive_nodes(ray)
    if not nodes:
        raise LogDirError("the Ray cluster has no alive node")
    names = node_names(nodes)
    listing = ray.remote(num_cpus=0)(_node_listing)
    stream = ray.remote(num_cpus=0, num_returns="streaming", _generator_backpressure_num_objects=BACKPRESSURE)(_node_stream)

    def pinned(node: NodeInfo) -> dict[str, Any]:
        return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node.node_id, soft=False)}

    listings = ray.get([listing.options(**pinned(n)).remote(directory) for n in nodes])
    os.makedirs(dest, exist_ok=True)
    result = GatherResult(os.path.abspath(dest))
    work = []
    for node, found in zip(nodes, listings, strict=True):
        name = names[node.node_id]
        result.nodes[name] = {
            "node_id": node.node_id,
            "hostname": found["hostname"],
            "ip": node.ip,
            "dir": found["dir"],
            "gathered_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "files": {f["name"]: f["end"] for f in found["files"]},
        }
        os.makedirs(os.path.join(dest, name), exist_ok=True)
        for file in found["files"]:
            work.append((node, name, found["dir"], file))

    def copy(item: tuple[NodeInfo, str, str, Mapping[str, Any]]) -> FileCopy:
        node, name, where, file = item
        target = os.path.join(dest, name, file["name"])
        source = os.path.join(where, file["name"])
        if file.get("rotated"):  # copied once, never again
            whole = lambda: _values(ray, stream.options(**pinned(node)).remote(source, 0, b"", file["end"], chunk))  # noqa: E731
            done = _copy_once(target, whole, FileCopy(name, file["name"], file["end"]))
        else:
            size, tail = resume_check(target)
            refs = stream.options(**pinned(node)).remote(source, size, tail, file["end"], chunk)
            done = write_copy(target, size, _values(ray, refs), FileCopy(name, file["name"], file["end"]))
        result.worker_peak_rss_kib = max(result.worker_peak_rss_kib, done.peak_rss_kib)
        result.worker_peak_anon_kib = max(result.worker_peak_anon_kib, done.peak_anon_kib)
        if progress is not None:
            progress(done)
        return done

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        result.copies = list(pool.map(copy, work))
    _write_manifest(dest, result)
    return result
