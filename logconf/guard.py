"""Keep logconf in charge after a framework re-does its own logging set-up.

Training frameworks configure logging in every worker, after anything a user did: SkyRL's
``configure_ray_worker_logging()`` assigns ``logging.root.handlers = [its handler]``, a later
``dictConfig``, ``fileConfig`` or ``basicConfig(force=True)`` removes root's handlers one by one,
and some code clears the list in place. Records would then silently stop reaching logconf's
console. Two things prevent that:

- :func:`own_root` puts ``logging.root`` under a subclass of its class whose ``handlers`` list
  keeps logconf's own root handlers: through assignment (``__setattr__``), ``removeHandler``,
  and every in-place removal (``clear()``, ``del handlers[:]``, slice assignment, ``remove``,
  ``pop``). Only those changes pay for this, never a record: reading the list is a plain
  attribute read. ``basicConfig(force=True)`` still sets up its own console (and level):
  logconf's stays beside it, and prints nothing that the other one prints
  (:class:`logconf.handlers.ConsoleHandler`).
- :func:`follow_environment` re-reads the rank (and the Ray actor) from the environment and
  writes what was held for it. A framework's set-up is the moment its environment is final:
  SkyRL sets ``RANK`` in a worker's ``__init__`` right before it configures logging.

Loggers other than root are :mod:`logconf.keep`'s. :func:`remember` keeps the state that
``apply()`` gave its loggers, so that an integration can put it back when a framework's module
changes it at import (SkyRL's ``skyrl.utils.log``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any, SupportsIndex

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


class _KeptHandlers(list[logging.Handler]):
    """``logging.root.handlers`` while logconf owns some of them: no removal takes those away."""

    def keep(self) -> None:
        missing = [h for h in _OWNED if h not in self]
        if missing:
            list.extend(self, missing)
            follow_environment()

    def clear(self) -> None:
        list.clear(self)
        self.keep()

    def __delitem__(self, index: Any) -> None:
        list.__delitem__(self, index)
        self.keep()

    def __setitem__(self, index: Any, value: Any) -> None:
        list.__setitem__(self, index, value)
        self.keep()

    def __imul__(self, count: SupportsIndex) -> _KeptHandlers:
        list.__imul__(self, count)
        self.keep()
        return self

    def remove(self, value: Any) -> None:
        if value not in _OWNED:
            list.remove(self, value)

    def pop(self, index: Any = -1) -> Any:
        value = list.pop(self, index)
        self.keep()
        return value


class _GuardedRoot(logging.RootLogger):
    """``logging.root`` while logconf owns some of its handlers."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "handlers":
            object.__setattr__(self, name, value)
            return
        kept = _KeptHandlers(value)
        object.__setattr__(self, name, kept)
        kept.keep()


def _basic_config(**kwargs: Any) -> None:
    """``logging.basicConfig`` while root is guarded: ``force=True`` sets up the caller's console beside logconf's."""
    original = _BASIC_CONFIG[0]
    if not kwargs.get("force") or not _OWNED:
        original(**kwargs)
        return
    # basicConfig adds its handler only to a root left empty: let it empty root, then keep logconf's.
    owned = list(_OWNED)
    _OWNED.clear()
    try:
        original(**kwargs)
    finally:
        _OWNED[:] = owned
        handlers = logging.root.__dict__.get("handlers")
        if isinstance(handlers, _KeptHandlers):
            handlers.keep()


_BASIC_CONFIG: list[Any] = []  # logging's own basicConfig, while wrapped


def own_root(owned: Iterable[logging.Handler]) -> None:
    """Keep ``owned`` (logconf's handlers on the root logger) there whatever replaces or empties root's handlers."""
    _OWNED[:] = list(owned)
    root = logging.root
    if not _OWNED:
        release_root()
        return
    if type(root) is logging.RootLogger:
        root.__class__ = _GuardedRoot
    if type(root) is _GuardedRoot:
        root.__dict__["handlers"] = _KeptHandlers(root.__dict__.get("handlers", []))
    if not _BASIC_CONFIG:
        _BASIC_CONFIG.append(logging.basicConfig)
        logging.basicConfig = _basic_config


def release_root() -> None:
    """Stop guarding the root logger (before logconf itself reconfigures it, and in tests)."""
    _OWNED.clear()
    root = logging.root
    if type(root) is _GuardedRoot:
        root.__class__ = logging.RootLogger  # type: ignore[assignment]
        root.__dict__["handlers"] = list(root.__dict__.get("handlers", []))
    if _BASIC_CONFIG:
        if logging.basicConfig is _basic_config:  # not over a wrapper added since
            logging.basicConfig = _BASIC_CONFIG[0]
        _BASIC_CONFIG.clear()


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
