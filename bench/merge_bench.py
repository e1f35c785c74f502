"""Benchmark `logconf merge` on a generated multi-GB run: throughput and peak resident memory.

    python bench/merge_bench.py [--workdir DIR] [--size 2G]

``measure(workdir)`` returns a Markdown section; bench/run.py calls it. The input is made of
real handler output: a child process writes one second of records per file (1,000 records,
every 50th an ERROR with a traceback) through the shipped configs, and that block is repeated
with each later second's timestamp until the files reach the size asked for (default 2 GB,
or ``LOGCONF_BENCH_MERGE_SIZE``, e.g. ``256M``). The merge runs as ``python -m logconf merge
DIR > /dev/null`` in a child whose peak RSS comes from ``wait4``; it runs at 1/8 of the size
and at the full size, so a flat peak shows the bound. For contrast, an in-memory sort of all
lines (what ``sorted(open(f))`` scripts do) runs at 1/16 of the size. No absolute limit is
asserted: compare the rows of one run.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SIZE = 2 * 1024**3
T0 = 1795683600  # 2026-11-26T09:00:00Z
SEED_STAMP = "2026-11-26T09:00:00."
RECORDS_PER_SECOND = 1000
# (file stem, format): 6 engine ranks mixing text and JSON, 2 trainer ranks.
FILES = [("vllm", r, "json" if r % 2 else "text") for r in range(6)] + [("skyrl", r, "text") for r in range(2)]

_SEED = r"""
import logging, os, sys
subsystem, rank, fmt, directory, t0, count = sys.argv[1:7]
os.environ.update(LOGCONF_DIR=directory, LOGCONF_RANK=rank, LOGCONF_FORMAT=fmt, LOGCONF_CONSOLE_LEVEL="CRITICAL")
if subsystem == "vllm":
    import json, logging.config, logconf
    with open(logconf.vllm_config_path(), encoding="utf-8") as file:
        logging.config.dictConfig(json.loads(file.read()))
    names = ["vllm.v1.engine.core", "vllm.v1.worker.cpu_worker", "vllm.entrypoints.llm", "vllm.v1.core.sched.scheduler"]
    processes = [("EngineActor", 4100), ("EngineCore_DP0", 4101), ("VllmWorker-0", 4102)]
else:
    import logconf
    logconf.apply()
    names = ["skyrl_train.trainer", "skyrl_train.weight_sync", "harbor.rollout"]
    processes = [("MainProcess", 4200)]
try:
    raise RuntimeError("generation step failed")
except RuntimeError:
    failure = sys.exc_info()
for i in range(int(count)):
    name = names[i % len(names)]
    process, pid = processes[i % len(processes)]
    error = i % 50 == 49
    record = logging.makeLogRecord({
        "name": name, "levelno": logging.ERROR if error else logging.INFO, "levelname": "ERROR" if error else "INFO",
        "msg": "step %d rank %s: generated %d tokens in %.3f s, kv cache usage %.1f%%",
        "args": (i, rank, 64 + i % 300, 0.01 * (i % 97), (i * 7) % 100 / 1.0),
        "created": int(t0) + i / 1000.0, "processName": process, "process": pid,
        "exc_info": failure if error else None,
    })
    record.msecs = float(i)
    logging.getLogger(name).handle(record)
"""

_NAIVE = r"""
import os, sys
lines = []
for name in sorted(os.listdir(sys.argv[1])):
    with open(os.path.join(sys.argv[1], name), encoding="utf-8") as file:
        lines.extend(file)
lines.sort()
sys.stdout.writelines(lines)
"""


def parse_size(text: str) -> int:
    """Return bytes for ``2G``, ``256M``, ``64K`` or a plain number."""
    text = text.strip().upper().removesuffix("B")
    for suffix, factor in (("K", 1024), ("M", 1024**2), ("G", 1024**3)):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(text)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _seed_blocks(seed_dir: str) -> dict[str, str]:
    """Write one second of records per file through the real handlers; return each file's text."""
    for subsystem, rank, fmt in FILES:
        args = [subsystem, str(rank), fmt, seed_dir, str(T0), str(RECORDS_PER_SECOND)]
        subprocess.run([sys.executable, "-c", _SEED, *args], check=True, cwd=REPO, env=_env())
    blocks = {}
    for name in os.listdir(seed_dir):
        with open(os.path.join(seed_dir, name), encoding="utf-8") as file:
            blocks[name] = file.read()
        assert blocks[name].count(SEED_STAMP) == RECORDS_PER_SECOND, name
    return blocks


def _stamp(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(T0 + second))


def generate(directory: str, size: int, blocks: dict[str, str]) -> tuple[int, int]:
    """Fill ``directory`` with rank files of about ``size`` bytes in all; return (bytes, records)."""
    os.makedirs(directory, exist_ok=True)
    per_file = size / len(blocks)
    total = records = 0
    for name, block in sorted(blocks.items()):
        seconds = max(1, math.ceil(per_file / len(block.encode("utf-8"))))
        with open(os.path.join(directory, name), "w", encoding="utf-8") as file:
            for second in range(seconds):
                file.write(block.replace(SEED_STAMP, _stamp(second)))
        records += seconds * RECORDS_PER_SECOND
        total += os.path.getsize(os.path.join(directory, name))
    return total, records


def _timed(command: list[str]) -> tuple[float, float]:
    """Run ``command`` with stdout to /dev/null; return (wall seconds, peak RSS in MiB) of that child."""
    elapsed, _, peak = timed_usage(command)
    return elapsed, peak


def timed_usage(command: list[str]) -> tuple[float, float, float]:
    """Run ``command`` with stdout to /dev/null; return its wall seconds, CPU seconds and peak RSS in MiB."""
    started = time.monotonic()
    with open(os.devnull, "wb") as sink:
        child = subprocess.Popen(command, cwd=REPO, env=_env(), stdout=sink)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.monotonic() - started
    if child.returncode != 0:
        raise RuntimeError(f"{command} exited {child.returncode}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # ru_maxrss is KiB on Linux


def _row(label: str, directory: str, size: int, records: int, command: list[str]) -> str:
    elapsed, peak = _timed(command)
    mib = size / 1024**2
    return f"| {label} | {mib:,.0f} | {records:,} | {elapsed:.1f} | {mib / elapsed:.1f} | {peak:.0f} |"


def measure(workdir: str, size: int | None = None) -> str:
    """Generate inputs under ``workdir``, time the merges, delete the inputs; return a Markdown section."""
    if size is None:
        size = parse_size(os.environ.get("LOGCONF_BENCH_MERGE_SIZE", str(DEFAULT_SIZE)))
    root = tempfile.mkdtemp(prefix="merge-bench-", dir=workdir)
    try:
        blocks = _seed_blocks(os.path.join(root, "seed"))
        rows = []
        merge = [sys.executable, "-m", "logconf", "merge"]
        for label, part in (("logconf merge, 1/8 size", size // 8), ("logconf merge, full size", size)):
            directory = os.path.join(root, f"in-{part}")
            written, records = generate(directory, part, blocks)
            rows.append(_row(label, directory, written, records, [*merge, directory]))
            shutil.rmtree(directory)
        directory = os.path.join(root, "naive")
        written, records = generate(directory, size // 16, blocks)
        rows.append(
            _row("in-memory sort of all lines, 1/16 size", directory, written, records, [sys.executable, "-c", _NAIVE, directory])
        )
        shutil.rmtree(directory)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return "\n".join(
        [
            "## logconf merge: throughput and peak memory",
            "",
            f"{len(FILES)} rank files (6 vLLM text/JSON, 2 trainer), records written by the shipped configs and repeated "
            f"with later timestamps; every 50th record carries a traceback. Output goes to /dev/null; peak RSS is the "
            f"merging process's (wait4). Python {sys.version.split()[0]}, {os.cpu_count()} CPUs.",
            "",
            "| run | input MiB | records | seconds | MiB/s | peak RSS MiB |",
            "|---|---:|---:|---:|---:|---:|",
            *rows,
            "",
            "Bound: `logconf merge` holds one record per input file (heapq.merge over per-file streams, read a line at "
            "a time), so its peak RSS is the interpreter plus files x largest record, whatever the input size; the "
            "in-memory sort grows with the input.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default=tempfile.gettempdir(), help="where the inputs are generated (deleted after)")
    parser.add_argument("--size", default=None, help="total input size, e.g. 2G (default) or 256M")
    args = parser.parse_args(argv)
    print(measure(args.workdir, parse_size(args.size) if args.size else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
