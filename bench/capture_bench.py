"""What the stdio tee costs per MB written: the same writer with and without LOGCONF_CAPTURE_STDIO=1.

``measure(workdir)`` returns a Markdown section (``bench/run.py`` calls it); run this file
directly to print it. Each case is a fresh interpreter that applies the shipped vLLM JSON as
vLLM does, then writes whole lines to fd 1 (a regular file, as Ray's worker .out is) and,
with the tee, waits until the tee has copied everything. Cases run interleaved, side by side,
and the figures are ratios of medians: absolute times on a shared machine say little.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MB = 1 << 20
ROUNDS = 5

_CHILD = r"""
import json, logging.config, os, resource, sys, time
config = json.loads(open(os.environ["VLLM_LOGGING_CONFIG_PATH"]).read())
logging.config.dictConfig(config)
from logconf import capture
megabytes, line_size = int(sys.argv[1]), int(sys.argv[2])
line = (b"x" * (line_size - 1)) + b"\n"
block = line * max(1, (64 * 1024) // line_size)
total = megabytes * (1 << 20)
usage = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
cpu0, t0, written = usage(), time.perf_counter(), 0
while written < total:
    written += os.write(1, block)
tee = capture.installed()
if tee is not None:
    tee.close(wait_s=600)  # restore fd 1 and wait until every byte is copied
wall, cpu = time.perf_counter() - t0, usage() - cpu0
os.write(2, json.dumps({"bytes": written, "wall": wall, "cpu": cpu}).encode())
"""


def _case(workdir: Path, capture: bool, megabytes: int, line_size: int, index: int, redact: str = "1") -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "VLLM_"))}
    env.update(
        LOGCONF_DIR=str(workdir / f"logs-{index}"),
        VLLM_LOGGING_CONFIG_PATH=str(REPO / "vllm_logging.json"),
        PYTHONPATH=str(REPO),
        LOGCONF_CAPTURE_STDIO="1" if capture else "0",
        LOGCONF_REDACT=redact,
    )
    out_path = workdir / f"stdout-{index}.out"
    with open(out_path, "ab") as out:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(megabytes), str(line_size)],
            env=env,
            stdout=out,
            stderr=subprocess.PIPE,
            check=True,
            timeout=600,
        )
    result = json.loads(done.stderr.decode().strip().splitlines()[-1])
    if capture:
        copied = (workdir / f"logs-{index}" / "vllm_rank_0.stdio.log").stat().st_size
        result["copied"] = copied
    out_path.unlink()
    return result


def measure(workdir: str, megabytes: int = 32, rounds: int = ROUNDS) -> str:
    """Measure the tee's cost per MB for short and long lines; return a Markdown section."""
    base = Path(workdir) / "capture-bench"
    base.mkdir(parents=True, exist_ok=True)
    rows = []
    index = 0
    for line_size, redact in ((100, "1"), (100, "0"), (4096, "1")):
        samples: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        for _ in range(rounds):
            for capture in (False, True):  # interleaved, so drift in machine load hits both
                index += 1
                samples[capture].append(_case(base, capture, megabytes, line_size, index, redact))
        plain_wall = statistics.median(s["wall"] for s in samples[False]) / megabytes
        tee_wall = statistics.median(s["wall"] for s in samples[True]) / megabytes
        plain_cpu = statistics.median(s["cpu"] for s in samples[False]) / megabytes
        tee_cpu = statistics.median(s["cpu"] for s in samples[True]) / megabytes
        written = samples[True][0]["bytes"]
        copied = statistics.median(s["copied"] for s in samples[True])
        rows.append(
            f"| {line_size} B | {redact} | {plain_wall * 1e3:.2f} | {tee_wall * 1e3:.2f} | {tee_wall / plain_wall:.0f}x "
            f"| {plain_cpu * 1e3:.2f} | {tee_cpu * 1e3:.2f} | {(tee_cpu - plain_cpu) * 1e3:.2f} | {copied / written:.3f} |"
        )
    return "\n".join(
        [
            "## Raw stdio capture (LOGCONF_CAPTURE_STDIO=1): cost per MB written",
            "",
            f"One process writes {megabytes} MB of whole lines to fd 1 (a regular file) with `os.write`, "
            f"median of {rounds} interleaved runs per case. With the tee, the time includes the reader thread "
            "copying every byte to the original fd and, prefixed, to `vllm_rank_0.stdio.log`; CPU counts all "
            "threads of the process. Figures are ms per MB on this machine; compare the ratios. Most of the "
            "extra CPU is the secret scan of the copy (compare LOGCONF_REDACT=1 and 0); the bytes forwarded to "
            "the original fd are never scanned or changed.",
            "",
            "| line size | LOGCONF_REDACT | wall ms/MB, plain | wall ms/MB, tee | wall ratio | CPU ms/MB, plain | CPU ms/MB, tee "
            "| extra CPU ms/MB | .stdio.log bytes / written |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
        ]
    )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="logconf-capture-bench-") as tmp:
        print(measure(tmp, megabytes=int(sys.argv[1]) if len(sys.argv) > 1 else 32))
