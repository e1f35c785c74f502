"""The JSON-lines formatter, on python-json-logger; imported only when LOGCONF_FORMAT=json.

Each record is one line holding one strict JSON object (RFC 8259: no ``NaN``), so that
``logconf summary``, ``merge`` and any JSON reader take every line. Its keys, in order:

- ``time``, ``level``, ``process_name``, ``pid``, ``logger``, ``message``, ``rank``: the
  record's own, always; then ``host``, this machine's name (``LOGCONF_HOSTNAME`` if set).
- In a process connected to Ray, Ray's context under Ray's own names (as ``ray.LoggingConfig``
  adds it): ``job_id``, ``node_id``, ``worker_id``, and in an actor ``actor_id`` and, for a named
  actor, ``actor_name``; ``task_id`` while a Ray task or actor method runs. All but ``task_id``
  are looked up when the formatter is built and at ``set_rank``, not per record (a Ray worker
  configured before it connected looks them up at its first record once connected); ``task_id``
  is read per record from Ray's worker, in Ray workers only.
- ``exc_info`` and ``stack_info`` follow when the record has them.
- The keys of a dict logged as the message (its ``message`` key, if any, is the message),
  then the record's ``extra`` fields. A name already in the object is written with ``extra_``
  in front (``extra={"time": 12.5}`` gives ``"extra_time": 12.5``, Loguru's ``bind(rank=3)``
  gives ``"extra_rank": 3``), as logconf.loguru_bridge does for the names stdlib reserves:
  nothing overwrites the record's own fields.

A value JSON cannot hold costs only itself, never the record: ``NaN``, ``Infinity`` and
``-Infinity`` are written as those strings; a dict key that is not a string, a number, a bool
or None as its ``repr`` (``"(1, 2)"``); a container inside itself as ``"<circular>"``; an int
too long to print as ``"<int of N bits>"``; an object as python-json-logger writes it (ISO
dates, ``str()``), or as its ``repr`` when that conversion fails.

Redaction works on the values, before encoding, so the line stays valid JSON: a value under a
credential's key (``api_key``, ``password``...; see logconf.redact) becomes ``"***"`` whatever its
type, as does the second item of a pair whose first names one (``("authorization", "...")``);
under a ``token`` name a number, a bool, None or tokenizer vocabulary (``"<s>"``) is kept (see
:func:`logconf.redact.is_secret`); strings are masked as text lines are.

The encoder is python-json-logger's msgspec one (as its ``MsgspecFormatter`` encodes) where
msgspec is installed, as it is in every vLLM process (vLLM depends on it) and with
``pip install logconf[fast]``, and the standard library's ``json`` elsewhere (about 2.5 µs more
per record). Both write the same compact line for the same record, except that msgspec spells a
float's exponent ``1e16`` where json writes ``1e+16``: every value reaches the encoder as a
string, a finite number, a bool, None, a list or a dict with string keys, and a record msgspec
refuses (a lone surrogate) is written by ``json``. U+0085, U+2028 and U+2029, which JSON allows
raw in a string, are written escaped (``\\u2028``): a reader that splits lines on Unicode line
breaks (Python's ``str.splitlines``, JavaScript) still sees one record per line.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Callable
from typing import Any

from pythonjsonlogger.json import JsonEncoder
from pythonjsonlogger.json import JsonFormatter as _PjlJsonFormatter

from logconf import raycontext
from logconf.errors import current_source
from logconf.linebase import _LIVE, JSON_FIELDS, RANK_TEMPLATE, _RankMixin
from logconf.netfs import host_name
from logconf.redact import MASK, is_secret
from logconf.redact import redact as _redact

__all__ = ["ENCODERS", "JsonFormatter", "default_encoder"]

# Line breaks to Python's str.splitlines() and JavaScript's line terminators, which JSON lets a
# string hold raw: escaped, so that no reader splitting on them sees a record in two.
_BREAKS = (("\x85", "\\u0085"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def _escape_breaks(line: str) -> str:
    for char, escape in _BREAKS:
        line = line.replace(char, escape)  # JSON's own syntax is ASCII: these occur only inside strings
    return line


ENCODERS = ("msgspec", "json")
_CIRCULAR = "<circular>"
_COMPACT = (",", ":")  # msgspec's separators, and python-json-logger's MsgspecFormatter's
_NONFINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def _repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


def _key(key: object) -> str:
    """Return a dict key as JSON writes it; a key JSON cannot take becomes its repr."""
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool):
        return "null" if key is None else "true" if key else "false"
    if isinstance(key, (int, float)):
        value = _plain(key)
        if isinstance(value, str):
            return value
        return float.__repr__(value) if isinstance(value, float) else int.__repr__(value)
    return _repr(key)


@functools.lru_cache(maxsize=4096)
def _masked_key(key: str) -> str:
    # Keys repeat from record to record: each is masked once. A key rarely holds a secret, but
    # the text formatter masked whole lines, keys included, and so does this one.
    return _redact(key)


def _plain(number: int | float) -> int | float | str:
    """Return a number as JSON can hold it: a non-finite float as its name, a huge int as a marker."""
    if isinstance(number, float):
        if math.isfinite(number):
            return float(number)
        return "NaN" if number != number else _NONFINITE[number]
    try:
        int.__repr__(number)  # more digits than sys.get_int_max_str_digits() cannot be written
    except ValueError:
        return f"<int of {number.bit_length()} bits>"
    return number if type(number) is int else int(number)  # an IntEnum or other subclass as json writes it: its value


@functools.lru_cache(maxsize=1)
def default_encoder() -> str:
    """Return the encoder a JsonFormatter uses unless told: msgspec where it imports, else json."""
    try:
        import msgspec.json  # noqa: F401
        import pythonjsonlogger.msgspec  # noqa: F401
    except ImportError:
        return "json"
    return "msgspec"


class _Converter:
    """Turn one value into plain JSON types, masking secrets when asked; one per record."""

    def __init__(self, default: Any, mask: bool) -> None:
        self.default = default
        self.mask = mask
        self.path: set[int] = set()  # the containers being converted, to spot one that holds itself

    def value(self, value: object) -> object:
        """Convert ``value``; a failure costs only the value, written as its repr or a marker."""
        try:
            return self.convert(value)
        except RecursionError:
            return "<nested too deeply>"
        except Exception:
            text = _repr(value)
            return _redact(text) if self.mask else text
        finally:
            self.path.clear()

    def convert(self, value: object) -> object:
        if isinstance(value, str):
            # str.__str__ makes a subclass's value a plain str, as json writes it (msgspec would call the hook).
            return _redact(value) if self.mask else str.__str__(value)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return _plain(value)
        if isinstance(value, (dict, list, tuple)):
            if id(value) in self.path:
                return _CIRCULAR
            self.path.add(id(value))
            try:
                if isinstance(value, dict):
                    out = {}
                    for key, item in value.items():
                        name = _masked_key(_key(key)) if self.mask else _key(key)
                        out[name] = MASK if self.mask and is_secret(name, item) else self.convert(item)
                    return out
                items = [self.convert(item) for item in value]
                if self.mask:
                    # Headers as pairs: ("authorization", "..."), or [["x-api-key", "..."], ...] in a list.
                    if isinstance(value, tuple):
                        _mask_pair(value, items)
                    for item, converted in zip(value, items, strict=True):
                        if type(item) is list and type(converted) is list:
                            _mask_pair(item, converted)
                return items
            finally:
                self.path.discard(id(value))
        return self.convert(self.default(value))  # what python-json-logger writes: ISO dates, str()...


def _mask_pair(pair: list[Any] | tuple[Any, ...], converted: list[Any]) -> None:
    """Mask the second item of a two-item ``pair`` whose first names a credential."""
    if len(pair) != 2:
        return
    name = pair[0]
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    if isinstance(name, str) and is_secret(name, pair[1]):
        converted[1] = MASK


class JsonFormatter(_RankMixin, _PjlJsonFormatter):  # type: ignore[misc]
    """One JSON object per line: time, level, process_name, pid, logger, message, rank,
    ``exc_info`` and ``stack_info`` when present, and any ``extra`` fields (see the module docstring)."""

    def __init__(self, rank: str = RANK_TEMPLATE, redact: bool = True, encoder: str | None = None) -> None:
        self.rank_template = rank
        self.redact = redact
        # python-json-logger's own serializer set to the separators this formatter writes, so that its
        # generic path (jsonify_log_record) and this one give the same line.
        compact = functools.partial(json.dumps, separators=_COMPACT)
        super().__init__(list(JSON_FIELDS), rename_fields=dict(JSON_FIELDS), json_ensure_ascii=False, json_serializer=compact)
        self._skip = frozenset(JSON_FIELDS) | frozenset(self.reserved_attrs)
        self._plain_size = len(frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"})
        strict = JsonEncoder(ensure_ascii=False, allow_nan=False, separators=_COMPACT)
        self._strict = strict.encode  # what json.dumps(cls=JsonEncoder) builds per call, strict
        self._default = strict.default
        self.encoder = encoder or default_encoder()
        if self.encoder == "msgspec":
            import msgspec.json
            from pythonjsonlogger.msgspec import msgspec_default

            # What python-json-logger's MsgspecFormatter builds; its jsonify_log_record is self._fast.
            self._encoder = msgspec.json.Encoder(enc_hook=msgspec_default)
            self._encode: Callable[[Any], str] = self._fast
        elif self.encoder == "json":
            self._encode = self._strict
        else:
            raise ValueError(f"unknown JSON encoder {self.encoder!r}: use one of {', '.join(ENCODERS)}")
        self.refresh()
        _LIVE.add(self)

    def refresh(self) -> None:
        """Re-resolve the rank, the Ray actor and the context fields (at build, and at ``set_rank``)."""
        super().refresh()
        self._context = {"host": host_name(file=current_source()), **raycontext.context()}
        self._task_id = raycontext.task_id_reader()
        # A Ray worker configured before it connected (LOGCONF_AUTO at interpreter start) learns
        # Ray's ids at its first record once connected.
        self._ray_pending = "job_id" not in self._context and raycontext.is_ray_worker()

    def _late_ray(self) -> None:
        found = raycontext.context()
        if found:
            self._ray_pending = False
            self._context = {"host": self._context["host"], **found}
            self._task_id = raycontext.task_id_reader()
            self.actor = raycontext.actor_class()

    def _fast(self, data: dict[str, Any]) -> str:
        return self._encoder.encode(data).decode("utf-8")

    def format(self, record: logging.LogRecord) -> str:
        # python-json-logger's format and add_fields for exactly these fields, in the same order,
        # with the record's own fields kept and values masked before encoding.
        msg, redact = record.msg, self.redact
        record.message = "" if isinstance(msg, dict) else record.getMessage()
        record.asctime = self.formatTime(record)
        if self._ray_pending:
            self._late_ray()
        process_name = record.processName
        if self.actor is not None and process_name == "MainProcess":
            process_name = self.actor  # a Ray actor's main process: its class, as in text lines
        data: dict[str, Any] = {
            "time": record.asctime,
            "level": record.levelname,
            "process_name": process_name,
            "pid": record.process,
            "logger": record.name,
            "message": _redact(record.message) if redact else record.message,
            "rank": self.rank,
            **self._context,
        }
        if self._task_id is not None:
            task_id = self._task_id()
            if task_id is not None:
                data["task_id"] = task_id
        # Tracebacks as one text each: this formatter never sets python-json-logger's *_as_array.
        exc = logging.Formatter.formatException(self, record.exc_info) if record.exc_info else record.exc_text
        if exc:
            data["exc_info"] = _redact(exc) if redact else exc
        if record.stack_info:
            stack = logging.Formatter.formatStack(self, record.stack_info)
            data["stack_info"] = _redact(stack) if redact else stack
        fields = record.__dict__
        # LogRecord.__init__ sets every standard attribute, so a record with no more attributes than a
        # plain one has no extra; only one with more needs the set test.
        if isinstance(msg, dict) or (len(fields) != self._plain_size and not self._skip.issuperset(fields)):
            self._add_extras(data, msg if isinstance(msg, dict) else {}, fields)
        try:
            line = self._encode(data)
        except Exception:
            line = self._fallback(data)
        if "\x85" in line or "\u2028" in line or "\u2029" in line:
            line = _escape_breaks(line)
        return line

    def _fallback(self, data: dict[str, Any]) -> str:
        if self._encode != self._strict:
            try:
                return self._strict(data)  # msgspec refuses lone surrogates; json writes them, the handler escapes them
            except Exception:
                pass
        # Left: a field of the record's own that is no string (a logger named by an object...): convert them all.
        converter = _Converter(self._default, self.redact)
        return self._strict({key: converter.value(value) for key, value in data.items()})

    def _add_extras(self, data: dict[str, Any], message_dict: dict[Any, Any], fields: dict[str, Any]) -> None:
        # Every value is made plain here, masked or not: msgspec would write NaN as null, and a
        # value JSON cannot hold must cost only itself.
        redact = self.redact
        converter = _Converter(self._default, redact)
        if "message" in message_dict:
            data["message"] = converter.value(message_dict["message"])
        skip = self._skip
        pairs = [(k, v) for k, v in message_dict.items() if k != "message"]
        pairs += [(k, v) for k, v in fields.items() if k not in skip and not (type(k) is str and k[:1] == "_")]
        for key, value in pairs:
            name = key if type(key) is str else _key(key)
            if redact:
                name = _masked_key(name)
            while name in data:  # the record's own fields, and names already written, are kept
                name = "extra_" + name
            kind = type(value)
            if redact and is_secret(name, value):
                value = MASK
            elif kind is str:
                if redact:
                    value = _redact(value)
            elif kind is float:
                value = _plain(value)
            elif not (kind is int or kind is bool or value is None):
                value = converter.value(value)  # containers, objects: converted, masked when asked
            data[name] = value
