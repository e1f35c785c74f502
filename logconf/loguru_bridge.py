"""Forward Loguru's records into stdlib ``logging``, so the trainer's YAML decides where they go.

:func:`logconf.apply` calls :func:`install` when Loguru is already imported in the process;
logconf never imports Loguru itself and does not depend on it. Each Loguru record becomes a
stdlib record on the logger named after the emitting module (``record["name"]``), with the
same level number, file, line, function, exception and ``extra`` fields. Loguru's ``SUCCESS``
(25) and ``TRACE`` (5) keep their numbers and are registered as stdlib level names
:data:`SUCCESS` and :data:`TRACE`, so ``LOG_LEVEL=TRACE`` and ``%(levelname)s`` work.
Loguru's default stderr sink (handler id 0) is removed so that no line is printed twice;
sinks the program added itself are left alone.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

__all__ = ["SUCCESS", "TRACE", "install", "register_levels", "uninstall"]

TRACE = 5
SUCCESS = 25
_DEFAULT_SINK = 0  # the id Loguru gives the stderr sink it adds at import
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

_sink_id: int | None = None
_sink_logger: Any = None
_local = threading.local()


def _loguru_logger() -> Any:
    module = sys.modules.get("loguru")
    return getattr(module, "logger", None) if module is not None else None


def register_levels() -> None:
    """Give levels 5 and 25 the stdlib names TRACE and SUCCESS unless they already have names."""
    for number, name in ((TRACE, "TRACE"), (SUCCESS, "SUCCESS")):
        if logging.getLevelName(number) == f"Level {number}" and not isinstance(logging.getLevelName(name), int):
            logging.addLevelName(number, name)


def _enabled(record: dict[str, Any]) -> bool:
    return logging.getLogger(record["name"] or "loguru").isEnabledFor(record["level"].no)


def _forward(message: Any) -> None:
    if getattr(_local, "busy", False):
        return  # a stdlib -> Loguru intercept handler sent it back: it is already on its way
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


def install() -> bool:
    """Route Loguru to stdlib logging if Loguru is imported; calling it again changes nothing.

    Returns whether Loguru was found.
    """
    global _sink_id, _sink_logger
    loguru = _loguru_logger()
    if loguru is None:
        return False
    register_levels()
    try:
        loguru.remove(_DEFAULT_SINK)
    except ValueError:
        pass  # already removed, by us or by the program
    if _sink_id is not None and _sink_logger is loguru:
        try:
            loguru.remove(_sink_id)
        except ValueError:
            pass
    _sink_id = loguru.add(_forward, level=0, format="{message}", filter=_enabled, catch=True)
    _sink_logger = loguru
    return True


def uninstall() -> None:
    """Stop forwarding (Loguru's default sink is not put back)."""
    global _sink_id, _sink_logger
    if _sink_id is not None and _sink_logger is not None:
        try:
            _sink_logger.remove(_sink_id)
        except ValueError:
            pass
    _sink_id = _sink_logger = None
