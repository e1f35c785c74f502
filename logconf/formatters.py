"""Formatters that the shipped configs name: text lines or JSON lines, with the rank.

Every line carries the UTC time to the millisecond, the level, the rank, the process name
and pid, the logger name and the message. The rank is baked into the formatter when it is
built (and rebuilt by ``set_rank``), so the hot path pays nothing to look it up.

In a Ray actor's main process the process name is the actor's class (``PolicyWorker[4242]``,
as Ray's own ``(PolicyWorker pid=4242)`` prefix has it), so that actors sharing a rank file
(a trainer and its rank-0 policy, ref and critic workers) can be told apart.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Mapping
from typing import Any

from logconf import raycontext
from logconf.errors import ConfigError, current_source, locate
from logconf.redact import may_hold_secret
from logconf.redact import redact as _redact
from logconf.templating import FORMATS, expand, expand_arg, switch

__all__ = ["TextFormatter", "make_formatter"]  # JsonFormatter: loaded on first use (see __getattr__)

RANK_TEMPLATE = "${LOGCONF_RANK:-${RANK:-0}}"
TEXT_FORMAT = "%(asctime)s %(levelname)s rank={rank} %(processName)s[%(process)d] %(name)s: %(message)s"
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
_MSEC_SUFFIX = tuple(_MSEC_FORMAT % ("", ms) for ms in range(1000))  # ".000Z" to ".999Z"


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


def _flag(value: str, *, key: str) -> bool:
    return switch(value, factory="make_formatter", arg=key)


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


class TextFormatter(_RankMixin, logging.Formatter):  # type: ignore[misc]
    """``2026-11-26T08:47:47.123Z INFO rank=0 EngineCore_DP0[4242] vllm.engine: message``."""

    def __init__(self, rank: str = RANK_TEMPLATE, redact: bool = True) -> None:
        self.rank_template = rank
        self.redact = redact
        super().__init__()
        self.refresh()
        _LIVE.add(self)

    def refresh(self) -> None:
        super().refresh()
        self._style = logging.PercentStyle(TEXT_FORMAT.format(rank=self.rank.replace("%", "%%")))
        self._fmt = self._style._fmt
        # An actor's main process shows the actor class where the process name would be.
        self._actor_fmt = (
            self._fmt.replace("%(processName)s", self.actor.replace("%", "%%"), 1) if self.actor else None
        )

    def format(self, record: logging.LogRecord) -> str:
        # logging.Formatter.format, less the per-record usesTime() search: this format has a time.
        record.message = record.getMessage()
        record.asctime = self.formatTime(record)
        fmt = self._fmt
        if self._actor_fmt is not None and record.processName == "MainProcess":
            fmt = self._actor_fmt
        line = fmt % record.__dict__  # type: ignore[operator]
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}" if line[-1:] != "\n" else line + record.exc_text
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        # The rest of the line is logconf's own; only the message and a traceback can hold secrets,
        # and testing the message alone keeps the check cheap on every record.
        if self.redact and (record.exc_text or record.stack_info or may_hold_secret(record.message)):
            return _redact(line)
        return line


def make_formatter(
    format: str = "${LOGCONF_FORMAT:-text}", rank: str = RANK_TEMPLATE, redact: str = "${LOGCONF_REDACT:-1}"
) -> logging.Formatter:
    """Build the text or JSON formatter that ``format`` names once it is resolved here."""
    text = _expand("format", format)
    if text not in FORMATS:
        raise ConfigError(
            current_source(),
            locate("make_formatter", "format", format),
            text,
            "unknown log format",
            "use 'text' or 'json' (LOGCONF_FORMAT)",
        )
    if text == "json":
        from logconf.jsonlines import JsonFormatter  # python-json-logger loads only when JSON is asked for

        return JsonFormatter(rank=rank, redact=_flag(redact, key="redact"))
    return TextFormatter(rank=rank, redact=_flag(redact, key="redact"))


def __getattr__(name: str) -> Any:
    # logconf.formatters.JsonFormatter stays importable from here, loaded on first use.
    if name in ("JsonFormatter", "_PjlJsonFormatter"):
        from logconf import jsonlines

        return getattr(jsonlines, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def refresh_all() -> None:
    """Re-resolve the rank of every live logconf formatter in this process."""
    for formatter in list(_LIVE):
        formatter.refresh()
