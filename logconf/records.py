"""Read back the lines that logconf's formatters write, text or JSON."""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["TEXT_LINE", "parse_line"]

TEXT_LINE = re.compile(
    r"(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (?P<level>[A-Z]+) rank=(?P<rank>\S*) "
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
