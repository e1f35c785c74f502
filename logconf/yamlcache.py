"""A per-user cache of parsed YAML configs, so that ``apply()`` need not import PyYAML each time.

Importing PyYAML costs more than the rest of ``apply()`` together (about 20 ms of 35 on a busy
2-core machine), and every process of a job (each Ray worker, with ``LOGCONF_AUTO=1`` each Python
process) reads the same file. The first parse of a file is written, as JSON, to
``$XDG_CACHE_HOME/logconf`` (``~/.cache/logconf``); a later ``load`` of the same file reads it back
with ``json``, which ``import logconf`` does not pay for either, but costs far less than PyYAML.

An entry is used only when it holds the file's exact text (so an edit, however quick, is never
missed), was written by this version of the cache for the same real path, and is a regular file of
this user's that nobody else may write. A config JSON cannot hold exactly (a date, a non-string
key, NaN) is never cached. Every failure (no home, a read-only one, a full disk, a corrupt entry)
costs only the cache: the file is parsed by PyYAML as without it, and its errors name the file and
line as before.
"""

from __future__ import annotations

import os
import stat
from typing import Any

__all__ = ["lookup", "store"]

_FORMAT = "logconf-yaml-cache/1"  # changed whenever an entry's shape or meaning changes
_MAX_ENTRY = 4 << 20  # a logging config is a few KiB; anything far larger is not one of ours


def directory() -> str | None:
    """Return the cache directory ($XDG_CACHE_HOME/logconf, else ~/.cache/logconf), or None without a home."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative value is ignored
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, "logconf")


def _entry(real: str) -> str | None:
    where = directory()
    if where is None:
        return None
    # Two paths sharing a checksum share an entry; each read checks the path and the text, so they
    # only take turns in it.
    return os.path.join(where, f"{_checksum(os.fsencode(real)):08x}-{os.path.basename(real)[:80]}.json")


def _checksum(data: bytes) -> int:
    """32-bit FNV-1a of ``data``: stable across processes, and no extension module to load (zlib's costs
    each applying process about 2 ms)."""
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def lookup(file: str, text: str) -> dict[str, Any] | None:
    """Return the cached parse of ``file`` if its entry holds exactly ``text``; else None."""
    import json

    try:
        real = os.path.realpath(file)
        path = _entry(real)
        if path is None:
            return None
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        try:
            info = os.fstat(fd)
            # Applying a config runs the factories it names: only an entry this user wrote, that
            # no one else can rewrite, is trusted.
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
                return None
            if info.st_size > _MAX_ENTRY:
                return None
            data = os.read(fd, info.st_size + 1)
        finally:
            os.close(fd)
        entry = json.loads(data)
        if (
            isinstance(entry, dict)
            and entry.get("format") == _FORMAT
            and entry.get("file") == real
            and entry.get("text") == text
            and isinstance(entry.get("config"), dict)
        ):
            return entry["config"]
    except (OSError, ValueError, RecursionError):
        pass  # no entry, an unreadable or corrupt one: parse the file
    return None


def store(file: str, text: str, config: dict[str, Any]) -> None:
    """Write the parse of ``file`` (holding ``text``) to the cache when JSON holds it exactly; never raise."""
    import json

    tmp = None
    try:
        payload = json.dumps(config, allow_nan=False)
        if json.loads(payload) != config:
            return  # JSON would change it: non-string keys become strings, and so on
        real = os.path.realpath(file)
        path = _entry(real)
        if path is None:
            return
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        entry = json.dumps({"format": _FORMAT, "file": real, "text": text, "config": config}, allow_nan=False)
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(entry)
        os.replace(tmp, path)  # readers see the old entry or the new one, never half of one
        tmp = None
    except Exception:
        pass  # a cache that cannot be written costs the next process PyYAML's import, nothing more
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
