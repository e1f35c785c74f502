"""Summarise a run's log directory: one row per rank file, with lines that sit in the wrong file."""

from __future__ import annotations

import collections
import os
from dataclasses import dataclass, field

from logconf.records import parse_line

__all__ = ["FileSummary", "subsystem_of", "summarise", "summary_table"]

VLLM_LOGGERS = ("vllm", "uvicorn", "py.warnings")  # warnings in vLLM processes: logconf.capture
TRAINER_LOGGERS = ("skyrl_train", "skyrl", "harbor", "examples")


def _under(name: str, roots: tuple[str, ...]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


def subsystem_of(filename: str) -> str | None:
    """Return ``vllm`` or ``skyrl`` for a rank file's name, or None for other files."""
    for prefix in ("vllm", "skyrl"):
        if filename.startswith(prefix + "_rank_") and filename.endswith((".log", ".jsonl")) and ".stdio." not in filename:
            return prefix
    return None


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


def summarise_file(path: str) -> FileSummary:
    name = os.path.basename(path)
    subsystem = subsystem_of(name)
    foreign_roots = TRAINER_LOGGERS if subsystem == "vllm" else VLLM_LOGGERS
    summary = FileSummary(name, bytes=os.path.getsize(path))
    json_file = name.endswith(".jsonl")
    with open(path, encoding="utf-8", errors="replace") as file:
        for line in file:
            summary.lines += 1
            record = parse_line(line)
            if record is None:
                # A text record's traceback continues on following lines; JSON holds whole records.
                if json_file or summary.records == 0 or not line.endswith("\n"):
                    summary.unparsable += 1
                continue
            summary.records += 1
            summary.processes[f"{record.get('process_name')}:{record.get('pid')}"] += 1
            summary.loggers[record["logger"]] += 1
            summary.levels[record["level"]] += 1
            if _under(record["logger"], foreign_roots):
                summary.foreign += 1
    return summary


def summarise(directory: str) -> list[FileSummary]:
    """Summarise every rank file in ``directory``, in name order."""
    names = sorted(n for n in os.listdir(directory) if subsystem_of(n))
    return [summarise_file(os.path.join(directory, n)) for n in names]


def summary_table(summaries: list[FileSummary]) -> str:
    """Render the summaries as a Markdown table."""
    rows = ["| file | lines | bytes | processes | loggers | foreign lines |", "|---|---:|---:|---|---:|---:|"]
    for s in summaries:
        processes = ", ".join(sorted(p.rsplit(":", 1)[0] for p in s.processes))
        rows.append(f"| {s.file} | {s.lines} | {s.bytes} | {len(s.processes)} ({processes}) | {len(s.loggers)} | {s.foreign} |")
    return "\n".join(rows)
