"""Read back the lines that logconf's formatters write, text or JSON."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

__all__ = ["TEXT_LINE", "level_number", "parse_line"]

# A level's name as %(levelname)s writes it: a registered name, or "Level 15" for a number without one.
TEXT_LINE = re.compile(
    r"(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (?P<level>[A-Z]+|Level \d+) rank=(?P<rank>\S*) "
    r"(?P<process_name>.+?)\[(?P<pid>\d+)\] (?P<logger>\S+): (?P<message>.*)"
)


def parse_line(line: str) -> dict[str, Any] | None:
    """Return the fields of one record's first line, or None if it is not a logconf record.

    Text continuation lines (a traceback's) return None; JSON lines hold whole records.
    """
    line = line.rstrip("\n")
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except ValueError:
            return None
        if isinstance(record, dict) and {"time", "level", "logger", "message"} <= record.keys():
            return record
        return None
    match = TEXT_LINE.fullmatch(line)
    if match is None:
        return None
    record = match.groupdict()
    record["pid"] = int(record["pid"])
    return record


# Loguru's levels that stdlib has no name for; logconf.loguru_bridge registers them in the writing
# process, but a reader (merge, tail) is another process.
_LOGURU_LEVELS = {"TRACE": 5, "SUCCESS": 25}
_UNNAMED = re.compile(r"(?:Level )?(\d+)", re.IGNORECASE)


def level_number(name: str) -> int | None:
    """Return the number of a level as a record or ``--level`` names it, or None if unknown.

    Stdlib's names (any case), Loguru's ``TRACE`` (5) and ``SUCCESS`` (25), ``Level 15`` (how
    stdlib names a number it has no name for) and a bare number are known.
    """
    number = logging.getLevelName(name.upper())
    if isinstance(number, int):
        return number
    if name.upper() in _LOGURU_LEVELS:
        return _LOGURU_LEVELS[name.upper()]
    match = _UNNAMED.fullmatch(name)
    return int(match.group(1)) if match else None
