"""Keep logconf's loggers writing to their files after a framework re-configures logging.

A framework that sets up logging after logconf (vLLM >= 0.31 at engine creation, uvicorn at
server start, a library's own ``dictConfig`` or ``fileConfig``) would otherwise cut logconf's
loggers off: the call disables every existing logger it does not name
(``disable_existing_loggers`` is true by default), and one that names ``skyrl`` or ``vllm``
replaces their handlers. What logconf keeps, and nothing more:

- A logger that a logconf config gave logconf's handlers keeps them: a later configuration
  that names it adds its own handlers beside them, and its level and ``propagate`` stand.
- Loggers at or under those names that a later configuration disables in passing (it did not
  name them) are enabled again, as ``disable_existing_loggers=False`` would have left them;
  a logconf config enables the loggers under the names it configures, as ``dictConfig`` does
  for the names themselves. Every other logger stays as the call left it.
- ``disabled = True`` set on one of those loggers silences it everywhere but in logconf's
  rank files (:class:`KeptLogger`).

Both ``dictConfig`` and ``fileConfig`` start by closing every handler and end by handling the
loggers they did not name; logconf's part runs right after that last step, and costs no record
anything; nor does :class:`KeptLogger`, until a framework disables one of those loggers.
The root logger's handlers are :mod:`logconf.guard`'s.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["KeptLogger", "adopt", "kept", "release", "watch"]

_OURS: weakref.WeakSet[logging.Handler] = weakref.WeakSet()  # every handler logconf built
_FILES: weakref.WeakSet[logging.Handler] = weakref.WeakSet()  # those of them that write rank files
_KEPT: dict[str, list[logging.Handler]] = {}  # logger name -> the logconf handlers it keeps
_ORIGINALS: dict[str, Callable[..., Any]] = {}  # logging.config's functions, while wrapped
_state = {"built": False}  # a logconf handler was built since the current configuration began


def adopt(handler: logging.Handler, *, files: bool = False) -> None:
    """Count ``handler`` as logconf's (``files``: it writes rank files) and start watching reconfigurations."""
    _OURS.add(handler)
    if files:
        _FILES.add(handler)
    _state["built"] = True
    watch()


def watch() -> None:
    """Wrap the first and last steps that ``dictConfig`` and ``fileConfig`` share; idempotent."""
    if _ORIGINALS:
        return
    import logging.config as config  # here: only processes that build logconf's handlers pay for it

    # Looked up by name at each call, so a configuration already running when logconf's handlers
    # are built (vLLM loading logconf's JSON) ends through _after_loggers too.
    _ORIGINALS["_clearExistingHandlers"] = config._clearExistingHandlers  # type: ignore[attr-defined]
    _ORIGINALS["_handle_existing_loggers"] = config._handle_existing_loggers  # type: ignore[attr-defined]
    config._clearExistingHandlers = _starting  # type: ignore[attr-defined]
    config._handle_existing_loggers = _after_loggers  # type: ignore[attr-defined]


def _starting() -> None:
    _state["built"] = False
    _ORIGINALS["_clearExistingHandlers"]()


def _after_loggers(existing: list[str], child_loggers: list[str], disable_existing: bool) -> None:
    ours, _state["built"] = _state["built"], False
    original = _ORIGINALS["_handle_existing_loggers"]
    loggers = logging.root.manager.loggerDict
    if ours:  # a logconf config: what it set up is what logconf keeps from now on
        original(existing, child_loggers, disable_existing)
        for name in child_loggers:  # dictConfig enables the names it configures; their children too
            logger = loggers.get(name)
            if isinstance(logger, logging.Logger):
                logger.disabled = False
        _record()
        return
    under = tuple(f"{name}." for name in _KEPT)
    named_children = set(child_loggers)
    enabled = [
        logger
        for name in existing
        if (name in _KEPT or name.startswith(under)) and name not in named_children
        for logger in (loggers.get(name),)
        if isinstance(logger, logging.Logger) and not logger.disabled
    ]
    original(existing, child_loggers, disable_existing)
    for logger in enabled:
        logger.disabled = False
    for name, handlers in _KEPT.items():
        logger = logging.getLogger(name)
        for handler in handlers:
            if handler not in logger.handlers:
                logger.addHandler(handler)


def _record() -> None:
    """Take the loggers that hold logconf's handlers now as the ones to keep."""
    _KEPT.clear()
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger):
            continue
        ours = [h for h in logger.handlers if h in _OURS]
        if ours:
            _KEPT[name] = ours
            if type(logger) is logging.Logger and any(h in _FILES for h in ours):
                object.__setattr__(logger, "__class__", _SilencedLogger if logger.disabled else KeptLogger)
        elif isinstance(logger, KeptLogger):
            object.__setattr__(logger, "__class__", logging.Logger)


def kept() -> dict[str, list[logging.Handler]]:
    """Return the loggers whose logconf handlers are kept, by name."""
    return {name: list(handlers) for name, handlers in _KEPT.items()}


class KeptLogger(logging.Logger):
    """A logger that logconf configured: ``disabled = True`` silences it everywhere but in logconf's rank files.

    Only setting an attribute pays (``disabled`` switches the class); reading one, and every
    record while the logger is enabled, runs the stdlib's own code.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name == "disabled":
            object.__setattr__(self, "__class__", _SilencedLogger if value else KeptLogger)


class _SilencedLogger(KeptLogger):
    """A :class:`KeptLogger` while ``disabled`` is true."""

    def isEnabledFor(self, level: int) -> bool:
        return self.manager.disable < level and level >= self.getEffectiveLevel()

    def handle(self, record: logging.LogRecord) -> None:
        if not self.filter(record):
            return
        logger: logging.Logger | None = self
        while logger is not None:
            for handler in logger.handlers:
                if handler in _FILES and record.levelno >= handler.level:
                    handler.handle(record)
            logger = logger.parent if logger.propagate else None


def release() -> None:
    """Stop keeping: give ``logging.config`` its own functions and the kept loggers their class back (tests)."""
    if _ORIGINALS:
        import logging.config as config

        for name, original in _ORIGINALS.items():
            if getattr(config, name) in (_starting, _after_loggers):  # not over a wrapper added since
                setattr(config, name, original)
        _ORIGINALS.clear()
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, KeptLogger):
            object.__setattr__(logger, "__class__", logging.Logger)
    _KEPT.clear()
    _state["built"] = False
