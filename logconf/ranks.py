"""Tell this process its rank: every logconf handler, formatter and writer moves to that rank's files."""

from __future__ import annotations

import os

from logconf import handlers
from logconf.errors import ConfigError
from logconf.linebase import refresh_all, resolve_rank

__all__ = ["set_rank"]


def set_rank(rank: int | str) -> None:
    """Move this process's logconf handlers to ``rank``'s files; children started later inherit it."""
    value = str(rank)
    if value == "":
        raise ConfigError("set_rank()", "rank", rank, "is empty", "pass a rank such as 0")
    resolve_rank("${LOGCONF_RANK}", file="set_rank()", environ={"LOGCONF_RANK": value})
    os.environ["LOGCONF_RANK"] = value
    handlers.switch_rank(refresh_all)  # formatters and files together: no record of one rank in another's file
