"""The directory ``logconf gather`` fills: one subdirectory per node, for good, inside DEST, no more readable than the source.

DEST's manifest (``logconf-gather.json``) records which node each subdirectory holds. A node
keeps its subdirectory for the life of DEST: a node whose Ray node id the manifest knows gets
the same one at every run, whoever else joins or leaves; a node that restarted (a new node id
on the same host, IP and directory as a node that is gone) continues its predecessor's, since
it holds the same files. A new node is named after its host, made one safe path component,
with its IP or node id added when another node has or had that host name, and never a name
that DEST already holds. Copies and subdirectories get the node's own permission bits, less
any that the shipped config's ``file_mode`` and ``dir_mode`` (``LOGCONF_FILE_MODE``,
``LOGCONF_DIR_MODE``) leave out.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from logconf.config import vllm_config_path
from logconf.errors import applying
from logconf.handlers import FilePlan
from logconf.logfiles import LogDirError
from logconf.sources import load

__all__ = [
    "MANIFEST",
    "NAME_MAX",
    "NodeInfo",
    "make_node_dir",
    "node_dirs",
    "node_names",
    "rank_file_plan",
    "read_manifest",
    "safe_name",
    "tighten",
    "write_manifest",
]

MANIFEST = "logconf-gather.json"  # DEST's record of which node each subdirectory holds
SCHEMA = "logconf.gather/1"
NAME_MAX = 64  # characters of a host name kept in a directory name (a Linux host name has at most 64)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class NodeInfo:
    """A node as gather names it: Ray's node id, its host name and IP, and the directory its files came from."""

    node_id: str
    hostname: str
    ip: str
    dir: str = ""


def rank_file_plan() -> FilePlan:
    """Plan the shipped vLLM config's rank file here: the directory and modes logconf gives this environment by default."""
    path = vllm_config_path()
    handler = load(path)["handlers"]["vllm_file"]
    modes = {"file_mode": handler["file_mode"], "dir_mode": handler["dir_mode"]}
    with applying(path):  # a fixed file name: a node's rank or host name must not stop gather reading its directory
        return FilePlan(handler["directory"], "gather", per_host="0", **modes)


def safe_name(text: str) -> str:
    """Return ``text`` as one path component that stays where it is put: ASCII letters, digits, ``.``, ``_``, ``-``.

    Anything else becomes ``_``, leading dots go (no ``.``, ``..`` or hidden name), at most
    NAME_MAX characters are kept, and nothing left gives ``node``.
    """
    return _UNSAFE.sub("_", text).lstrip(".")[:NAME_MAX] or "node"


def node_names(nodes: Sequence[NodeInfo]) -> dict[str, str]:
    """Name each node after its host where that is unique among ``nodes``.

    Nodes that share a host name (containers, or several raylets on one machine) add their IP
    where that tells them apart, and else the first 8 characters of their node id.
    """
    hosts = Counter(n.hostname for n in nodes)
    pairs = Counter((n.hostname, n.ip) for n in nodes)
    names = {}
    for node in nodes:
        host = safe_name(node.hostname)
        if hosts[node.hostname] == 1:
            names[node.node_id] = host
        elif pairs[(node.hostname, node.ip)] == 1:
            names[node.node_id] = f"{host}-{safe_name(node.ip)}"
        else:
            names[node.node_id] = f"{host}-{node.node_id[:8]}"
    return names


def node_dirs(
    nodes: Sequence[NodeInfo],
    manifest: Mapping[str, Mapping[str, Any]],
    *,
    alive: Iterable[str] = (),
    existing: Iterable[str] = (),
) -> dict[str, str]:
    """Return each node's DEST subdirectory, by node id: the manifest's, a gone predecessor's, or a new free name.

    ``manifest`` maps the subdirectories of earlier runs to their nodes; ``alive`` names the
    node ids alive now (``nodes`` and any that could not be listed), whose subdirectories no
    newcomer may take; ``existing`` is what DEST holds already (names the manifest does not
    know are never used). New names are unique regardless of case.
    """
    owner = {str(entry.get("node_id")): name for name, entry in manifest.items()}
    living = {*alive, *(n.node_id for n in nodes)}
    gone = {name: entry for name, entry in manifest.items() if entry.get("node_id") not in living}
    dirs: dict[str, str] = {}
    new = []
    for node in nodes:
        if node.node_id in owner:
            dirs[node.node_id] = owner[node.node_id]
            continue
        place = (node.hostname, node.ip, node.dir)
        same = [name for name, entry in gone.items() if (entry.get("hostname"), entry.get("ip"), entry.get("dir")) == place]
        if same and node.dir:  # the same host's raylet restarted: its directory holds the files copied before
            dirs[node.node_id] = name = max(same, key=lambda n: str(gone[n].get("gathered_at", "")))
            del gone[name]
        else:
            new.append(node)
    earlier = [NodeInfo(str(e.get("node_id")), str(e.get("hostname")), str(e.get("ip"))) for e in manifest.values()]
    wished = node_names([*new, *earlier])
    taken = {n.casefold() for n in (*manifest, *existing, MANIFEST, MANIFEST + ".tmp")}
    for node in new:
        host = safe_name(node.hostname)
        dirs[node.node_id] = name = _free((wished[node.node_id], f"{host}-{node.node_id[:8]}", f"{host}-{node.node_id}"), taken)
        taken.add(name.casefold())
    return dirs


def _free(wishes: Sequence[str], taken: set[str]) -> str:
    """Return the first of ``wishes`` that ``taken`` (case-folded) lacks, else the last one numbered until it is free."""
    for name in wishes:
        if name.casefold() not in taken:
            return name
    number = 2
    while f"{wishes[-1]}-{number}".casefold() in taken:
        number += 1
    return f"{wishes[-1]}-{number}"


def read_manifest(dest: str) -> dict[str, dict[str, Any]]:
    """Return the nodes that DEST's manifest records, by subdirectory ({} when there is none yet).

    A manifest that cannot be read is refused: without it gather could no longer tell which
    subdirectory holds which node.
    """
    path = os.path.join(dest, MANIFEST)
    try:
        with open(path, encoding="utf-8") as file:
            manifest = json.load(file)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise LogDirError(f"{path}: cannot read gather's manifest ({exc}); restore it, or gather into a new directory") from None
    nodes = manifest.get("nodes", {}) if isinstance(manifest, dict) else None
    if not isinstance(nodes, dict) or not all(isinstance(entry, dict) for entry in nodes.values()):
        expected = 'expected {"nodes": {DIR: {...}}}'
        raise LogDirError(f"{path}: not a gather manifest ({expected}); restore it, or gather into a new directory")
    return nodes


def write_manifest(dest: str, nodes: Mapping[str, Mapping[str, Any]], mode: int) -> None:
    """Record this run's ``nodes`` (by subdirectory) in DEST's manifest; the nodes of earlier runs stay listed."""
    merged = {**read_manifest(dest), **nodes}
    path = os.path.join(dest, MANIFEST)
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        tighten(file.fileno(), mode)
        json.dump({"schema": SCHEMA, "nodes": dict(sorted(merged.items()))}, file, indent=2)
        file.write("\n")
    os.replace(path + ".tmp", path)


def tighten(fd: int, mode: int) -> None:
    """Take from the open file ``fd`` every permission bit that ``mode`` lacks (none is ever added)."""
    current = stat.S_IMODE(os.fstat(fd).st_mode)
    if current & ~mode:
        os.fchmod(fd, current & mode)


def make_node_dir(path: str, mode: int) -> None:
    """Create the node subdirectory ``path`` with at most ``mode``, or take from an existing one the bits ``mode`` lacks.

    Raises OSError for something at ``path`` that is not a directory (a link included).
    """
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        pass
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        tighten(fd, mode)
    finally:
        os.close(fd)
