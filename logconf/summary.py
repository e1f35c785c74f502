"""Summarise a run's log directory: one row per rank file, with the lines that sit in the wrong file.

``logconf summary DIR --json`` prints one JSON object whose shape is stable (``schema`` names
its version; keys are only ever added)::

    {"schema": "logconf.summary/1", "directory": "/abs/DIR", "ok": true,
     "totals": {"files", "parts", "lines", "bytes", "records", "foreign", "other_rank", "unparsable", "torn", "too_long",
                "disk_bytes", "removed_files", "removed_bytes"},
     "files": [{"file": "vllm_rank_0.log", "subsystem": "vllm", "format": "text", "rank": "0",
                "lines": 56, "bytes": 6241, "records": 50, "continuation_lines": 6,
                "first": "2026-11-26T09:09:28.259Z", "last": "...", "span_s": 31.9,
                "processes": {"EngineCore_DP0:5610": 30, ...}, "loggers": {"vllm.config.model": 4, ...},
                "levels": {"INFO": 48, "WARNING": 2}, "foreign": 0, "other_rank": 0,
                "unparsable": 0, "torn": 0, "too_long": 0, "too_long_lines": [], "host": null, "node": null,
                "parts": ["vllm_rank_0.log.20261126T091030.123Z.gz", "vllm_rank_0.log"], "disk_bytes": 4120,
                "too_long_places": [], "removed_files": 0, "removed_bytes": 0, "removed_disk_bytes": 0}, ...],
     "nodes": {"node-a": {<the totals' keys>}, ...},
     "ranks": {"vllm_rank_0.log": {"nodes": ["node-a", ...], <the totals' keys>}, ...}}

``foreign`` counts records whose logger belongs to the other subsystem, by its exact name or a
parent's (``skyrl_train``, ``skyrl``, ``harbor``, ``examples`` in a ``vllm_rank_*`` file;
``vllm``, ``uvicorn``, ``py.warnings`` in a ``skyrl_rank_*`` file);
``other_rank`` counts records whose ``rank`` differs from the file name's (``vllm_rank_0@node1.log``,
the per-host file that a network filesystem gets, is rank 0's: ``host`` is ``node1``, null otherwise); ``unparsable`` counts
lines that are neither records nor a text record's continuation (a traceback line); ``torn``
counts a last line with no newline, JSON lines that start with ``{`` but do not decode and text
lines that start with a record's time stamp but are not records (the head of a write cut short);
``too_long`` counts lines over LINE_LIMIT bytes (1 MiB), which are passed over and never held
whole, and ``too_long_lines`` gives the line numbers of the first 20 of them (``too_long_places``
names the file of each, as ``{"file", "line"}``: a rotated rank file numbers each file's lines).
``ok`` is false, and the command exits 1, when any of the five is non-zero.

With ``--top N`` each file row adds ``top``: its N most repeated messages (:mod:`logconf.repeats`),
``[{"logger", "level", "message" (masked), "example", "count", "first", "last"}, ...]``, with
``top_exact`` (false once messages were dropped to bound memory) and ``top_short_by`` (how many
any count may then be short by).

A rank file that was rotated is one row: ``parts`` lists its files in order (rotated ones
oldest first, compressed or not, then the live file), ``lines``, ``bytes`` and every count
cover them all (``bytes`` as written, decompressed; ``disk_bytes`` as stored). ``removed_*``
are what retention says it removed from the rank file in all (its latest ``logconf.rotation``
record): history missing before the set's first file. Not a problem: retention removes what it
was told to.

In a directory that ``logconf gather`` filled (one subdirectory per node), ``file`` is
``node/name``, ``node`` names the node, ``nodes`` totals each node and ``ranks`` totals each rank
file's name across the nodes that hold it; in a run's own directory ``node`` is null and
``nodes`` and ``ranks`` are empty.
"""

from __future__ import annotations

import collections
import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from logconf.logfiles import (
    LINE_LIMIT,
    RECORD,
    TOO_LONG,
    TORN,
    TRAINER_LOGGERS,
    VLLM_LOGGERS,
    Entry,
    RankSet,
    Tally,
    iter_entries,
    natural_key,
    node_of,
    rank_name,
    rank_sets,
    removal_of,
    subsystem_of,
)
from logconf.repeats import RepeatCounter

__all__ = [
    "PROBLEMS",
    "SCHEMA",
    "FileSummary",
    "by_node",
    "by_rank",
    "history_notes",
    "node_tables",
    "set_entries",
    "subsystem_of",
    "summarise",
    "summarise_file",
    "summarise_set",
    "summary_json",
    "summary_table",
    "too_long_notes",
    "top_table",
]

SCHEMA = "logconf.summary/1"
PROBLEMS = ("foreign", "other_rank", "unparsable", "torn", "too_long")  # any non-zero: not ok, exit 1
TOO_LONG_LINES = 20  # line numbers of too-long lines kept per file


def _under(name: str, roots: tuple[str, ...]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


def _rank_of(filename: str) -> str | None:
    parts = rank_name(filename)
    return parts.rank if parts else None


@dataclass
class FileSummary:
    file: str
    lines: int = 0
    bytes: int = 0
    records: int = 0
    processes: collections.Counter[str] = field(default_factory=collections.Counter)
    loggers: collections.Counter[str] = field(default_factory=collections.Counter)
    levels: collections.Counter[str] = field(default_factory=collections.Counter)
    foreign: int = 0
    unparsable: int = 0
    torn: int = 0
    too_long: int = 0
    too_long_lines: list[int] = field(default_factory=list)  # the first TOO_LONG_LINES
    other_rank: int = 0
    continuation_lines: int = 0
    first: str = ""
    last: str = ""
    parts: list[str] = field(default_factory=list)  # the set's files, oldest first (names as file is named)
    disk_bytes: int = 0
    too_long_places: list[dict[str, Any]] = field(default_factory=list)  # {"file", "line"}, as too_long_lines
    removed_files: int = 0
    removed_bytes: int = 0
    removed_disk_bytes: int = 0
    top_n: int = 0  # > 0: also count repeated messages, and show this many per file
    repeats: RepeatCounter | None = field(default=None, repr=False)
    _foreign_roots: tuple[str, ...] = field(default=(), init=False, repr=False)
    _rank: str | None = field(default=None, init=False, repr=False)
    _foreign_by_logger: dict[str, bool] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._foreign_roots = {"vllm": TRAINER_LOGGERS, "skyrl": VLLM_LOGGERS}.get(self.subsystem or "", ())
        self._rank = _rank_of(self.name)
        if self.top_n > 0 and self.repeats is None:
            self.repeats = RepeatCounter()

    def add(self, entry: Entry) -> None:
        """Count one entry of this file (of a rotated set, the part ``entry.file`` names), in file order."""
        self.lines += len(entry.lines)
        record = entry.record
        if entry.kind != RECORD or record is None:
            if entry.kind == TORN:
                self.torn += 1
            elif entry.kind == TOO_LONG:
                self.too_long += 1
                if len(self.too_long_lines) < TOO_LONG_LINES:
                    self.too_long_lines.append(entry.line_number)
                    self.too_long_places.append({"file": entry.file, "line": entry.line_number})
            else:
                self.unparsable += 1
            return
        self.records += 1
        self.continuation_lines += len(entry.lines) - 1
        self.processes[f"{record.get('process_name')}:{record.get('pid')}"] += 1
        logger, level = str(record["logger"]), str(record["level"])
        self.loggers[logger] += 1
        self.levels[level] += 1
        if entry.time:
            self.first = min(self.first, entry.time) if self.first else entry.time
            self.last = max(self.last, entry.time)
        foreign = self._foreign_by_logger.get(logger)
        if foreign is None:
            foreign = self._foreign_by_logger[logger] = _under(logger, self._foreign_roots)
        if foreign:
            self.foreign += 1
        if self._rank is not None and str(record.get("rank")) != self._rank:
            self.other_rank += 1
        if self.repeats is not None:
            self.repeats.add(str(record["message"]), logger, level, entry.time)
        removed = removal_of(record)
        if removed is not None and removed.files > self.removed_files:  # each says what was removed in all
            self.removed_files, self.removed_bytes, self.removed_disk_bytes = removed

    @property
    def name(self) -> str:
        """The file's own name, without its node."""
        return self.file.rpartition("/")[2]

    @property
    def node(self) -> str | None:
        """The node's subdirectory in a gathered directory (``logconf gather``), else None."""
        return node_of(self.file)

    @property
    def subsystem(self) -> str | None:
        return subsystem_of(self.name)

    @property
    def rank(self) -> str | None:
        return _rank_of(self.name)

    @property
    def host(self) -> str | None:
        """The host that wrote a per-host file (``vllm_rank_0@node1.log``); None for a plain rank file."""
        parts = rank_name(self.name)
        return parts.host if parts else None

    @property
    def problems(self) -> int:
        """Records or lines that should not be in this file: foreign, other rank, unparsable, torn, too long."""
        return self.foreign + self.other_rank + self.unparsable + self.torn + self.too_long

    @property
    def span_s(self) -> float:
        if not self.first or not self.last:
            return 0.0
        parse = datetime.datetime.fromisoformat
        return round((parse(self.last[:-1]) - parse(self.first[:-1])).total_seconds(), 3)

    def as_dict(self) -> dict[str, Any]:
        """The file's row as the ``--json`` output gives it (see the module docstring)."""
        row: dict[str, Any] = {
            "file": self.file,
            "subsystem": self.subsystem,
            "format": "json" if self.file.endswith(".jsonl") else "text",
            "rank": self.rank,
            "lines": self.lines,
            "bytes": self.bytes,
            "records": self.records,
            "continuation_lines": self.continuation_lines,
            "first": self.first or None,
            "last": self.last or None,
            "span_s": self.span_s,
            "processes": dict(sorted(self.processes.items())),
            "loggers": dict(sorted(self.loggers.items(), key=lambda kv: (-kv[1], kv[0]))),
            "levels": dict(sorted(self.levels.items())),
            "foreign": self.foreign,
            "other_rank": self.other_rank,
            "unparsable": self.unparsable,
            "torn": self.torn,
            "too_long": self.too_long,
            "too_long_lines": self.too_long_lines,
            "host": self.host,
            "node": self.node,
            "parts": self.parts,
            "disk_bytes": self.disk_bytes,
            "too_long_places": self.too_long_places,
            "removed_files": self.removed_files,
            "removed_bytes": self.removed_bytes,
            "removed_disk_bytes": self.removed_disk_bytes,
        }
        if self.repeats is not None:  # only with --top: the keys of a plain summary stay as they were
            row["top"] = [repeat.as_dict() for repeat in self.repeats.top(self.top_n)]
            row["top_exact"] = self.repeats.exact
            row["top_short_by"] = self.repeats.short_by
        return row


def summarise_file(path: str, label: str | None = None, *, top: int = 0) -> FileSummary:
    """Count one rank file's lines, records, processes, loggers, levels and misplaced or bad lines.

    ``label`` names the file in the summary (``node/file`` in a gathered directory); ``top`` > 0
    also finds its ``top`` most repeated messages (:mod:`logconf.repeats`).
    """
    return summarise_set(RankSet(os.path.basename(path), path), label, top=top)


def summarise_set(found: RankSet, label: str | None = None, *, top: int = 0) -> FileSummary:
    """Count a rank file and its rotated files as one file (see :func:`summarise_file`)."""
    summary = FileSummary(label or found.name, top_n=top)
    for entry in set_entries(found, summary):
        summary.add(entry)
    return summary


def set_entries(found: RankSet, summary: FileSummary, order: int = 0) -> Iterator[Entry]:
    """Yield the entries of a rank file's set as one file's, each named by its own file; count the
    files read, their bytes on disk and their bytes as written into ``summary`` (not its entries)."""
    tally, node = Tally(), node_of(summary.file)
    for path in found.paths:
        part = f"{node}/{os.path.basename(path)}" if node else os.path.basename(path)
        try:
            summary.disk_bytes += os.path.getsize(path)
        except FileNotFoundError:
            continue  # removed since it was listed (retention): its history is gone
        summary.parts.append(part)
        yield from iter_entries(path, order, part, tally=tally)
        summary.bytes = tally.bytes


def summarise(directory: str, *, top: int = 0) -> list[FileSummary]:
    """Summarise every rank file in ``directory`` in natural name order (rank 2 before rank 10).

    A rotated rank file is one summary over its files (see :func:`logconf.logfiles.rank_sets`).
    In a gathered directory the files are ordered by node, then name, and named ``node/file``.
    ``top`` > 0 also finds each file's most repeated messages. Files are read one at a time.
    """
    return [summarise_set(found, top=top) for found in rank_sets(directory)]


def _totals(summaries: list[FileSummary]) -> dict[str, int]:
    totals = {"files": len(summaries), "parts": sum(len(s.parts) for s in summaries)}
    for key in ("lines", "bytes", "records", *PROBLEMS, "disk_bytes", "removed_files", "removed_bytes"):
        totals[key] = sum(getattr(s, key) for s in summaries)
    return totals


def by_node(summaries: list[FileSummary]) -> dict[str, dict[str, int]]:
    """Totals per node of a gathered directory, in the summaries' order ({} for a run's own directory)."""
    nodes: dict[str, list[FileSummary]] = {}
    for s in summaries:
        if s.node is not None:
            nodes.setdefault(s.node, []).append(s)
    return {node: _totals(group) for node, group in nodes.items()}


def by_rank(summaries: list[FileSummary]) -> dict[str, dict[str, Any]]:
    """Totals per rank file name across nodes (``vllm_rank_0.log``: which nodes hold it, and its counts)."""
    ranks: dict[str, list[FileSummary]] = {}
    for s in summaries:
        ranks.setdefault(s.name, []).append(s)
    rows: dict[str, dict[str, Any]] = {}
    for name, group in sorted(ranks.items(), key=lambda kv: natural_key(kv[0])):
        rows[name] = {"nodes": [s.node for s in group if s.node is not None]}
        rows[name].update(_totals(group))
    return rows


def summary_json(directory: str, summaries: list[FileSummary]) -> dict[str, Any]:
    """Return the ``--json`` document for ``summaries`` (see the module docstring)."""
    gathered = any(s.node is not None for s in summaries)
    return {
        "schema": SCHEMA,
        "directory": os.path.abspath(directory),
        "ok": not any(s.problems for s in summaries),
        "totals": _totals(summaries),
        "files": [s.as_dict() for s in summaries],
        "nodes": by_node(summaries),
        "ranks": by_rank(summaries) if gathered else {},
    }


def _top(counter: collections.Counter[str], n: int) -> str:
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{k} {v}" for k, v in ranked[:n])
    return text + (f", +{len(ranked) - n} more" if len(ranked) > n else "")


def summary_table(summaries: list[FileSummary]) -> str:
    """Render the summaries as a Markdown table."""
    rows = [
        "| file | lines | bytes | span | processes | top loggers | levels | foreign | other rank | unparsable | torn "
        "| too long |",
        "|---|---:|---:|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        span = f"{s.first} +{s.span_s:g}s" if s.first else "-"
        name = s.file if len(s.parts) <= 1 else f"{s.file} (+{len(s.parts) - 1} rotated)"
        processes = ", ".join(f"{k} ({v})" for k, v in sorted(s.processes.items()))
        levels = ", ".join(f"{k} {v}" for k, v in sorted(s.levels.items()))
        rows.append(
            f"| {name} | {s.lines} | {s.bytes} | {span} | {processes} | {_top(s.loggers, 3)} | {levels} "
            f"| {s.foreign} | {s.other_rank} | {s.unparsable} | {s.torn} | {s.too_long} |"
        )
    return "\n".join(rows)


def node_tables(summaries: list[FileSummary]) -> str:
    """Per node and per rank file across nodes, as two Markdown tables ("" for a run's own directory)."""
    nodes = by_node(summaries)
    if not nodes:
        return ""
    problems = " | ".join(k.replace("_", " ") for k in PROBLEMS)
    rows = [f"| node | files | records | lines | bytes | {problems} |", "|---|" + "---:|" * (4 + len(PROBLEMS))]
    for node, t in nodes.items():
        counts = " | ".join(str(t[k]) for k in PROBLEMS)
        rows.append(f"| {node} | {t['files']} | {t['records']} | {t['lines']} | {t['bytes']} | {counts} |")
    rows += ["", "| rank file | nodes | records | lines | bytes |", "|---|---|---:|---:|---:|"]
    for name, r in by_rank(summaries).items():
        rows.append(f"| {name} | {', '.join(r['nodes'])} | {r['records']} | {r['lines']} | {r['bytes']} |")
    return "\n".join(rows)


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def top_table(summaries: list[FileSummary]) -> str:
    """Each file's most repeated messages (``--top``) as a Markdown table ("" when none was counted)."""
    rows = []
    for s in summaries:
        if s.repeats is None:
            continue
        note = "" if s.repeats.exact else f" (counts may be short by up to {s.repeats.short_by})"
        for r in s.repeats.top(s.top_n):
            rows.append(f"| {s.file}{note} | {r.count} | {r.first} | {r.last} | {r.level} | {r.logger} | {_cell(r.message)} |")
    if not rows:
        return ""
    head = [
        "most repeated messages (numbers, ids and addresses masked as <n>, <id>, <addr>):",
        "",
        "| file | count | first | last | level | logger | message |",
        "|---|---:|---|---|---|---|---|",
    ]
    return "\n".join(head + rows)


def history_notes(summaries: list[FileSummary]) -> list[str]:
    """One line per rank file whose oldest rotated files retention removed: the history missing at its start."""
    notes = []
    for s in summaries:
        if s.removed_files:
            files = "file" if s.removed_files == 1 else "files"
            notes.append(
                f"{s.file}: history missing before {s.first or 'its first record'}: retention removed "
                f"{s.removed_files} rotated {files} ({s.removed_bytes} bytes of log, {s.removed_disk_bytes} on disk)"
            )
    return notes


def too_long_notes(summaries: list[FileSummary]) -> list[str]:
    """One line per file with lines over the limit: ``FILE: lines 3, 9 are over 1048576 bytes (not read)``."""
    notes = []
    for s in summaries:
        if s.too_long:
            if len(s.parts) > 1:  # a rotated rank file: each line number with its file
                at = ", ".join(f"{p['file']}:{p['line']}" for p in s.too_long_places)
            else:
                at = ", ".join(map(str, s.too_long_lines))
            if s.too_long > len(s.too_long_lines):
                at += f", ... ({s.too_long} in all)"
            what = f"line {at} is" if s.too_long == 1 else f"lines {at} are"
            notes.append(f"{s.file}: {what} over {LINE_LIMIT} bytes (not read)")
    return notes
