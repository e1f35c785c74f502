"""Forward Loguru's records into stdlib ``logging``, so the trainer's YAML decides where they go.

:func:`logconf.apply` calls :func:`install` when Loguru is already imported in the process;
logconf never imports Loguru itself and does not depend on it. Each Loguru record becomes a
stdlib record on the logger named after the emitting module (``record["name"]``), with the
same level number, file, line, function, exception and ``extra`` fields. Loguru's ``SUCCESS``
(25) and ``TRACE`` (5) keep their numbers and are registered as stdlib level names
:data:`SUCCESS` and :data:`TRACE`, so ``LOG_LEVEL=TRACE`` and ``%(levelname)s`` work.

logconf owns the console: Loguru sinks that write to the console (``sys.stderr``,
``sys.stdout``, or file descriptors 1 and 2) are removed when the bridge is installed, and
any added later is kept muted, so that a line is printed once, by logconf's console handler,
at ``LOGCONF_CONSOLE_LEVEL``. Sinks to files, queues or functions are left alone. A
framework's ``logger.remove()`` (SkyRL runs it in every worker) removes every sink but the
bridge, which is added back at once. A stdlib record that a framework's intercept handler
sends into Loguru (stdlib -> Loguru -> bridge) is not forwarded back: stdlib logging has
handled it already.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
from typing import Any

from logconf import guard

__all__ = ["SUCCESS", "TRACE", "install", "register_levels", "uninstall"]

TRACE = 5
SUCCESS = 25
_DEFAULT_SINK = 0  # the id Loguru gives the stderr sink it adds at import
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

_STDLIB_DEPTH = 12  # frames searched above a sink filter for stdlib's dispatch (an intercept handler is 5 up)
_CALL_HANDLERS = logging.Logger.callHandlers.__code__

_sink_id: int | None = None
_sink_logger: Any = None
_patched: dict[str, Any] = {}  # Loguru's own Logger.add and Logger.remove, while wrapped
_patched_class: Any = None
_local = threading.local()


def _loguru_logger() -> Any:
    module = sys.modules.get("loguru")
    return getattr(module, "logger", None) if module is not None else None


def register_levels() -> None:
    """Give levels 5 and 25 the stdlib names TRACE and SUCCESS unless they already have names."""
    for number, name in ((TRACE, "TRACE"), (SUCCESS, "SUCCESS")):
        if logging.getLevelName(number) == f"Level {number}" and not isinstance(logging.getLevelName(name), int):
            logging.addLevelName(number, name)


def _from_stdlib() -> bool:
    """Tell whether the Loguru record being written was made from a stdlib record by an intercept handler."""
    frame = sys._getframe(2)
    for _ in range(_STDLIB_DEPTH):
        if frame is None:
            return False
        if frame.f_code is _CALL_HANDLERS:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _enabled(record: dict[str, Any]) -> bool:
    # Loguru runs a sink's filter before it takes the sink's lock: a record that comes back
    # into Loguru while this sink forwards one (through an intercept handler on root) stops here.
    if getattr(_local, "busy", False) or _from_stdlib():
        return False  # stdlib logging sent it into Loguru: its own handlers have it already
    return logging.getLogger(record["name"] or "loguru").isEnabledFor(record["level"].no)


def _forward(message: Any) -> None:
    _local.busy = True
    try:
        record = message.record
        logger = logging.getLogger(record["name"] or "loguru")
        exception = record["exception"]
        exc_info = (exception.type, exception.value, exception.traceback) if exception else None
        extra = {(k if k not in _RESERVED else f"extra_{k}"): v for k, v in record["extra"].items()}
        out = logger.makeRecord(
            logger.name,
            record["level"].no,
            record["file"].path,
            record["line"],
            record["message"],
            (),
            exc_info,
            record["function"],
            extra,
        )
        created = record["time"].timestamp()
        out.created, out.msecs = created, (created - int(created)) * 1000
        logger.handle(out)
    finally:
        _local.busy = False


def _console(sink: Any) -> bool:
    """Tell whether a Loguru sink writes to the console (stderr or stdout, as stream or fd)."""
    if isinstance(sink, int):
        return sink in (1, 2)
    if sink in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__):
        return True
    try:
        return callable(getattr(sink, "write", None)) and sink.fileno() in (1, 2)
    except Exception:
        return False


def _never(record: Any) -> bool:
    return False


def _add_sink(loguru: Any) -> None:
    global _sink_id, _sink_logger
    add = _patched.get("add", type(loguru).add)
    _sink_id = add(loguru, _forward, level=0, format="{message}", filter=_enabled, catch=True)
    _sink_logger = loguru


def _guarded_add(original: Any) -> Any:
    @functools.wraps(original)
    def add(self: Any, sink: Any, *args: Any, **kwargs: Any) -> int:
        if _sink_id is not None and _console(sink):
            kwargs["filter"] = _never  # logconf's console handler prints it, once
        return original(self, sink, *args, **kwargs)

    return add


def _guarded_remove(original: Any) -> Any:
    @functools.wraps(original)
    def remove(self: Any, handler_id: int | None = None) -> None:
        original(self, handler_id)
        if _sink_id is not None and handler_id in (None, _sink_id) and self._core is _sink_logger._core:
            _add_sink(_sink_logger)  # a framework cleared Loguru's sinks: keep forwarding
            guard.follow_environment()  # and its environment (RANK) is what it set up for

    return remove


def _patch(loguru: Any) -> None:
    global _patched_class
    if _patched:
        return
    _patched_class = type(loguru)
    for name, wrap in (("add", _guarded_add), ("remove", _guarded_remove)):
        _patched[name] = getattr(_patched_class, name)
        setattr(_patched_class, name, wrap(_patched[name]))


def _remove_console_sinks(loguru: Any) -> None:
    handlers = getattr(getattr(loguru, "_core", None), "handlers", None)  # Loguru's registry: id -> handler
    if not isinstance(handlers, dict):
        return
    for handler_id, handler in list(handlers.items()):
        sink = getattr(getattr(handler, "_sink", None), "_stream", None)
        if handler_id == _DEFAULT_SINK or (sink is not None and _console(sink)):
            try:
                _patched["remove"](loguru, handler_id)
            except ValueError:
                pass


def install() -> bool:
    """Route Loguru to stdlib logging if Loguru is imported; calling it again changes nothing.

    Returns whether Loguru was found.
    """
    loguru = _loguru_logger()
    if loguru is None:
        return False
    register_levels()
    _patch(loguru)
    _remove_console_sinks(loguru)
    if _sink_id is not None and _sink_logger is loguru:
        try:
            _patched["remove"](loguru, _sink_id)
        except ValueError:
            pass
    _add_sink(loguru)
    return True


def uninstall() -> None:
    """Stop forwarding and give Loguru its own add and remove back (its default sink is not put back)."""
    global _sink_id, _sink_logger
    remove = _patched.get("remove")
    if _sink_id is not None and _sink_logger is not None and remove is not None:
        try:
            remove(_sink_logger, _sink_id)
        except ValueError:
            pass
    _sink_id = _sink_logger = None
    for name, original in _patched.items():
        setattr(_patched_class, name, original)
    _patched.clear()
