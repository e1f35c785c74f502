"""The JSON-lines formatter, on python-json-logger; imported only when LOGCONF_FORMAT=json."""

from __future__ import annotations

import logging
from typing import Any

from pythonjsonlogger.core import merge_record_extra
from pythonjsonlogger.json import JsonEncoder
from pythonjsonlogger.json import JsonFormatter as _PjlJsonFormatter

from logconf.formatters import _JSON_ITEMS, _LIVE, JSON_FIELDS, RANK_TEMPLATE, _RankMixin
from logconf.redact import redact as _redact

__all__ = ["JsonFormatter"]


class JsonFormatter(_RankMixin, _PjlJsonFormatter):  # type: ignore[misc]
    """One JSON object per line: time, level, rank, process_name, pid, logger, message,
    ``exc_info`` and ``stack_info`` when present, and any ``extra`` fields."""

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
        if self.actor is not None and log_data["process_name"] == "MainProcess":
            log_data["process_name"] = self.actor
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
