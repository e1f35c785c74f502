"""What text and JSON lines share: the rank baked into each formatter, and UTC times to the millisecond.

Every logconf formatter registers here, so that ``set_rank`` (:func:`refresh_all`) re-resolves
the rank and the Ray actor of all of them at once. :mod:`logconf.formatters` (text lines) and
:mod:`logconf.jsonlines` (JSON lines) build on this module; it imports neither.
"""

from __future__ import annotations

import copy
import logging
import time
import weakref
from collections.abc import Mapping
from typing import Any

from logconf import raycontext
from logconf.errors import current_source
from logconf.templating import expand, expand_arg

__all__ = ["JSON_FIELDS", "RANK_TEMPLATE", "refresh_all", "resolve_rank"]

RANK_TEMPLATE = "${LOGCONF_RANK:-${RANK:-0}}"
JSON_FIELDS = {
    "asctime": "time",
    "levelname": "level",
    "processName": "process_name",
    "process": "pid",
    "name": "logger",
    "message": "message",
}

_LIVE: weakref.WeakSet[Any] = weakref.WeakSet()
_MSEC_FORMAT = "%s.%03dZ"
_DIGITS = "0123456789"
# ".000Z" to ".999Z", built from the digits: a third of the start-up time of formatting each number
_MSEC_SUFFIX = tuple([f".{a}{b}{c}Z" for a in _DIGITS for b in _DIGITS for c in _DIGITS])


def _rank_complaint(name: str, value: str) -> tuple[str, str] | None:
    # The rank is written into every text line and every file name: a line break would let one
    # rank forge another's records, and a lone surrogate cannot be written as UTF-8 at all.
    valid = f"give {name} a value without '/', '..', '@', blanks or control characters, such as 0, driver or dp0-tp1"
    if "/" in value or ".." in value:
        return "is not a valid rank: it holds '/' or '..'", valid
    if "@" in value:  # it separates the rank from the host in per-host file names (logconf.netfs)
        return "is not a valid rank: it holds '@'", valid
    if " " in value or not value.isprintable():
        bad = next(c for c in value if c == " " or not c.isprintable())
        if bad.isspace():
            kind = "a blank or a line break"
        elif "\ud800" <= bad <= "\udfff":
            kind = "a lone surrogate, which UTF-8 cannot hold"
        else:
            kind = "a control or other unprintable character"
        return f"is not a valid rank: it holds {kind} (U+{ord(bad):04X})", valid
    return None


def resolve_rank(
    template: str = RANK_TEMPLATE, *, file: str | None = None, key: str = "rank", environ: Mapping[str, str] | None = None
) -> str:
    """Return this process's rank from ``template`` (by default LOGCONF_RANK, then RANK, then 0)."""
    return expand(template, file=file or current_source(), key=key, environ=environ, check_value=_rank_complaint)


def _expand(arg: str, template: str, check=None) -> str:
    return expand_arg(template, factory="make_formatter", arg=arg, check_value=check)


class _RankMixin:
    """What both formatters share: the rank, and UTC times to the millisecond."""

    rank_template: str
    rank: str
    actor: str | None = None
    redact: bool
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = _MSEC_FORMAT
    _second: tuple[int, str] = (-1, "")

    def refresh(self) -> None:
        """Re-resolve the rank from the environment, and the Ray actor (``set_rank`` calls this)."""
        self.rank = _expand("rank", self.rank_template, check=_rank_complaint)
        self.actor = raycontext.actor_class()

    def with_rank(self, rank: str) -> Any:
        """Return a copy that writes ``rank`` on every line and that ``set_rank`` leaves alone (a spill file's)."""
        twin = copy.copy(self)
        twin.rank_template = rank.replace("$", "$$").replace("{", "{{").replace("}", "}}")
        twin.refresh()
        return twin

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # Records arrive many per second: format each second once. One tuple holds the second
        # and its text, so a formatter shared between threads never pairs one with the other.
        second = int(record.created)
        cached = self._second
        if cached[0] != second:
            cached = self._second = (second, time.strftime(self.default_time_format, time.gmtime(second)))
        msecs = record.msecs
        if 0 <= msecs < 1000 and self.default_msec_format == _MSEC_FORMAT:
            return cached[1] + _MSEC_SUFFIX[int(msecs)]  # a concatenation costs half the % below
        return self.default_msec_format % (cached[1], msecs)


def refresh_all() -> None:
    """Re-resolve the rank of every live logconf formatter in this process."""
    for formatter in list(_LIVE):
        formatter.refresh()
