"""Formatters that the shipped configs name: text lines or JSON lines, with the rank.

Every line carries the UTC time to the millisecond, the level, the rank, the process name
and pid, the logger name and the message. The rank is baked into the formatter when it is
built (and rebuilt by ``set_rank``), so the hot path pays nothing to look it up.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Mapping
from typing import Any

from pythonjsonlogger.core import merge_record_extra
from pythonjsonlogger.json import JsonEncoder
from pythonjsonlogger.json import JsonFormatter as _PjlJsonFormatter

from logconf.errors import ConfigError, current_source, locate
from logconf.redact import redact as _redact
from logconf.templating import FORMATS, expand

__all__ = ["JsonFormatter", "TextFormatter", "make_formatter"]

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
_JSON_ITEMS = tuple(JSON_FIELDS.items())

_LIVE: weakref.WeakSet[Any] = weakref.WeakSet()


def _rank_complaint(name: str, value: str) -> str | None:
    if "/" in value or ".." in value or "\0" in value:
        return "is not a valid rank: it holds '/' or '..'"
    return None


def resolve_rank(
    template: str = RANK_TEMPLATE, *, file: str | None = None, key: str = "rank", environ: Mapping[str, str] | None = None
) -> str:
    """Return this process's rank from ``template`` (by default LOGCONF_RANK, then RANK, then 0)."""
    return expand(template, file=file or current_source(), key=key, environ=environ, check_value=_rank_complaint)


def _expand(arg: str, template: str, check=None) -> str:
    try:
        return expand(template, file=current_source(), key=arg, check_value=check)
    except ConfigError as exc:
        raise ConfigError(exc.file, locate("make_formatter", arg, template), exc.value, exc.problem, exc.expected) from None


def _flag(value: str, *, key: str) -> bool:
    text = _expand(key, value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(current_source(), locate("make_formatter", key, value), text, "not a switch", "use 1 or 0")


class _RankMixin:
    rank_template: str
    rank: str
    redact: bool

    def refresh(self) -> None:
        """Re-resolve the rank from the environment (``set_rank`` calls this)."""
        self.rank = _expand("rank", self.rank_template, check=_rank_complaint)


class TextFormatter(_RankMixin, logging.Formatter):
    """``2026-11-26T08:47:47.123Z INFO rank=0 EngineCore_DP0[4242] vllm.engine: message``."""

    converter = time.gmtime  # type: ignore[assignment]
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"

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

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        return _redact(line) if self.redact else line


class JsonFormatter(_RankMixin, _PjlJsonFormatter):
    """One JSON object per line: time, level, rank, process_name, pid, logger, message,
    ``exc_info`` and ``stack_info`` when present, and any ``extra`` fields."""

    converter = time.gmtime  # type: ignore[assignment]
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"

    def __init__(self, rank: str = RANK_TEMPLATE, redact: bool = True) -> None:
        self.rank_template = rank
        self.redact = redact
        super().__init__(list(JSON_FIELDS), rename_fields=dict(JSON_FIELDS), json_ensure_ascii=False)
        self._skip = frozenset(JSON_FIELDS) | frozenset(self.reserved_attrs)
        self._encode = JsonEncoder(ensure_ascii=False).encode  # what json.dumps(cls=JsonEncoder) builds per call
        self.refresh()
        _LIVE.add(self)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        # python-json-logger's add_fields for exactly this formatter's arguments, without a rename
        # lookup per field: the same keys, in the same order, on every record.
        fields = record.__dict__
        for field, key in _JSON_ITEMS:
            log_data[key] = fields.get(field)
        log_data["rank"] = self.rank
        for key, value in message_dict.items():
            log_data[JSON_FIELDS.get(key, key)] = value
        merge_record_extra(record, log_data, reserved=self._skip, rename_fields=JSON_FIELDS)

    def jsonify_log_record(self, log_data: dict[str, Any]) -> str:
        return self._encode(log_data)

    def refresh(self) -> None:
        super().refresh()
        self.static_fields = {"rank": self.rank}

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        return _redact(line) if self.redact else line


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
    chosen = text
    cls = JsonFormatter if chosen == "json" else TextFormatter
    return cls(rank=rank, redact=_flag(redact, key="redact"))


def refresh_all() -> None:
    """Re-resolve the rank of every live logconf formatter in this process."""
    for formatter in list(_LIVE):
        formatter.refresh()
