"""Read faulthandler's stack dumps, group the processes whose stacks are the same, and name the odd ones out.

A process is placed by its main thread's stack (the thread that runs a Ray actor's methods, a
trainer's loop, vLLM's busy loops), frames compared by file, line and function. Processes of
one kind (the process name less its number: ``EngineCore_DP0`` and ``EngineCore_DP1`` are both
``EngineCore``) are compared with each other: the largest group of a kind is where that kind
is, and every smaller group is an odd one out, said in one plain sentence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Frame",
    "Group",
    "ProcessStacks",
    "Thread",
    "group",
    "kind_of",
    "parse_dump",
    "plural",
    "rank_list",
    "sentences",
    "where",
]

_THREAD = re.compile(r"(Current thread|Thread) (0x[0-9a-fA-F]+)(?: \[(?P<name>[^\]]*)\])? \(most recent call first\):")
_FRAME = re.compile(r'  File "(?P<file>.*)", line (?P<line>\d+|\?\?\?) in (?P<function>.*)')
_STDLIB = re.compile(r"(?:^<frozen |/lib/python\d+\.\d+/(?!(?:site|dist)-packages/))")
_NUMBERED = re.compile(r"(?:[-_](?:DP)?\d+|\d+)$")
_WAITING = {"S": "wait", "D": "wait", "T": "wait", "t": "wait", "R": "run"}


@dataclass(frozen=True)
class Frame:
    """One frame of a dump: where, and in which function."""

    file: str
    line: int
    function: str

    def short(self) -> str:
        return f"`{self.function}` ({self.file.rsplit('/', 1)[-1]}:{self.line})"

    def as_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "function": self.function}


@dataclass
class Thread:
    """One thread of a dump, its frames innermost first."""

    ident: int
    current: bool
    frames: list[Frame] = field(default_factory=list)
    name: str | None = None


def parse_dump(text: str) -> list[Thread]:
    """Return the threads of one faulthandler dump (``all_threads=True``), in the order it wrote them."""
    threads: list[Thread] = []
    for line in text.splitlines():
        head = _THREAD.fullmatch(line)
        if head:
            threads.append(Thread(int(head.group(2), 16), head.group(1) == "Current thread", name=head.group("name")))
            continue
        frame = _FRAME.fullmatch(line)
        if frame and threads:
            number = frame.group("line")
            threads[-1].frames.append(Frame(frame.group("file"), int(number) if number.isdigit() else 0, frame.group("function")))
    return threads


def where(frames: Sequence[Frame]) -> Frame | None:
    """The innermost frame outside Python's standard library (whose ``wait``, ``select``, ``get`` say little)."""
    for frame in frames:
        if not _STDLIB.search(frame.file):
            return frame
    return frames[0] if frames else None


def kind_of(name: str) -> str:
    """The process name less its number: ``EngineCore_DP0`` -> ``EngineCore``, ``VllmWorker-3`` -> ``VllmWorker``."""
    return _NUMBERED.sub("", name) or name


@dataclass
class ProcessStacks:
    """One process's dump as the collector brought it back (``threads`` empty when none came)."""

    pid: int
    rank: str | None
    name: str
    node: str
    state: str  # the /proc state letter when it was signalled: S sleeping, R running, D uninterruptible, ...
    threads: list[Thread]
    main_thread: int | None = None
    problem: str | None = None

    @property
    def main(self) -> Thread | None:
        """The main thread (by the id it registered), else the thread the signal interrupted, else the last."""
        for thread in self.threads:
            if thread.ident == self.main_thread:
                return thread
        current = [t for t in self.threads if t.current]
        return current[0] if current else (self.threads[-1] if self.threads else None)

    def who(self) -> str:
        rank = f"rank {self.rank}'s " if self.rank is not None else ""
        return f"{rank}{self.name}[{self.pid}]"


@dataclass
class Group:
    """Processes of one kind whose main threads have the same stack."""

    kind: str
    stack: tuple[Frame, ...]
    members: list[ProcessStacks]
    odd: bool = False

    @property
    def at(self) -> Frame | None:
        return where(self.stack)

    @property
    def verb(self) -> str:
        verbs = {_WAITING.get(m.state, "be") for m in self.members}
        return verbs.pop() if len(verbs) == 1 else "be"

    def as_json(self) -> dict[str, Any]:
        at = self.at
        return {
            "kind": self.kind,
            "size": len(self.members),
            "odd": self.odd,
            "where": at.as_json() if at else None,
            "stack": [f.as_json() for f in self.stack],
            "processes": [{"node": m.node, "pid": m.pid, "rank": m.rank, "process_name": m.name} for m in self.members],
        }


def group(processes: Iterable[ProcessStacks]) -> list[Group]:
    """Group the dumped processes by kind and main-thread stack; mark the smaller groups of a kind as odd ones out.

    Within a kind the largest group comes first; a kind whose largest size is shared by two
    groups has no majority, and none of its groups is odd.
    """
    found: dict[tuple[str, tuple[Frame, ...]], Group] = {}
    for process in processes:
        main = process.main
        if main is None:
            continue
        stack = tuple(main.frames)
        key = (kind_of(process.name), stack)
        found.setdefault(key, Group(key[0], stack, [])).members.append(process)
    kinds: dict[str, list[Group]] = {}
    for item in found.values():
        kinds.setdefault(item.kind, []).append(item)
    ordered: list[Group] = []
    for kind in sorted(kinds, key=lambda k: (-sum(len(g.members) for g in kinds[k]), k)):
        groups = sorted(kinds[kind], key=lambda g: (-len(g.members), min(_rank_order(m.rank) for m in g.members)))
        majority = len(groups) > 1 and len(groups[0].members) > len(groups[1].members)
        for item in groups[1:]:
            item.odd = majority
        ordered.extend(groups)
    return ordered


def _rank_order(rank: str | None) -> tuple[int, int, str]:
    """Numeric ranks first, in number order, then named ones (``driver``), then none."""
    if rank is None:
        return (2, 0, "")
    return (0, int(rank), "") if rank.isdigit() else (1, 0, rank)


def rank_list(ranks: Iterable[str | None]) -> str:
    """``0 to 5``, ``0, 2, 7``, ``driver``: ranks as a sentence says them (numbers in runs of three or more)."""
    values = list(ranks)
    numbers = sorted({int(r) for r in values if r is not None and r.isdigit()})
    words = sorted({"?" if r is None else r for r in values if r is None or not r.isdigit()})
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    parts = [f"{run[0]} to {run[-1]}" if len(run) > 2 else ", ".join(map(str, run)) for run in runs]
    return ", ".join(parts + words)


def plural(number: int, noun: str) -> str:
    """``1 process``, ``2 processes``, ``3 dumps``: a count as a sentence says it."""
    return f"{number} {noun}{'' if number == 1 else 'es' if noun.endswith('s') else 's'}"


def _in(frame: Frame | None) -> str:
    return f"in {frame.short()}" if frame else "with no Python frame"


def _plural(verb: str) -> str:
    return "are" if verb == "be" else verb


def sentences(groups: Sequence[Group]) -> list[str]:
    """One plain sentence per group: where each kind is, then each odd one out and where the others are."""
    majority = {g.kind: g for g in groups if not g.odd}
    said = []
    for item in groups:
        verb, size = item.verb, len(item.members)
        if size == 1:
            subject, conjugated = item.members[0].who(), {"wait": "waits", "run": "runs", "be": "is"}[verb]
        else:
            subject, conjugated = f"{size} {item.kind} processes (ranks {rank_list(m.rank for m in item.members)})", _plural(verb)
        sentence = f"{subject} {conjugated} {_in(item.at)}"
        if item.odd:
            others = majority[item.kind]  # larger than this group, so two or more processes
            peers = f"{len(others.members)} other {item.kind} processes {_plural(others.verb)}"
            sentence = f"odd one out: {sentence}, while {peers} {_in(others.at)}"
        said.append(sentence)
    return said
