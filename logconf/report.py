"""``logconf report DIR -o run.html``: a whole run on one self-contained page, every rank side by side.

Each rank file is read once, a record at a time, through :mod:`logconf.logfiles` (a run's
directory or the one ``logconf gather`` fills), a rotated one as one file (its rotated files
oldest first, then the live one: one row, one lane per process); :mod:`logconf.summary` counts it and
:mod:`logconf.timeline` lays it out (lanes per file and process, bins, marks, the first error,
gaps, kept records), and the ``.stdio.log`` copies are read for their raw errors
(:mod:`logconf.stdiocopies`). The page is the template ``report_page.html`` with that data
inline: its script, style and data need no network, so it opens from a laptop after ``scp``.

Memory holds, per lane, MAX_BINS bins and its kept records, never a whole file; the page holds
the bins and at most PAGE_TEXT_BYTES of kept text, whatever the run's size, and says what it
left out.
"""

from __future__ import annotations

import html
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from logconf.logfiles import RankSet, file_label, rank_sets, stdio_names
from logconf.stdiocopies import STDIO_KEPT, StdioCopy, read_stdio
from logconf.summary import PROBLEMS, FileSummary, set_entries
from logconf.timeline import CONTEXT, FIRST_KEPT, LAST_KEPT, MARKS, RECORD_LINES, Kept, Timeline

__all__ = ["PAGE_TEXT_BYTES", "QUIET_S", "SCHEMA", "Report", "build", "render", "write_report"]

SCHEMA = "logconf.report/1"
PAGE_TEXT_BYTES = 3 << 20  # kept records' text in the page, at most
QUIET_S = 60.0
_PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "report_page.html")
_DATA_SLOT = "/*LOGCONF-REPORT-DATA*/"


@dataclass
class Report:
    """What the page shows, gathered from one reading of the run (see the module docstring)."""

    directory: str
    quiet_s: float = QUIET_S
    summaries: list[FileSummary] = field(default_factory=list)
    stdio: list[StdioCopy] = field(default_factory=list)
    timeline: Timeline = field(init=False)

    def __post_init__(self) -> None:
        self.timeline = Timeline(self.quiet_s)

    def read_set(self, found: RankSet, order: int) -> None:
        """Read one rank file, its rotated files first, into its summary row and the timeline."""
        summary = FileSummary(found.name)
        self.summaries.append(summary)
        self.timeline.read(set_entries(found, summary, order), found.name, order, summary.add)

    def read_stdio(self, path: str) -> None:
        copy = StdioCopy(f"stdio-{len(self.stdio)}", file_label(path, self.directory))
        read_stdio(path, copy)
        self.stdio.append(copy)

    def page_data(self) -> dict[str, Any]:
        """The page's data: the summary, the grid, lanes, kept records and what was left out."""
        timeline, grid = self.timeline, self.timeline.grid
        kept, left_out = self._choose_kept()
        totals = {key: sum(getattr(s, key) for s in self.summaries) for key in ("lines", "bytes", "records", *PROBLEMS)}
        first = min((s.first for s in self.summaries if s.first), default="")
        last = max((s.last for s in self.summaries if s.last), default="")
        levels: dict[str, int] = {}
        for s in self.summaries:
            for level, count in s.levels.items():
                levels[level] = levels.get(level, 0) + count
        first_error = timeline.first_error
        return {
            "schema": SCHEMA,
            "directory": os.path.abspath(self.directory),
            "made": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "summary": {
                "files": len(self.summaries),
                **totals,
                "first": first or None,
                "last": last or None,
                "span_s": FileSummary("x", first=first, last=last).span_s,
                "levels": dict(sorted(levels.items())),
                "marks": {mark: timeline.marked[mark] for mark in MARKS},
                "processes": len(timeline.lanes),
                "nodes": sorted({s.node for s in self.summaries if s.node is not None}),
                "stdio_files": len(self.stdio),
            },
            "grid": {"origin": grid.origin, "width": grid.width, "bins": grid.hi - grid.lo + 1, "start": grid.start(grid.lo)},
            "quiet_s": self.quiet_s,
            "lanes": [lane.as_dict(grid, timeline.gaps(lane)) for lane in timeline.lanes],
            "stdio": [copy.as_dict() for copy in self.stdio],
            "kept": [k.as_dict() for k in kept],
            "first_error": first_error.ident if first_error is not None and first_error.ident else None,
            "left_out": left_out,
        }

    def _choose_kept(self) -> tuple[list[Kept], list[str]]:
        """Pick the kept records the page holds, the most telling first, within PAGE_TEXT_BYTES; say what is left out."""
        candidates = self.timeline.candidates()
        chosen: list[Kept] = []
        used = 0
        for _, kept in candidates:
            if used + kept.size > PAGE_TEXT_BYTES and chosen:
                break
            chosen.append(kept)
            used += kept.size
        chosen.sort(key=lambda k: (k.ms if k.ms is not None else -1, k.lane.ident, k.line))
        for number, kept in enumerate(chosen):
            kept.ident = f"r{number}"
        notes = []
        marked, dropped = sum(self.timeline.marked.values()), len(candidates) - len(chosen)
        if marked:
            notes.append(
                f"{len(chosen)} of the {marked:,} WARNING, ERROR and CRITICAL records are kept in this page, each with "
                f"the {CONTEXT} entries before and after it in its file: per process and level the first {FIRST_KEPT} "
                f"and the last {LAST_KEPT}, and each file's earliest error"
                + (f"; {dropped} more were left out to keep the page small" if dropped else "")
                + "."
            )
        notes.append(
            "Records below WARNING are counted in the time bins only. `logconf merge` prints any stretch whole "
            "(a click on a bin shows the command)."
        )
        cut = sum(1 for k in chosen if k.left_out)
        if cut:
            notes.append(f"{cut} kept records were longer than {RECORD_LINES} lines: their first {RECORD_LINES} are shown.")
        kept_raw, raw = sum(len(c.kept) for c in self.stdio), sum(c.errors for c in self.stdio)
        if raw > kept_raw:
            notes.append(f"{kept_raw} of the {raw} raw errors in the .stdio.log copies are kept, the first {STDIO_KEPT} in each.")
        return chosen, notes


def build(directory: str, *, quiet_s: float = QUIET_S) -> Report:
    """Read every rank file and ``.stdio.log`` copy of ``directory`` (or one rank file) into a Report."""
    report = Report(directory, quiet_s=quiet_s)
    for order, found in enumerate(rank_sets(directory)):
        report.read_set(found, order)
    if os.path.isdir(directory):
        for name in stdio_names(directory):
            report.read_stdio(os.path.join(directory, name))
    return report


def render(data: dict[str, Any]) -> str:
    """Return the page: the HTML template with ``data`` inline (``</`` escaped, so no text can end the script)."""
    with open(_PAGE, encoding="utf-8") as file:
        page = file.read()
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/").replace("<!--", "<\\!--")
    title = html.escape(f"logconf report: {data['directory']}")
    return page.replace("<title>logconf report</title>", f"<title>{title}</title>", 1).replace(_DATA_SLOT, text, 1)


def write_report(directory: str, out: str, *, quiet_s: float = QUIET_S) -> dict[str, Any]:
    """Build the page for ``directory`` and write it to ``out``; return its data."""
    data = build(directory, quiet_s=quiet_s).page_data()
    page = render(data)
    tmp = f"{out}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as file:
        file.write(page)
    os.replace(tmp, out)
    return data
