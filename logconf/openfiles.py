"""Read many log files at once, plain or gzip-compressed, holding a bounded number of descriptors.

The tools read thousands of files in one pass (merge keeps a stream per file, tail follows every
rank file), more than a process may open (``ulimit -n``, often 1024). Every file is opened through
a :class:`FilePool`, which holds at most ``limit`` descriptors: when it needs one more it closes
the one used least recently, and that file is opened again, where reading stopped, when it is
read next. Buffers live apart from descriptors, so closing one loses nothing.

A file is known by its device and inode, and by its first bytes (a freed inode's number is soon
given to a new file): a reopen that finds another file at the path (renamed by a rotation, or
compressed to ``path.gz``) looks for the original through the reader's ``locate`` function,
then for ``path.gz`` (the same bytes, compressed), and raises :class:`FileMoved` if neither holds it.

A ``.gz`` file is decompressed as it is read (several members in a row included); the
decompressor's state outlives the descriptor, so reading resumes at the compressed offset.
"""

from __future__ import annotations

import collections
import io
import os
import resource
import zlib
from collections.abc import Callable
from typing import Any, BinaryIO

__all__ = ["BUFFER", "FileMoved", "FilePool", "default_pool", "open_part"]

BUFFER = 1 << 13  # bytes buffered per open reader (kept while its descriptor is closed)
_RAW_CHUNK = 1 << 14  # compressed bytes read at a time
_HEAD = 64  # first bytes compared at each reopen
_GZIP = 16 + zlib.MAX_WBITS  # a gzip header and trailer around the deflate stream

Identity = tuple[int, int]
Locate = Callable[[Identity], "str | None"]


class FileMoved(FileNotFoundError):
    """The file a reader was reading is no longer at its path, and could not be found elsewhere."""


def _limit() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 16
    return max(8, min(soft // 4, 512))  # the rest stays free for the program, pipes and a few files read whole


class FilePool:
    """Lend descriptors to readers, at most ``limit`` at once, closing the least recently used first."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit or _limit()
        self._open: collections.OrderedDict[_Raw, int] = collections.OrderedDict()
        self.reopened = 0  # descriptors opened again after the pool closed them (for the bench)

    def fd(self, raw: _Raw) -> int:
        """Return ``raw``'s descriptor, opening it (and closing another) if needed."""
        fd = self._open.get(raw)
        if fd is not None:
            self._open.move_to_end(raw)
            return fd
        while len(self._open) >= self.limit:
            _, victim = self._open.popitem(last=False)
            os.close(victim)
        if raw.opened:
            self.reopened += 1
        fd = raw.open_now()
        self._open[raw] = fd
        return fd

    def release(self, raw: _Raw) -> None:
        fd = self._open.pop(raw, None)
        if fd is not None:
            os.close(fd)

    @property
    def in_use(self) -> int:
        return len(self._open)


_POOL: FilePool | None = None


def default_pool() -> FilePool:
    """The process's pool, sized from its open-file limit when first used."""
    global _POOL
    if _POOL is None:
        _POOL = FilePool()
    return _POOL


class _Raw(io.RawIOBase):
    """A file read by position through a pooled descriptor; ``identity`` is checked at each open."""

    def __init__(self, path: str, pool: FilePool, locate: Locate | None) -> None:
        super().__init__()
        self.path, self.pool, self.locate = path, pool, locate
        self.identity: Identity | None = None
        self.head = b""  # the file's first bytes, as far as they were there
        self.opened = False
        self.pos = 0
        self.gz: _GzipRaw | None = None  # the plain file was compressed meanwhile: path + ".gz" holds it

    def open_now(self) -> int:
        fd = self._try(self.path)
        if fd is not None:
            return fd
        found = self.locate(self.identity) if self.locate and self.identity else None
        fd = self._try(found) if found else None
        if fd is not None:
            self.path = found  # type: ignore[assignment]
            return fd
        if not self.opened:
            raise FileNotFoundError(2, "No such file or directory", self.path)
        raise FileMoved(2, "the file being read was moved or removed", self.path)

    def _try(self, path: str) -> int | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        info = os.fstat(fd)
        head = os.pread(fd, _HEAD, 0)
        if self.identity is not None and ((info.st_dev, info.st_ino) != self.identity or not head.startswith(self.head)):
            os.close(fd)
            return None
        self.identity, self.head, self.opened = (info.st_dev, info.st_ino), head, True
        return fd

    def current_head(self) -> bytes:
        """Return the first bytes of the file being read, as they are now (they identify it with its inode)."""
        self.head = os.pread(self.pool.fd(self), _HEAD, 0)
        return self.head

    def is_at(self, path: str) -> bool:
        """Whether ``path`` names the file being read now: its inode, and the same first bytes."""
        try:
            mine = self.current_head()
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            info = os.fstat(fd)
            return (info.st_dev, info.st_ino) == self.identity and os.pread(fd, _HEAD, 0).startswith(mine)
        finally:
            os.close(fd)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.gz is None:
            try:
                fd = self.pool.fd(self)
            except FileNotFoundError:
                if self.path.endswith(".gz") or not os.path.exists(self.path + ".gz"):
                    raise
                self.gz = _GzipRaw(self.path + ".gz", self.pool, None)  # compressed since: the same bytes
                self.gz.seek(self.pos)
            else:
                data = os.pread(fd, len(buffer), self.pos)
                buffer[: len(data)] = data
                self.pos += len(data)
                return len(data)
        count = self.gz.readinto(buffer)
        self.pos += count
        return count

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 1:
            offset += self.pos
        elif whence == 2:
            offset += self.size()
        if self.gz is not None:
            self.gz.seek(offset)
        self.pos = offset
        return offset

    def tell(self) -> int:
        return self.pos

    def size(self) -> int:
        if self.gz is not None:
            return self.gz.size()
        return os.fstat(self.pool.fd(self)).st_size

    def close(self) -> None:
        if not self.closed:
            self.pool.release(self)
            if self.gz is not None:
                self.gz.close()
        super().close()

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


class _GzipRaw(_Raw):
    """The decompressed bytes of a gzip file, read through a pooled descriptor."""

    def __init__(self, path: str, pool: FilePool, locate: Locate | None) -> None:
        super().__init__(path, pool, locate)
        self._restart()

    def _restart(self) -> None:
        self.pos = self.raw_pos = 0
        self.inflate = zlib.decompressobj(_GZIP)
        self.pending = b""  # compressed bytes taken from the file but not given to the decompressor yet

    def readinto(self, buffer: Any) -> int:
        want = len(buffer)
        while True:
            if self.pending or self.inflate.unconsumed_tail:
                data = self.inflate.unconsumed_tail or self.pending
                self.pending = b""
            else:
                data = os.pread(self.pool.fd(self), _RAW_CHUNK, self.raw_pos)
                self.raw_pos += len(data)
                if not data:
                    return 0  # the end (a member cut short ends here too: its last line reads as torn)
            try:
                out = self.inflate.decompress(data, want)
            except zlib.error as exc:
                raise OSError(f"{self.path}: not a readable gzip file ({exc})") from None
            if self.inflate.eof:  # a member ends here; another may follow (zero padding does not count)
                rest = self.inflate.unused_data
                self.inflate = zlib.decompressobj(_GZIP)
                self.pending = rest if rest.strip(b"\0") else b""
            if out:
                buffer[: len(out)] = out
                self.pos += len(out)
                return len(out)

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 1:
            offset += self.pos
        elif whence != 0:
            raise OSError(f"{self.path}: a compressed file is read from its start or a known offset only")
        if offset < self.pos:
            self._restart()
        skip = bytearray(1 << 16)
        while self.pos < offset:
            view = memoryview(skip)[: min(len(skip), offset - self.pos)]
            if not self.readinto(view):
                break
        return self.pos

    def size(self) -> int:
        raise OSError(f"{self.path}: the size of a compressed file is known only once it is read")


def open_part(path: str, pool: FilePool | None = None, locate: Locate | None = None, buffer: int = BUFFER) -> BinaryIO:
    """Open ``path`` for reading through ``pool`` (the process's by default); a ``.gz`` file is decompressed.

    The result is a buffered binary file: ``readline``, ``read``, ``seek`` and ``tell`` work in
    the file's (uncompressed) bytes. Its first read opens it, so a missing file raises then.
    """
    raw_type = _GzipRaw if path.endswith(".gz") else _Raw
    raw = raw_type(path, pool or default_pool(), locate)
    return io.BufferedReader(raw, buffer)

