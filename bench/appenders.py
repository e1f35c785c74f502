"""Many processes appending to one rank file: records per second, and proof that none is torn.

Each writer is a forked process that loads the shipped vLLM JSON as vLLM does, waits at a
barrier, then logs its share of tagged records of mixed sizes. The checker reads the file
back and proves that every (writer, index) appears exactly once, with its body whole.
"""

from __future__ import annotations

import collections
import json
import logging
import logging.config
import multiprocessing
import os
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SMALLEST, LARGEST = 100, 256 * 1024
LINE = re.compile(rb"\S+ INFO rank=0 \S+\[\d+\] vllm\.bench\.append: <w(\d+)> (\d+) (\d+) (\S*) END")


def sizes(count: int, seed: int) -> list[int]:
    """Record sizes spread evenly on a log scale from 100 B to 256 KiB (median about 5 KiB)."""
    rng = random.Random(seed)
    return [round(SMALLEST * (LARGEST / SMALLEST) ** rng.random()) for _ in range(count)]


def _body(writer: int, size: int) -> str:
    tag = f"<w{writer}>"
    return (tag * (size // len(tag) + 1))[:size]


def _writer(writer: int, count: int, directory: str, barrier: Any, times: Any) -> None:
    from logconf import vllm_config_path

    os.environ.update(LOGCONF_DIR=directory, LOGCONF_RANK="0", LOGCONF_FORMAT="text")
    with open(vllm_config_path(), encoding="utf-8") as file:
        logging.config.dictConfig(json.loads(file.read()))
    log = logging.getLogger("vllm.bench.append")
    plan = sizes(count, seed=writer)
    bodies = {size: _body(writer, size) for size in set(plan)}  # built before the clock starts
    barrier.wait()
    start = time.perf_counter()  # CLOCK_MONOTONIC: comparable across processes
    for i, size in enumerate(plan):
        log.info("<w%d> %d %d %s END", writer, i, size, bodies[size])
    times.put((start, time.perf_counter()))
    logging.shutdown()


def check(path: Path, writers: int, per_writer: int) -> dict[str, int]:
    """Count torn, lost and duplicated records in ``path``."""
    expected = {(w, i): size for w in range(writers) for i, size in enumerate(sizes(per_writer, seed=w))}
    seen: collections.Counter[tuple[int, int]] = collections.Counter()
    torn = 0
    with open(path, "rb") as file:
        data = file.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for line in lines:
        match = LINE.fullmatch(line)
        if match is None:
            torn += 1
            continue
        writer, index, size = int(match[1]), int(match[2]), int(match[3])
        if expected.get((writer, index)) != size or match[4] != _body(writer, size).encode():
            torn += 1
            continue
        seen[(writer, index)] += 1
    return {
        "lines": len(lines),
        "torn": torn,
        "lost": sum(1 for key in expected if key not in seen),
        "duplicated": sum(n - 1 for n in seen.values() if n > 1),
        "bytes": len(data),
    }


def run(writers: int, total: int, directory: Path) -> dict[str, float | int]:
    """Let ``writers`` processes append ``total`` records between them; time and check the file."""
    ctx = multiprocessing.get_context("fork")
    directory.mkdir(parents=True, exist_ok=True)
    per_writer = total // writers
    barrier, times = ctx.Barrier(writers), ctx.Queue()
    processes = [
        ctx.Process(target=_writer, args=(w, per_writer, str(directory), barrier, times), name=f"VllmWorker-{w}")
        for w in range(writers)
    ]
    for process in processes:
        process.start()
    spans = [times.get(timeout=600) for _ in processes]
    for process in processes:
        process.join(60)
        if process.exitcode != 0:
            raise RuntimeError(f"writer {process.name} exited with {process.exitcode}")
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    path = directory / "vllm_rank_0.log"
    result: dict[str, float | int] = {"writers": writers, "records": per_writer * writers, "wall_s": wall}
    result.update(check(path, writers, per_writer))
    path.unlink()
    return result


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))))
