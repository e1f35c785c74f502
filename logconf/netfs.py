"""Tell whether a log directory is on a network filesystem, and give its files a per-host name there.

Appends from one host to a local file are serialised by the kernel; appends from several
hosts to one file on NFS, Lustre, SMB or a FUSE filesystem are not, so two hosts' records
could interleave inside a line. On such a filesystem each host therefore writes its own
files, named ``vllm_rank_0@<host>.log``: ``@`` never occurs in a rank, so the tools can read
rank and host back from the name even when either holds a dot.

The filesystem type comes from the mount table (``/proc/self/mountinfo``): the mount whose
device is the directory's, else the longest mount point above its real path. The table
names FUSE subtypes (``fuse.sshfs``, ``fuse.fuse-overlayfs``), which ``statfs`` cannot tell
apart. It is read when a handler resolves its path (start, ``set_rank``, fork), never per
record, and its answer is kept per device.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from logconf.errors import ConfigError

__all__ = [
    "HOST_ENV",
    "MODE_ENV",
    "MOUNTINFO_ENV",
    "NETWORK_TYPES",
    "fs_type",
    "host_name",
    "is_network",
    "per_host",
    "with_host",
]

MODE_ENV = "LOGCONF_PER_HOST"  # auto (default): per-host names on a network filesystem; 1: always; 0: never
HOST_ENV = "LOGCONF_HOSTNAME"  # the host part of file names and {hostname}; default: the kernel's node name
MOUNTINFO_ENV = "LOGCONF_MOUNTINFO"  # the mount table to read (tests point it at a file of their own)
SEPARATOR = "@"

NETWORK_TYPES = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "coda", "9p", "virtiofs", "davfs",
        "lustre", "gpfs", "ceph", "glusterfs", "beegfs", "orangefs", "pvfs2", "panfs", "wekafs",
        "ocfs2", "gfs2", "fuse",
    }
)  # fmt: skip
# FUSE filesystems that only ever hold this host's files; any other FUSE type counts as network.
LOCAL_FUSE = frozenset({"fuse-overlayfs", "lxcfs", "squashfuse", "squashfuse_ll", "bindfs", "portal"})



def fs_type(path: str, environ: Mapping[str, str] | None = None) -> str:
    """Return the type of the filesystem that holds ``path`` (or would hold it), or "" if unknown."""
    env = os.environ if environ is None else environ
    existing = os.path.abspath(path)
    while not os.path.exists(existing) and existing != os.path.dirname(existing):
        existing = os.path.dirname(existing)
    try:
        device = os.stat(existing).st_dev
    except OSError:
        return ""
    # Read afresh each time (about 75 us for 20 mounts, once per handler): a device number is
    # handed to the next mount once its filesystem is unmounted, so no answer can be kept by it.
    table = env.get(MOUNTINFO_ENV) or "/proc/self/mountinfo"
    try:
        with open(table, encoding="utf-8", errors="replace") as file:
            mounts = file.read().splitlines()
    except OSError:
        return ""
    return _lookup(mounts, f"{os.major(device)}:{os.minor(device)}", os.path.realpath(existing))


def _lookup(mounts: list[str], device: str, real: str) -> str:
    by_device, best, best_len = "", "", -1
    for line in mounts:
        # ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
        head, sep, tail = line.partition(" - ")
        fields, rest = head.split(" "), tail.split(" ")
        if not sep or len(fields) < 5 or not rest[0]:
            continue
        if fields[2] == device:
            by_device = rest[0]  # the last one wins: a later mount hides an earlier one
        point = _unescape(fields[4])
        if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) >= best_len:
            best, best_len = rest[0], len(point)
    return by_device or best


def _unescape(field: str) -> str:
    # The kernel writes space, tab, newline and backslash in paths as octal escapes.
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def is_network(kind: str) -> bool:
    """Tell whether a filesystem type (as the mount table names it) is shared between hosts."""
    base, _, subtype = kind.partition(".")
    if base == "fuse":
        return subtype not in LOCAL_FUSE
    return kind in NETWORK_TYPES


def per_host(mode: str, network: bool, *, file: str, key: str) -> bool:
    """Resolve ``LOGCONF_PER_HOST`` (``auto``, ``1`` or ``0``) for a directory that is or is not on a network fs."""
    lowered = mode.strip().lower()
    if lowered == "auto":
        return network
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(file, key, mode, "not a per-host mode", "use auto, 1 or 0")


def host_name(environ: Mapping[str, str] | None = None, *, file: str = "<environment>") -> str:
    """Return this host's name for file names: ``LOGCONF_HOSTNAME`` if set, else the kernel's node name (as gethostname())."""
    env = os.environ if environ is None else environ
    name = env.get(HOST_ENV)
    if name is None:
        name = os.uname().nodename  # gethostname() without importing socket
    bad = not name or "/" in name or ".." in name or SEPARATOR in name or not name.isprintable() or " " in name
    if bad:
        raise ConfigError(
            file, HOST_ENV, name, "is not usable as a host name in file names", "a name without '/', '..', '@' or blanks"
        )
    return name


def with_host(filename: str, host: str) -> str:
    """Return ``filename`` with ``@host`` before its extension: ``vllm_rank_0.log`` -> ``vllm_rank_0@host.log``.

    The stdio copy keeps ``.stdio`` after the host (``vllm_rank_0@host.stdio.log``); a name
    without an extension gets ``@host`` at its end.
    """
    stem, dot, ext = filename.rpartition(".")
    if not dot or not stem:
        return f"{filename}{SEPARATOR}{host}"
    if stem.endswith(".stdio"):
        return f"{stem[:-6]}{SEPARATOR}{host}.stdio.{ext}"
    return f"{stem}{SEPARATOR}{host}.{ext}"
