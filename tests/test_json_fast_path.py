"""On plain records, logconf's JsonFormatter writes exactly what python-json-logger's generic path would.

Plain: no extra named like one of the record's own fields, no value that JSON cannot hold
(see test_jsonlines for those). With redaction on, the line equals the generic one masked
as a whole, as logconf masked JSON lines before it masked the values themselves.
"""

from __future__ import annotations

import datetime
import logging
import sys

import pytest
from helpers import needs_msgspec

from logconf.formatters import JsonFormatter, _PjlJsonFormatter
from logconf.redact import redact as redact_line


class _Reference(JsonFormatter):
    """The same fields through python-json-logger's own format, add_fields and json.dumps."""

    format = _PjlJsonFormatter.format
    add_fields = _PjlJsonFormatter.add_fields
    jsonify_log_record = _PjlJsonFormatter.jsonify_log_record  # json.dumps, with the compact separators

    def refresh(self) -> None:
        super().refresh()
        self.static_fields = {"rank": self.rank, **self._context}


def _record(msg, args=(), exc_info=None, stack_info=None, **extra):
    record = logging.LogRecord("vllm.v1.engine.async_llm", logging.INFO, "x.py", 7, msg, args, exc_info, sinfo=stack_info)
    record.__dict__.update(extra)
    return record


def _exc_info():
    try:
        raise ValueError("boom token=abc123")
    except ValueError:
        return sys.exc_info()


@pytest.mark.parametrize(
    "record",
    [
        _record("Added request %s-%d with %d tokens", ("cmpl-7f3a", 1, 128)),
        _record("with extras", request_id="r1", n=3, when=datetime.datetime(2026, 11, 26, tzinfo=datetime.timezone.utc)),
        _record("an object and a non-ASCII text: ünïcode", obj=object(), _private="hidden"),
        _record("failed", exc_info=_exc_info()),
        _record("where", stack_info="Stack (most recent call last):\n  File x.py"),
        _record({"event": "dict message", "request_id": "r1", "message": "the message"}),
    ],
    ids=["vllm-line", "extras", "object-unicode-private", "exc_info", "stack_info", "dict-message"],
)
@pytest.mark.parametrize("redact", [True, False])
def test_fast_path_matches_python_json_logger_byte_for_byte(record, redact, json_encoder):
    """Same keys, same order, same values and escaping as the generic path, with or without redaction, with either encoder."""
    fast, reference = JsonFormatter(rank="3", redact=redact, encoder=json_encoder), _Reference(rank="3", redact=redact)
    expected = reference.format(record)
    assert fast.format(record) == (redact_line(expected) if redact else expected)


@pytest.mark.parametrize(
    "record",
    [
        _record("Added request %s-%d with %d tokens", ("cmpl-7f3a", 1, 128)),
        _record("with extras ünïcode", request_id="r1", n=3, ok=True, none=None, ids=[1, 2], sub={"a": "b"}),
        _record("failed", exc_info=_exc_info()),
        _record("where", stack_info="Stack (most recent call last):\n  File x.py"),
    ],
    ids=["vllm-line", "extras", "exc_info", "stack_info"],
)
def test_msgspec_path_matches_python_json_loggers_msgspec_formatter(record):
    """With msgspec, a plain record is what python-json-logger's MsgspecFormatter writes for the same fields."""
    needs_msgspec()
    from pythonjsonlogger.msgspec import MsgspecFormatter

    class _MsgspecReference(_Reference):
        jsonify_log_record = MsgspecFormatter.jsonify_log_record  # its encoder is the one JsonFormatter built

    fast = JsonFormatter(rank="3", redact=False, encoder="msgspec")
    assert fast.format(record) == _MsgspecReference(rank="3", redact=False, encoder="msgspec").format(record)


def _at_known_time(record: logging.LogRecord) -> logging.LogRecord:
    record.created, record.msecs, record.process, record.processName = 1700000000.25, 250.0, 4242, "EngineCore_DP0"
    return record


def test_a_plain_record_is_exactly_this_line(json_encoder, monkeypatch):
    """The keys in their documented order, the time in UTC to the millisecond, the rank as a string, the host."""
    monkeypatch.setenv("LOGCONF_HOSTNAME", "gpu-node-7")
    record = _at_known_time(_record("Added request %s-%d with %d tokens", ("cmpl-7f3a", 1, 128)))
    assert JsonFormatter(rank="3").format(record) == (
        '{"time":"2023-11-14T22:13:20.250Z","level":"INFO","process_name":"EngineCore_DP0","pid":4242,'
        '"logger":"vllm.v1.engine.async_llm","message":"Added request cmpl-7f3a-1 with 128 tokens","rank":"3",'
        '"host":"gpu-node-7"}'
    )


def test_extras_follow_the_records_own_fields_masked_and_in_iso_form(json_encoder, monkeypatch):
    """A credential extra is "***", a date is ISO 8601, a private attribute is left out, the message is masked."""
    monkeypatch.setenv("LOGCONF_HOSTNAME", "gpu-node-7")
    when = datetime.datetime(2026, 11, 26, tzinfo=datetime.timezone.utc)
    record = _at_known_time(_record("login with token=abc123", token="abc123", n=3, when=when, _private=1))
    assert JsonFormatter(rank="3").format(record) == (
        '{"time":"2023-11-14T22:13:20.250Z","level":"INFO","process_name":"EngineCore_DP0","pid":4242,'
        '"logger":"vllm.v1.engine.async_llm","message":"login with token=***","rank":"3","host":"gpu-node-7",'
        '"token":"***","n":3,"when":"2026-11-26T00:00:00+00:00"}'
    )
