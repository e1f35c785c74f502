"""uvicorn: a server started with uvicorn's default logging config logs into the engine's rank file.

``uvicorn.Config(...)`` without ``log_config`` applies uvicorn's own dictConfig, which points
the ``uvicorn``, ``uvicorn.error`` and ``uvicorn.access`` loggers at stdout and stderr. In a
process where logconf's vLLM config is in force (the ``vllm`` logger has logconf's handlers),
these loggers are then routed as ``vllm_logging.json`` routes them: ``uvicorn`` onto the
``vllm`` logger's logconf handlers, ``uvicorn.error`` and ``uvicorn.access`` propagating to it.
An explicit ``log_config``, and ``access_log=False``, are left as the caller chose.
"""

from __future__ import annotations

import functools
import logging
from types import ModuleType
from typing import Any

from logconf.handlers import ConsoleHandler, RankFileHandler

__all__ = ["patch", "route"]

_WRAPPED = "__logconf_wrapped__"


def route() -> bool:
    """Route uvicorn's loggers to logconf's vLLM handlers; return whether this process has them."""
    ours: list[logging.Handler] = [
        h for h in logging.getLogger("vllm").handlers if isinstance(h, (RankFileHandler, ConsoleHandler))
    ]
    if not ours:
        return False
    top = logging.getLogger("uvicorn")
    top.handlers, top.propagate = ours, False
    for handler in ours:
        if isinstance(handler, RankFileHandler):
            handler.apply_levels(("uvicorn",))
    for name in ("uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if logger.handlers or logger.propagate:  # access_log=False leaves uvicorn.access with neither
            logger.handlers, logger.propagate = [], True
    return True


def patch(module: ModuleType) -> None:
    """Wrap ``uvicorn.config.Config.configure_logging`` so that its default config routes to logconf."""
    config = module.Config
    original = config.configure_logging
    if getattr(original, _WRAPPED, False):
        return

    @functools.wraps(original)
    def configure_logging(self: Any) -> None:
        original(self)
        if self.log_config is module.LOGGING_CONFIG:
            route()

    setattr(configure_logging, _WRAPPED, True)
    config.configure_logging = configure_logging
