"""A file's most repeated messages, compared with their numbers, ids and addresses masked.

``logconf summary --top N`` counts, per rank file, each logger's messages with every number,
hex address, UUID and long hex id replaced (``step 12 took 3.1 s`` and ``step 13 took 2.9 s``
are one message, ``step <n> took <n>.<n> s``), with the first and last time each was logged, so
that noise is visible and can be turned down per logger while every record stays in the file.

Memory is bounded: at most DISTINCT_LIMIT masked messages are counted per file. When a file has
more, the messages seen least often are dropped to make room (those seen once first); one of
them that comes back starts again from 1, so its count may then be short. ``short_by`` says by
how many at most (0: every count is exact).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["DISTINCT_LIMIT", "Repeat", "RepeatCounter", "mask"]

DISTINCT_LIMIT = 10_000
MESSAGE_CHARS = 300  # of a message's first line: what is compared and shown
_MASKS = (
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<id>"),
    (re.compile(r"0x[0-9a-fA-F]+"), "<addr>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{12,}\b"), "<id>"),
    (re.compile(r"\d+"), "<n>"),
)


def mask(text: str) -> str:
    """Return ``text`` with numbers, hex addresses, UUIDs and long hex ids replaced, so that repeats compare equal."""
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    return text


@dataclass(slots=True)
class Repeat:
    """One masked message of one logger: how often, when first and last, and its first text as logged."""

    logger: str
    message: str  # masked
    level: str  # of its first record
    example: str
    first: str
    last: str
    count: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "logger": self.logger,
            "level": self.level,
            "message": self.message,
            "example": self.example,
            "count": self.count,
            "first": self.first or None,
            "last": self.last or None,
        }


class RepeatCounter:
    """Count a file's messages by logger and masked text, in at most ``limit`` entries."""

    def __init__(self, limit: int = DISTINCT_LIMIT) -> None:
        self.limit = limit
        self.seen: dict[tuple[str, str], Repeat] = {}
        self.short_by = 0  # the most any count can be short after entries were dropped

    @property
    def exact(self) -> bool:
        """Whether every count is exact (no entry was ever dropped)."""
        return self.short_by == 0

    def add(self, message: str, logger: str, level: str, time: str) -> None:
        """Count one record."""
        text = message.partition("\n")[0][:MESSAGE_CHARS]
        key = (logger, mask(text))
        repeat = self.seen.get(key)
        if repeat is None:
            if len(self.seen) >= self.limit:
                self._make_room()
            self.seen[key] = Repeat(logger, key[1], level, text, time, time)
            return
        repeat.count += 1
        if time and (not repeat.first or time < repeat.first):
            repeat.first = time
        repeat.last = max(repeat.last, time)

    def _make_room(self) -> None:
        # Drop the entries seen at most `floor` times, raising the floor until a quarter of the
        # table is free: a message dropped here had at most `floor` records, which its count may miss.
        floor, target = 0, self.limit - self.limit // 4
        while len(self.seen) > target:
            floor += 1
            self.seen = {key: repeat for key, repeat in self.seen.items() if repeat.count > floor}
        self.short_by += floor

    def top(self, n: int) -> list[Repeat]:
        """Return the ``n`` most repeated messages, most first (ties: the earlier first)."""
        return sorted(self.seen.values(), key=lambda r: (-r.count, r.first, r.logger, r.message))[:n]
