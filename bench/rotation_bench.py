"""Benchmark rotation: the pause a logging thread sees, compression throughput, and the tools on many files.

    python bench/rotation_bench.py [--workdir DIR] [--records 200000]

``measure(workdir)`` returns a Markdown section; bench/run.py calls it (its per-record rows, rotation
on beside off, come from bench/per_record.py). Each part runs in a fresh interpreter:

- *pause*: the shipped JSON with LOGCONF_ROTATE_BYTES=1M, 300,000 ``log.info`` calls each timed
  with ``perf_counter_ns``, beside the same loop with rotation off; the rename itself (the part of a
  rotation done in the logging thread) is timed apart. Compression runs meanwhile in its thread.
- *compression*: a 64 MiB rotated file of the shipped text lines, compressed by
  :func:`logconf.retention.compress` (gzip level LEVEL), as the rotation thread does.
- *tools*: N rank files (N/2 sets of a compressed rotated file and a live file) holding
  ``--records`` records in all, read by ``merge``, ``tail -n 10``, ``summary --json`` and
  ``tail -f`` (until its first batch is printed) under ``ulimit -n 1024``; wall time per record
  and peak RSS (wait4).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from merge_bench import _env  # noqa: E402  (the bench's own modules sit beside this file)

FILE_COUNTS = (10, 100, 1000, 10_000)
NOFILE = 1024

_PAUSE = r"""
import json, logging, logging.config, os, sys, time
directory, rotate = sys.argv[1], sys.argv[2]
os.environ.update(LOGCONF_DIR=directory, LOGCONF_RANK="0", LOGCONF_ROTATE_BYTES=rotate)
import logconf
from logconf import rotation
renames = []
original = rotation.Rotator.rotate
def timed(self, path, identity):
    start = time.perf_counter_ns()
    try:
        return original(self, path, identity)
    finally:
        renames.append(time.perf_counter_ns() - start)
rotation.Rotator.rotate = timed
with open(logconf.vllm_config_path(), encoding="utf-8") as file:
    logging.config.dictConfig(json.loads(file.read()))
log = logging.getLogger("vllm.v1.engine.async_llm")
calls = []
clock = time.perf_counter_ns
for i in range(int(sys.argv[3])):
    start = clock()
    log.info("Added request %s-%d with %d tokens", "cmpl-7f3a", i, 128)
    calls.append(clock() - start)
if rotate != "0":
    deadline = time.time() + 120
    while not rotation.worker().idle() and time.time() < deadline:
        time.sleep(0.05)
print(json.dumps({"calls": calls, "renames": renames}))
"""

_AB = r"""
import json, logging, os, statistics, sys, time
sys.path.insert(0, os.path.join(sys.argv[2], "bench"))
from per_record import TEXT_FORMAT
from logconf.formatters import make_formatter
from logconf.handlers import RankFileHandler
directory, blocks, block = sys.argv[1], int(sys.argv[3]), int(sys.argv[4])
stdlib = logging.FileHandler(os.path.join(directory, "stdlib.log"))
formatter = logging.Formatter(TEXT_FORMAT)
formatter.converter = time.gmtime
formatter.default_time_format, formatter.default_msec_format = "%Y-%m-%dT%H:%M:%S", "%s.%03dZ"
stdlib.setFormatter(formatter)
setups = {"stdlib": stdlib}
for name, size in (("off", "0"), ("on", "1G"), ("rotating", "1M")):
    os.makedirs(os.path.join(directory, name))
    handler = RankFileHandler(os.path.join(directory, name), "vllm_rank_0.log", rotate_bytes=size)
    handler.setFormatter(make_formatter("text", rank="0", redact="1"))
    setups[name] = handler
loggers = {}
for name, handler in setups.items():
    logger = logging.getLogger(f"vllm.ab.{name}")
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    loggers[name] = logger
cpu = {name: [] for name in setups}
names = list(setups)
for rep in range(blocks):
    for name in names[rep % 4:] + names[:rep % 4]:
        info = loggers[name].info
        start = time.thread_time()
        for i in range(block):
            info("Added request %s-%d with %d tokens", "cmpl-7f3a", i, 128)
        cpu[name].append(time.thread_time() - start)
print(json.dumps({n: [v / block * 1e6 for v in values] for n, values in cpu.items()}))
"""

_COMPRESS = r"""
import json, logging, logging.config, os, sys, time, zlib
directory, size = sys.argv[1], int(sys.argv[2])
os.environ.update(LOGCONF_DIR=directory, LOGCONF_RANK="0")
import logconf
from logconf import retention
with open(logconf.vllm_config_path(), encoding="utf-8") as file:
    logging.config.dictConfig(json.loads(file.read()))
log = logging.getLogger("vllm.v1.engine.async_llm")
live = os.path.join(directory, "vllm_rank_0.log")
i = 0
while i % 1000 or os.path.getsize(live) < size:
    log.info("Added request %s-%d with %d tokens, prompt %s", "cmpl-7f3a", i, 64 + i % 300, "w%d " % (i % 509) * 8)
    i += 1
logging.shutdown()
rotated = live + ".20261126T090000.000Z"
os.rename(live, rotated)
plain = os.path.getsize(rotated)
with open(rotated, "rb") as file:
    data = file.read()
start = time.perf_counter()
other = 6 if retention.LEVEL != 6 else 1
other_bytes = len(zlib.compress(data, other))
other_s = time.perf_counter() - start
start, cpu = time.perf_counter(), time.process_time()
assert retention.compress(rotated) == "done"
print(json.dumps({"bytes": plain, "gz": os.path.getsize(rotated + ".gz"), "seconds": time.perf_counter() - start,
                  "cpu": time.process_time() - cpu, "level": retention.LEVEL, "other": other, "other_bytes": other_bytes,
                  "other_s": other_s}))
"""


def _limited(*args: str) -> list[str]:
    code = (
        f"import resource, runpy, sys\nresource.setrlimit(resource.RLIMIT_NOFILE, ({NOFILE}, {NOFILE}))\n"
        "sys.argv = ['logconf', *sys.argv[1:]]\nrunpy.run_module('logconf', run_name='__main__')\n"
    )
    return [sys.executable, "-c", code, *args]


def _json(code: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO, env=_env(), check=False)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.splitlines()[-1])


def _percentile(values: list[int], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] / 1000  # µs


def pause(workdir: str, calls: int = 300_000) -> list[str]:
    rows = []
    for label, rotate in (("rotation off", "0"), ("rotation at 1 MiB, compressed", "1M")):
        directory = tempfile.mkdtemp(prefix="pause-", dir=workdir)
        result = _json(_PAUSE, directory, rotate, str(calls))
        times, renames = result["calls"], result["renames"]
        rotations = sum(1 for name in os.listdir(directory) if ".log.2" in name)
        rename = "-"
        if renames:
            rename = f"{_percentile(renames, 0.5):.0f} / {_percentile(renames, 0.99):.0f} / {max(renames) / 1000:.0f}"
        rows.append(
            f"| {label} | {rotations} | {_percentile(times, 0.5):.1f} | {_percentile(times, 0.99):.1f} | "
            f"{_percentile(times, 0.999):.1f} | {max(times) / 1000:.0f} | {rename} |"
        )
        shutil.rmtree(directory)
    return [
        f"### Pause seen by the logging thread ({calls:,} calls of `log.info`, shipped JSON, text)",
        "",
        "| setup | rotations | p50 µs | p99 µs | p99.9 µs | max µs | rename in the logging thread: p50 / p99 / max µs |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "The rotation itself (lock file, stat, rename) is all a logging thread does; compression runs in the",
        "rotation thread (zlib releases the GIL while it compresses). The max of either row is the machine's",
        "scheduling as much as logging: compare the rows.",
        "",
    ]


def per_record_thread_cpu(workdir: str, blocks: int = 40, block: int = 10_000) -> tuple[list[str], dict[str, float]]:
    """The logging thread's CPU per record, four setups interleaved in blocks within one process; the paired ratios."""
    directory = tempfile.mkdtemp(prefix="ab-", dir=workdir)
    try:
        cpu = _json(_AB, directory, REPO, str(blocks), str(block))
    finally:
        shutil.rmtree(directory)
    labels = {
        "stdlib": "plain stdlib FileHandler, same line format (baseline)",
        "off": "logconf RankFileHandler, rotation off",
        "on": "rotation on (1 GiB): every record counted, no rotation",
        "rotating": "rotation at 1 MiB: ~40 rotations, compressed in the rotation thread",
    }
    ratios = {}
    rows = []
    for name, label in labels.items():
        ratio = statistics.median(a / b for a, b in zip(cpu[name], cpu["stdlib"], strict=True))
        off = statistics.median(a / b for a, b in zip(cpu[name], cpu["off"], strict=True))
        ratios[name] = ratio
        rows.append(f"| {label} | {statistics.median(cpu[name]):.2f} | {ratio:.2f}x | {off:.2f}x |")
    lines = [
        f"### The logging thread's CPU per record, {blocks} blocks of {block:,} records per setup, interleaved in one process",
        "",
        "`time.thread_time()` around each block: the CPU the logging thread spends, which a machine shared with other",
        "work hardly disturbs (the wall-time rows above move with the load); blocks of the four setups alternate, and",
        "each ratio is the median of the ratios of neighbouring blocks. Each setup logs through its own logger.",
        "",
        "| setup | thread CPU µs/record | vs stdlib | vs rotation off |",
        "|---|---:|---:|---:|",
        *rows,
        "",
    ]
    return lines, ratios


def compression(workdir: str, size: int = 64 << 20) -> list[str]:
    directory = tempfile.mkdtemp(prefix="compress-", dir=workdir)
    try:
        r = _json(_COMPRESS, directory, str(size))
    finally:
        shutil.rmtree(directory)
    mib = r["bytes"] / 2**20
    return [
        "### Compression of a rotated file",
        "",
        "| file | MiB | gzip level | wall s | MiB/s | CPU s | MiB per CPU s | compressed to |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| shipped text lines (requests with prompts) | {mib:.0f} | {r['level']} (logconf) | {r['seconds']:.2f} | "
        f"{mib / r['seconds']:.0f} | {r['cpu']:.2f} | {mib / r['cpu']:.0f} | {r['gz'] / r['bytes']:.1%} |",
        f"| the same, zlib alone (for comparison) | {mib:.0f} | {r['other']} | {r['other_s']:.2f} | {mib / r['other_s']:.0f} | "
        f"- | - | {r['other_bytes'] / r['bytes']:.1%} |",
        "",
        "logconf.retention.compress: read, compress, write X.gz.tmp, fsync, rename, remove X (the wall time includes",
        "the fsync of the compressed file).",
        "",
    ]


def write_run(directory: str, files: int, records: int) -> None:
    """``files`` rank files: files/2 sets, each a compressed rotated file and a live file; ``records`` in all."""
    os.makedirs(directory)
    sets = max(1, files // 2)
    per_file = max(1, records // (sets * 2))
    for n in range(sets):
        subsystem, rank = ("vllm", n) if n % 2 == 0 else ("skyrl", n)
        logger = "vllm.v1.engine.core" if subsystem == "vllm" else "skyrl_train.trainer"
        live = f"{subsystem}_rank_{rank}.log"
        for k, name in enumerate((f"{live}.20261126T090000.000Z.gz", live)):
            lines = []
            for i in range(per_file):
                ms = (k * per_file + i) * 7 + n % 7
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1795683600 + ms // 1000)) + f".{ms % 1000:03d}Z"
                head = f"{stamp} INFO rank={rank} EngineCore_DP0[{4000 + n}] {logger}"
                lines.append(f"{head}: step {i} of file {n}, 128 tokens\n")
            data = "".join(lines).encode()
            with open(os.path.join(directory, name), "wb") as file:
                file.write(gzip.compress(data, 1) if name.endswith(".gz") else data)


def _timed_until(command: list[str], lines: int) -> tuple[float, float, float]:
    """Run ``command`` until it has printed ``lines`` lines (then stop it); return (seconds, CPU s, peak RSS MiB)."""
    started = time.monotonic()
    child = subprocess.Popen(command, cwd=REPO, env=_env(), stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    for _ in range(lines):
        child.stdout.readline()
    elapsed = time.monotonic() - started
    child.send_signal(signal.SIGINT)
    child.stdout.read()
    _, _, usage = os.wait4(child.pid, 0)
    child.returncode = 0
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def tools(workdir: str, records: int) -> list[str]:
    from merge_bench import timed_usage

    rows = []
    for files in FILE_COUNTS:
        directory = os.path.join(workdir, f"tools-{files}")
        write_run(directory, files, records)
        cells = []
        page = os.path.join(workdir, "report.html")
        for args in (("merge",), ("tail", "-n", "10"), ("summary", "--json"), ("errors",), ("report", "-o", page)):
            seconds, cpu, peak = timed_usage(_limited(args[0], directory, *args[1:]))
            cells.append(f"{seconds / records * 1e6:.1f} / {cpu / records * 1e6:.1f} | {peak:.0f}")
        seconds, cpu, peak = _timed_until(_limited("tail", "-f", directory, "-n", "10", "--interval", "0.1"), 10)
        cells.append(f"{seconds / records * 1e6:.1f} / {cpu / records * 1e6:.1f} | {peak:.0f}")
        rows.append(f"| {files:,} | " + " | ".join(cells) + " |")
        shutil.rmtree(directory)
    return [
        f"### The tools on many files, under `ulimit -n {NOFILE}` ({records:,} records in all)",
        "",
        "N rank files: N/2 rank files of two files each (a gzip-compressed rotated file and the live one).",
        "µs per record of the input, wall / CPU (the whole command, interpreter start included, over the records),",
        "and the command's peak RSS in MiB.",
        "",
        "| files | merge µs/rec | MiB | tail -n 10 µs/rec | MiB | summary --json µs/rec | MiB | errors µs/rec | MiB "
        "| report µs/rec | MiB | tail -f, to its first batch µs/rec | MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "Before logconf.openfiles, `merge` and `tail` stopped with `OSError: [Errno 24] Too many open files` from",
        f"{NOFILE} files under this limit. Now each keeps at most a quarter of the limit open (the rest are opened",
        "again at their offset when read); memory grows with the number of files (one record and a buffer each),",
        "not with their size.",
        "",
    ]


def measure(workdir: str, records: int = 200_000, with_thread_cpu: bool = True) -> str:
    """Run every part; return the Markdown section."""
    root = tempfile.mkdtemp(prefix="rotation-bench-", dir=workdir)
    try:
        lines = ["## 11. Long runs: rotation", ""]
        if with_thread_cpu:
            lines += per_record_thread_cpu(root)[0]
        lines += pause(root)
        lines += compression(root)
        lines += tools(root, records)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default=tempfile.gettempdir())
    parser.add_argument("--records", type=int, default=200_000)
    args = parser.parse_args(argv)
    print(measure(args.workdir, args.records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
