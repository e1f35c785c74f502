"""Keep logconf in charge after a framework re-does its own logging set-up.

Training frameworks configure logging in every worker, after anything a user did: SkyRL's
``configure_ray_worker_logging()`` assigns ``logging.root.handlers = [its handler]``, and a
later ``dictConfig`` with a ``root`` section removes root's handlers one by one. Records would
then silently stop reaching logconf's files and console. Two things prevent that:

- :func:`own_root` puts ``logging.root`` under a subclass of its class whose ``handlers``
  attribute is a property: whatever list is assigned, logconf's own root handlers stay in it,
  and ``removeHandler`` leaves them in place. Only assignment and removal pay for this, never a
  record.
- :func:`follow_environment` re-reads the rank (and the Ray actor) from the environment and
  writes what was held for it. A framework's set-up is the moment its environment is final:
  SkyRL sets ``RANK`` in a worker's ``__init__`` right before it configures logging.

:func:`remember` keeps the state that ``apply()`` gave its loggers, so that an integration can
put it back when a framework's module changes it at import (SkyRL's ``skyrl.utils.log``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from logconf import handlers, linebase

__all__ = ["follow_environment", "own_root", "owned_root_handlers", "release_root", "remember", "restore_logger"]

_OWNED: list[logging.Handler] = []
_REMEMBERED: dict[str, tuple[list[logging.Handler], bool, int]] = {}
_LOCAL = threading.local()


def follow_environment() -> None:
    """Re-resolve this process's rank and Ray actor; move the rank files and write what was held."""
    if getattr(_LOCAL, "busy", False):
        return
    _LOCAL.busy = True
    try:
        handlers.switch_rank(linebase.refresh_all)
    except Exception as exc:  # a framework's set-up must go on even if logconf cannot follow it
        handlers.tell(f"logconf: cannot follow the new logging set-up: {exc}\n")
    finally:
        _LOCAL.busy = False


class _GuardedRoot(logging.RootLogger):
    """``logging.root`` while logconf owns some of its handlers."""

    @property
    def handlers(self) -> list[logging.Handler]:
        return self.__dict__["handlers"]

    @handlers.setter
    def handlers(self, value: list[logging.Handler]) -> None:
        missing = [h for h in _OWNED if h not in value]
        self.__dict__["handlers"] = [*value, *missing] if missing else value
        if missing:
            follow_environment()

    def removeHandler(self, hdlr: logging.Handler) -> None:
        if hdlr not in _OWNED:
            super().removeHandler(hdlr)


def own_root(owned: Iterable[logging.Handler]) -> None:
    """Keep ``owned`` (logconf's handlers on the root logger) there whatever replaces root's handlers."""
    _OWNED[:] = list(owned)
    root = logging.root
    if not _OWNED:
        release_root()
    elif type(root) is not _GuardedRoot and type(root) is logging.RootLogger:
        handlers_now = root.__dict__.get("handlers", [])
        root.__class__ = _GuardedRoot
        root.__dict__["handlers"] = handlers_now


def release_root() -> None:
    """Stop guarding the root logger (before logconf itself reconfigures it, and in tests)."""
    _OWNED.clear()
    if type(logging.root) is _GuardedRoot:
        logging.root.__class__ = logging.RootLogger  # type: ignore[assignment]


def owned_root_handlers() -> list[logging.Handler]:
    """Return the root handlers logconf keeps in place."""
    return list(_OWNED)


def remember(names: Iterable[str]) -> None:
    """Record the handlers, propagate flag and level that the loggers ``names`` have now."""
    _REMEMBERED.clear()
    for name in names:
        logger = logging.getLogger(name)
        _REMEMBERED[name] = (list(logger.handlers), logger.propagate, logger.level)


def restore_logger(name: str) -> bool:
    """Give logger ``name`` back what :func:`remember` recorded; return whether there was anything."""
    state: Any = _REMEMBERED.get(name)
    if state is None:
        return False
    logger = logging.getLogger(name)
    logger.handlers, logger.propagate = list(state[0]), state[1]
    logger.setLevel(state[2])
    return True
