"""Benchmark `logconf report` on a generated multi-GB run: the page's size, and the build's time and peak memory.

    python bench/report_bench.py [--workdir DIR] [--size 2G]

``measure(workdir)`` returns a Markdown section; bench/run.py calls it. The input is the merge
benchmark's (bench/merge_bench.py): 8 rank files of real handler output, one second of records
repeated with later timestamps, every 50th record an ERROR with a traceback, 2 GB in all by
default (or ``LOGCONF_BENCH_REPORT_SIZE``, e.g. ``256M``). ``logconf report DIR -o PAGE`` runs
in a child whose peak RSS comes from ``wait4``, at 1/8 of the size and at the full size: the
page holds bins and a bounded set of records, so its size and the builder's memory stay flat
while the input grows eightfold. No limit is asserted: compare the rows of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile

import merge_bench

DEFAULT_SIZE = 2 * 1024**3
_DATA = re.compile(r'<script type="application/json" id="run-data">(.*?)</script>', re.S)


def _row(label: str, directory: str, page: str) -> str:
    size = sum(os.path.getsize(os.path.join(directory, name)) for name in os.listdir(directory))
    elapsed, peak = merge_bench._timed([sys.executable, "-m", "logconf", "report", directory, "-o", page])
    with open(page, encoding="utf-8") as file:
        text = file.read()
    match = _DATA.search(text)
    assert match, f"{page} holds no run data"
    data = json.loads(match.group(1))
    mib, records = size / 1024**2, data["summary"]["records"]
    marked = sum(data["summary"]["marks"].values())
    return (
        f"| {label} | {mib:,.0f} | {records:,} | {marked:,} | {elapsed:.1f} | {mib / elapsed:.1f} | {peak:.0f} "
        f"| {len(text.encode()) / 1024:,.0f} | {len(data['lanes'])} | {len(data['kept'])} |"
    )


def measure(workdir: str, size: int | None = None) -> str:
    """Generate inputs under ``workdir``, build the pages, delete the inputs; return a Markdown section."""
    if size is None:
        size = merge_bench.parse_size(os.environ.get("LOGCONF_BENCH_REPORT_SIZE", str(DEFAULT_SIZE)))
    root = tempfile.mkdtemp(prefix="report-bench-", dir=workdir)
    try:
        blocks = merge_bench._seed_blocks(os.path.join(root, "seed"))
        rows = []
        for label, part in (("logconf report, 1/8 size", size // 8), ("logconf report, full size", size)):
            directory = os.path.join(root, f"in-{part}")
            merge_bench.generate(directory, part, blocks)
            rows.append(_row(label, directory, os.path.join(root, f"page-{part}.html")))
            shutil.rmtree(directory)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return "\n".join(
        [
            "## 10. logconf report: page size and peak memory",
            "",
            f"The merge benchmark's input: {len(merge_bench.FILES)} rank files (6 vLLM text/JSON of 3 processes each, "
            "2 trainer), every 50th record an ERROR with a traceback. Peak RSS is the building process's (wait4); the "
            f"page is one self-contained HTML file. Python {sys.version.split()[0]}, {os.cpu_count()} CPUs.",
            "",
            "| run | input MiB | records | marked (WARNING+) | seconds | MiB/s | peak RSS MiB | page KiB | lanes "
            "| records kept |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            "Bound: the builder reads one file at a time, a record at a time (logconf.logfiles), and holds per lane at "
            "most 800 time bins and its kept records (the first 20 and last 5 per marked level, each with 3 entries of "
            "context); the page holds the bins and at most 3 MiB of kept text, whatever the input's size.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default=tempfile.gettempdir(), help="where the inputs are generated (deleted after)")
    parser.add_argument("--size", default=None, help="total input size, e.g. 2G (default) or 256M")
    args = parser.parse_args(argv)
    print(measure(args.workdir, merge_bench.parse_size(args.size) if args.size else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
