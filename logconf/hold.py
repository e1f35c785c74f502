"""Records held while a Ray actor's rank is unknown: frozen copies, capped by count and by bytes.

A Ray actor may be told its rank in ``__init__`` (``logconf.set_rank``, or a framework's set-up):
until then its records wait here, so that they land in that rank's file, with that rank. The
hold ends when the rank is told, when the hold time is over (a timer: no record needs to come
along), when it is full, at close and at exit. A forked child holds nothing: the parent writes
what it held, and the child, which may end with ``os._exit`` (multiprocessing does), writes its
own records at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["MAX_BYTES", "MAX_RECORDS", "RecordHold"]

MAX_RECORDS = 10_000
MAX_BYTES = 8 << 20  # of message, traceback and stack text: 800 records of 128 KiB must not hold 100 MiB
_RECORD_BYTES = 512  # what a frozen LogRecord costs besides its text


def freeze(record: logging.LogRecord) -> logging.LogRecord:
    """Return a copy of ``record`` whose message and traceback are text now: later changes must not show."""
    frozen = logging.makeLogRecord(record.__dict__)
    frozen.msg, frozen.args = record.getMessage(), None
    if record.exc_info and not record.exc_text:
        frozen.exc_text = logging.Formatter().formatException(record.exc_info)
    frozen.exc_info = None
    return frozen


def size_of(record: logging.LogRecord) -> int:
    """Return about how many bytes a frozen record holds."""
    return _RECORD_BYTES + len(record.msg) + len(record.exc_text or "") + len(record.stack_info or "")


class RecordHold:
    """The records one handler holds, in order, until :meth:`take` hands them over."""

    def __init__(self, seconds: float) -> None:
        self.records: list[logging.LogRecord] = []
        self.bytes = 0
        self.until = time.monotonic() + seconds

    def add(self, record: logging.LogRecord) -> bool:
        """Hold a frozen copy of ``record``; return whether the hold must end now (full, or its time is over)."""
        frozen = freeze(record)
        self.records.append(frozen)
        self.bytes += size_of(frozen)
        return len(self.records) >= MAX_RECORDS or self.bytes >= MAX_BYTES or time.monotonic() >= self.until

    def take(self) -> list[logging.LogRecord]:
        """Return the held records and forget them."""
        records, self.records, self.bytes = self.records, [], 0
        return records

    def start_timer(self, due: Callable[[], None]) -> None:
        """Call ``due`` in a daemon thread when the hold time is over."""
        timer = threading.Timer(max(0.0, self.until - time.monotonic()), due)
        timer.daemon = True
        timer.name = "logconf-rank-hold"
        timer.start()
