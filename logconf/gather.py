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

A symbolic link among a node's rank files is never followed (``RankFileHandler`` refuses such
links too): it is reported, and the rest of the node is gathered. A node that cannot be listed
or read (it died, say) is reported with the reason, and the others are gathered all the same.
Where each node's files go in DEST, and with which modes, is :mod:`logconf.gathered`'s part.

Rotated files (``vllm_rank_0.log.<time>[.gz]``, see :mod:`logconf.logfiles`) never change once
settled (compressed, or open in no writer: :func:`logconf.retention.settled`): each is copied
once, as it is (compressed or not), under a temporary name renamed when complete, and never
again, whether DEST holds it plain or compressed. One not settled yet waits for the next run.

Ray is imported only when gather runs: ``import logconf`` never imports it.
"""

from __future__ import annotations

import datetime
import errno
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from logconf.gathered import (
    MANIFEST,
    NodeInfo,
    make_node_dir,
    node_dirs,
    node_names,
    rank_file_plan,
    read_manifest,
    safe_name,
    tighten,
    write_manifest,
)
from logconf.logfiles import LogDirError, sets_in
from logconf.netfs import HOST_ENV

__all__ = [
    "CHUNK",
    "MANIFEST",
    "FileCopy",
    "GatherResult",
    "NodeInfo",
    "cluster_nodes",
    "copied_before",
    "copy_file",
    "gather",
    "list_rank_files",
    "memory_kib",
    "node_names",
    "read_chunks",
    "resume_check",
    "scan_rank_files",
    "update_copy",
    "write_copy",
]

CHUNK = 8 << 20  # bytes per chunk: what one object in the store and one write on DEST hold
BACKPRESSURE = 2  # chunks a node may send ahead of the writer
CHECK = 4096  # bytes at the end of a copy compared with the node's file before resuming
QUIET_S = 10.0  # a last line with no newline is copied once its file is this many seconds unchanged
_RANK_NAME = re.compile(r"(?:vllm|skyrl)_rank_[^/]+\.(?:log|jsonl)")  # rank files and their .stdio.log copies
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class FileCopy:
    """What gather did with one node file: bytes at the start, bytes copied, whether it started over, or why not."""

    node: str
    name: str
    end: int  # the node file's size up to its last whole line, when listed
    copied: int = 0
    restarted: bool = False
    skipped: str = ""  # why the file was left alone (a link, or gone since listing)
    failed: str = ""  # why copying it stopped (the node died, a read or write error)
    peak_rss_kib: int = 0  # the node worker's peak RSS, as it reported at the end of the stream
    peak_anon_kib: int = 0  # the private part of it, the most seen after any chunk


@dataclass
class GatherResult:
    """One run of gather: per node, where its files were read and what was copied; the nodes that failed, and why."""

    dest: str
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    copies: list[FileCopy] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # a node (its subdirectory, else host and id) -> why
    skipped: dict[str, str] = field(default_factory=dict)  # node/name -> why the file was left alone
    worker_peak_rss_kib: int = 0
    worker_peak_anon_kib: int = 0

    @property
    def copied(self) -> int:
        return sum(c.copied for c in self.copies)


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


def _link_note(path: str) -> str:
    try:
        target = f" to {os.readlink(path)}"
    except OSError:
        target = ""
    return f"a symbolic link{target}; gather does not follow links among rank files"


def scan_rank_files(directory: str, now: float | None = None) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Return ``directory``'s rank files (as :func:`list_rank_files`) and the links among them, with why each is left.

    Only regular files are listed; a link is never followed, whatever it points at.
    """
    now = time.time() if now is None else now
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return [], {}
    files, links = [], {}
    for name in names:
        if not _RANK_NAME.fullmatch(name):
            continue
        path = os.path.join(directory, name)
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(info.st_mode):
            links[name] = _link_note(path)
        if not stat.S_ISREG(info.st_mode):
            continue
        end = _whole_end(path, info.st_size, now - info.st_mtime >= QUIET_S)
        files.append({"name": name, "size": info.st_size, "end": end, "mode": stat.S_IMODE(info.st_mode)})
    return files + _settled_rotated(directory), links


def list_rank_files(directory: str, now: float | None = None) -> list[dict[str, Any]]:
    """List ``directory``'s rank files (and their ``.stdio.log`` copies) with their size, copyable end and mode.

    ``end`` is the offset past the file's last newline, or its size once the file has been
    unchanged for QUIET_S seconds. Settled rotated files follow, marked ``"rotated": True``, whole.
    A missing directory lists nothing; links are left out.
    """
    return scan_rank_files(directory, now)[0]


def _settled_rotated(directory: str) -> list[dict[str, Any]]:
    from logconf.retention import settled

    files = []
    for found in sets_in(directory, stdio=True).values():
        for path in found.rotated:
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(info.st_mode) and settled(path):  # a link is never followed
                size = info.st_size
                mode = stat.S_IMODE(info.st_mode)
                files.append({"name": os.path.basename(path), "size": size, "end": size, "mode": mode, "rotated": True})
    return sorted(files, key=lambda f: f["name"])


def copied_before(target: str) -> bool:
    """Whether DEST already holds the rotated file ``target``, plain or compressed (it is copied once)."""
    twin = target.removesuffix(".gz") if target.endswith(".gz") else target + ".gz"
    return os.path.exists(target) or os.path.exists(twin)


def resume_check(path: str) -> tuple[int, bytes]:
    """Return a copy's size and its last CHECK bytes (``(0, b"")`` when there is no copy)."""
    try:
        with open(os.open(path, _OPEN_FLAGS), "rb") as file:
            size = file.seek(0, os.SEEK_END)
            start = max(0, size - CHECK)
            file.seek(start)
            return size, file.read(size - start)
    except FileNotFoundError:
        return 0, b""


def _open_regular(path: str) -> tuple[int, str]:
    """Open ``path`` for reading without following a link: (fd, "") or (-1, why it is left alone)."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        return -1, "removed since it was listed"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return -1, _link_note(path)
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return -1, "not a regular file"
    return fd, ""


def read_chunks(path: str, offset: int, tail: bytes, end: int, chunk: int = CHUNK) -> Iterator[int | bytes | dict[str, str]]:
    """Yield where copying starts, then the bytes of ``path`` from there to ``end``, ``chunk`` at a time.

    Copying starts at ``offset`` when the node file's bytes before ``offset`` end with ``tail``
    (the copy's last bytes) and ``offset <= end``; otherwise at 0: the file was truncated or
    replaced since the copy was made. A chunk ends on a newline where it holds one, so a copy
    that a stopped gather leaves behind ends on a whole line. A file that is now a link (or
    gone) yields only ``{"skipped": why}``.
    """
    fd, why = _open_regular(path)
    if fd < 0:
        yield {"skipped": why}
        return
    with open(fd, "rb") as file:
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


def write_copy(target: str, size: int, values: Iterable[Any], done: FileCopy, mode: int = 0o600) -> FileCopy:
    """Write what a node's stream yields (start offset, chunks, stats) into ``target``, whose size is ``size``.

    The copy is opened when the stream says where to start, so a node file left alone creates
    nothing. A new copy gets ``mode``; an existing one loses the permission bits ``mode``
    lacks. A link at ``target`` is refused (OSError), never written through.
    """
    out = None
    try:
        for value in values:
            if isinstance(value, int):
                out = open(os.open(target, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, mode), "r+b")
                tighten(out.fileno(), mode)
                done.restarted = value != size
                out.seek(value)
                out.truncate()
            elif isinstance(value, bytes):
                assert out is not None
                out.write(value)
                done.copied += len(value)
            elif "skipped" in value:
                done.skipped = value["skipped"]
            else:
                done.peak_rss_kib, done.peak_anon_kib = int(value["peak_rss_kib"]), int(value["peak_anon_kib"])
    finally:
        if out is not None:
            out.close()
    return done


def update_copy(
    target: str, listed: Mapping[str, Any], stream: Callable[[int, bytes], Iterable[Any]], done: FileCopy, file_mode: int
) -> FileCopy:
    """Bring the copy at ``target`` up to date with a node file listed as ``listed`` (name, end, mode).

    ``stream(size, tail)`` reads the node file from the copy's end (:func:`read_chunks`, on the
    node). The copy is no more readable than the node file, nor than ``file_mode`` allows. A
    rotated file is copied whole, once, and never again.
    """
    mode = listed["mode"] & file_mode
    if listed.get("rotated"):
        return _copy_once(target, lambda: stream(0, b""), done, mode)
    size, tail = resume_check(target)
    return write_copy(target, size, stream(size, tail), done, mode)


def _copy_once(target: str, values: Callable[[], Iterable[Any]], done: FileCopy, mode: int) -> FileCopy:
    """Copy a rotated file into ``target`` unless DEST holds it already; whole, or not at all."""
    if copied_before(target):
        return done
    partial = target + ".partial"
    write_copy(partial, 0, values(), done, mode)
    os.replace(partial, target)
    return done


def copy_file(source: str, target: str, chunk: int = CHUNK, now: float | None = None, file_mode: int | None = None) -> FileCopy:
    """Bring ``target`` up to date with ``source`` on this machine, as gather does across nodes.

    ``file_mode`` bounds the copy's mode (default: the shipped config's ``file_mode`` here,
    ``LOGCONF_FILE_MODE``).
    """
    name = os.path.basename(source)
    listed = next((f for f in list_rank_files(os.path.dirname(source), now) if f["name"] == name), {"end": 0, "mode": 0})

    def stream(size: int, tail: bytes) -> Iterator[Any]:
        return read_chunks(source, size, tail, listed["end"], chunk)

    allowed = rank_file_plan().file_mode if file_mode is None else file_mode
    return update_copy(target, listed, stream, FileCopy("", name, listed["end"]), allowed)


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


def node_listing(directory: str | None) -> dict[str, Any]:
    """Run on a node: the directory gather reads there, its rank files, the links among them, and the node's host name.

    ``directory`` None is the node's own: the one the shipped config gives this environment
    (its ``LOGCONF_DIR``, else logconf's default). The host name is ``LOGCONF_HOSTNAME`` where
    set, as in rank file names, else the kernel's.
    """
    where = directory or os.path.dirname(rank_file_plan().path)
    where = os.path.abspath(os.path.expanduser(where))
    files, links = scan_rank_files(where)
    try:
        dir_mode = stat.S_IMODE(os.stat(where).st_mode)
    except OSError:
        dir_mode = 0o700
    hostname = os.environ.get(HOST_ENV) or os.uname().nodename
    return {"dir": where, "dir_mode": dir_mode, "hostname": hostname, "files": files, "skipped": links}


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
    """The alive nodes, the head first, then by host name, IP and id (``ray.nodes()`` lists them in no fixed order)."""
    def order(node: dict[str, Any]) -> tuple[bool, str, str, str]:
        head = "node:__internal_head__" in (node.get("Resources") or {})
        return (not head, node.get("NodeManagerHostname") or "", node["NodeManagerAddress"], node["NodeID"])

    alive = sorted((n for n in ray.nodes() if n.get("Alive")), key=order)
    return [
        NodeInfo(n["NodeID"], n.get("NodeManagerHostname") or n["NodeManagerAddress"], n["NodeManagerAddress"]) for n in alive
    ]


def why(exc: BaseException) -> str:
    """Say in one line why a node or a file failed: the exception's type and the first line of its message."""
    cause = getattr(exc, "cause", None)  # a Ray task error: the node-side exception
    shown = cause if isinstance(cause, BaseException) else exc
    first = (str(shown).strip().splitlines() or [""])[0]
    return f"{type(shown).__name__}: {first[:300]}" if first else type(shown).__name__


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def cluster_nodes(address: str | None) -> tuple[Any, list[NodeInfo], dict[str, str], Callable[[NodeInfo], dict[str, Any]]]:
    """Connect to the cluster; return ``ray``, its alive nodes, their names, and ``.options()`` pinning a task to a node."""
    ray = _connect(address)
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = _alive_nodes(ray)
    if not nodes:
        raise LogDirError("the Ray cluster has no alive node")

    def pinned(node: NodeInfo) -> dict[str, Any]:
        return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node.node_id, soft=False)}

    return ray, nodes, node_names(nodes), pinned



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
    (its raylet's ``LOGCONF_DIR``, else logconf's default there). Connects to the running
    cluster at ``address`` (default: ``auto``) unless Ray is already initialised in this
    process. Up to ``jobs`` files are copied at once. A node that fails (it died, a file could
    not be read) is named in ``failed``, with the reason, and the others are gathered.
    """
    if chunk < 1:
        raise LogDirError(f"--chunk-mib: must be positive, got {chunk} bytes")
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise LogDirError(f"{dest}: not a directory (gather writes DEST/<node>/<file>)")
    manifest = read_manifest(dest)
    plan = rank_file_plan()  # this process's LOGCONF_FILE_MODE and LOGCONF_DIR_MODE bound the copies' modes
    ray, alive, _, pinned = cluster_nodes(address)
    from ray.exceptions import RayError, RayTaskError

    # No retries: a task pinned to a node that died cannot run elsewhere, and a retried stream would start again.
    listing = ray.remote(num_cpus=0, max_retries=0)(node_listing)
    stream = ray.remote(num_cpus=0, max_retries=0, num_returns="streaming", _generator_backpressure_num_objects=BACKPRESSURE)(
        _node_stream
    )
    refs = [listing.options(**pinned(n)).remote(directory) for n in alive]
    result = GatherResult(os.path.abspath(dest))
    owner = {str(entry.get("node_id")): name for name, entry in manifest.items()}
    listed: list[tuple[NodeInfo, dict[str, Any]]] = []
    for node, ref in zip(alive, refs, strict=True):
        try:
            found = ray.get(ref)
        except RayError as exc:
            label = owner.get(node.node_id) or f"{safe_name(node.hostname)} (node {node.node_id[:8]})"
            result.failed[label] = f"not listed: {why(exc)}"
            if node.node_id in owner:
                result.nodes[label] = dict(manifest[label])  # its "failed" is set below
            continue
        listed.append((NodeInfo(node.node_id, found["hostname"], node.ip, found["dir"]), found))
    os.makedirs(dest, mode=plan.dir_mode, exist_ok=True)  # the mode applies to DEST itself when gather creates it
    names = node_dirs([n for n, _ in listed], manifest, alive=[n.node_id for n in alive], existing=os.listdir(dest))
    work: list[tuple[NodeInfo, str, str, dict[str, Any]]] = []
    for node, found in listed:
        name = names[node.node_id]
        entry = {
            "node_id": node.node_id,
            "hostname": node.hostname,
            "ip": node.ip,
            "dir": node.dir,
            "gathered_at": _now(),
            "files": {f["name"]: f["end"] for f in found["files"]},
        }
        if found["skipped"]:
            entry["skipped"] = found["skipped"]
            result.skipped.update({f"{name}/{file}": note for file, note in found["skipped"].items()})
        result.nodes[name] = entry
        try:
            make_node_dir(os.path.join(dest, name), plan.dir_mode & found["dir_mode"])
        except OSError as exc:
            result.failed[name] = f"{os.path.join(dest, name)}: {why(exc)}"
            continue
        work.extend((node, name, found["dir"], file) for file in found["files"])

    lost: set[str] = set()  # nodes that died: their files still queued are not tried

    def copy(item: tuple[NodeInfo, str, str, Mapping[str, Any]]) -> FileCopy:
        node, name, where, file = item
        target = os.path.join(dest, name, file["name"])
        done = FileCopy(name, file["name"], file["end"])
        if name in lost:
            done.failed = "not tried: the node failed earlier in this run"
        else:
            source = os.path.join(where, file["name"])

            def chunks(size: int, tail: bytes) -> Iterator[Any]:
                return _values(ray, stream.options(**pinned(node)).remote(source, size, tail, file["end"], chunk))

            try:
                update_copy(target, file, chunks, done, plan.file_mode)
            except (RayError, OSError) as exc:
                done.failed = why(exc)
                result.failed.setdefault(name, f"{file['name']}: {done.failed}")  # the first failure says why
                if not isinstance(exc, (RayTaskError, OSError)):  # not one file's error on the node: the node is gone
                    lost.add(name)
        result.worker_peak_rss_kib = max(result.worker_peak_rss_kib, done.peak_rss_kib)
        result.worker_peak_anon_kib = max(result.worker_peak_anon_kib, done.peak_anon_kib)
        if progress is not None:
            progress(done)
        return done

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        result.copies = list(pool.map(copy, work))
    result.skipped.update({f"{c.node}/{c.name}": c.skipped for c in result.copies if c.skipped})
    for name, problem in result.failed.items():
        if name in result.nodes:
            result.nodes[name]["failed"] = problem
    write_manifest(dest, result.nodes, plan.file_mode)
    return result
