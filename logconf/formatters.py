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
from typing import Any

from logconf.errors import ConfigError, current_source
from logconf.linebase import _LIVE, RANK_TEMPLATE, _expand, _RankMixin, refresh_all, resolve_rank
from logconf.redact import may_hold_secret
from logconf.redact import redact as _redact
from logconf.sources import locate
from logconf.templating import FORMATS, switch

# JsonFormatter: loaded on first use (see __getattr__)
__all__ = ["TextFormatter", "make_formatter", "refresh_all", "resolve_rank"]


def _flag(value: str, *, key: str) -> bool:
    return switch(value, factory="make_formatter", arg=key)


TEXT_FORMAT = "%(asctime)s %(levelname)s rank={rank} %(processName)s[%(process)d] %(name)s: %(message)s"


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
