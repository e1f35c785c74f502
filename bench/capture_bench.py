"""What the stdio tee costs: per MB written, and at start-up, with and without LOGCONF_CAPTURE_STDIO=1.

``measure(workdir)`` returns a Markdown section (``bench/run.py`` calls it); run this file
directly to print it (``python bench/capture_bench.py [MB] [--baseline DIR]``). Each case is a
fresh interpreter that applies the shipped vLLM JSON as vLLM does, then writes whole lines to
fd 1 (a regular file, as Ray's worker .out is) and, with the tee, waits until the tee has copied
everything. CPU counts the writer and the tee process (which reports its own on ``close()``).
Cases run interleaved, side by side, and the figures are ratios of medians: absolute times on a
shared machine say little. ``--baseline DIR`` (or ``LOGCONF_BENCH_BASELINE``) adds the same tee
cases run from another checkout of logconf (the previous release), in the same rounds.
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
START_ROUNDS = 11

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
cpu += getattr(tee, "helper_cpu_s", None) or 0.0  # the tee process's CPU copying (none with an in-process tee)
start = getattr(tee, "helper_start_cpu_s", None) or 0.0  # and starting, which does not grow with the bytes
os.write(2, json.dumps({"bytes": written, "wall": wall, "cpu": cpu, "tee_start_cpu": start}).encode())
"""

# Start-up: how long dictConfig takes in the captured process, and when the first line is copied.
_START = r"""
import json, logging.config, os, sys, time
config = json.loads(open(os.environ["VLLM_LOGGING_CONFIG_PATH"]).read())
import logconf.capture, logconf.handlers  # imported first, so that only the install is timed
t0 = time.perf_counter()
logging.config.dictConfig(config)
t1 = time.perf_counter()
os.write(1, b"first line\n")
copy = os.path.join(os.environ["LOGCONF_DIR"], "vllm_rank_0.stdio.log")
copied = None
if os.environ["LOGCONF_CAPTURE_STDIO"] == "1":
    while not (os.path.exists(copy) and os.path.getsize(copy)):
        time.sleep(0.0002)
    copied = time.perf_counter() - t0
os.write(2, json.dumps({"apply": t1 - t0, "copied": copied}).encode())
"""


def _env(workdir: Path, index: int, capture: bool, redact: str, repo: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "VLLM_"))}
    env.update(
        LOGCONF_DIR=str(workdir / f"logs-{index}"),
        VLLM_LOGGING_CONFIG_PATH=str(repo / "vllm_logging.json"),
        PYTHONPATH=str(repo),
        LOGCONF_CAPTURE_STDIO="1" if capture else "0",
        LOGCONF_REDACT=redact,
    )
    return env


def _case(
    workdir: Path, capture: bool, megabytes: int, line_size: int, index: int, redact: str = "1", repo: Path = REPO
) -> dict[str, float]:
    out_path = workdir / f"stdout-{index}.out"
    with open(out_path, "ab") as out:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(megabytes), str(line_size)],
            env=_env(workdir, index, capture, redact, repo),
            cwd=workdir,  # not a checkout: `-c` puts the working directory first on sys.path
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


def _start(workdir: Path, capture: bool, index: int, repo: Path = REPO) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _START],
        env=_env(workdir, index, capture, "1", repo),
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=True,
        timeout=120,
    )
    return json.loads(done.stderr.decode().strip().splitlines()[-1])


def _ms(samples: list[dict[str, float]], key: str, per: float = 1.0) -> float:
    return statistics.median(s[key] for s in samples) / per * 1e3


def measure(workdir: str, megabytes: int = 32, rounds: int = ROUNDS, baseline: str | None = None) -> str:
    """Measure the tee's cost per MB for short and long lines, and its start-up; return a Markdown section."""
    base = Path(workdir) / "capture-bench"
    base.mkdir(parents=True, exist_ok=True)
    baseline = baseline or os.environ.get("LOGCONF_BENCH_BASELINE") or None
    kinds: list[tuple[str, bool, Path]] = [("plain", False, REPO), ("tee", True, REPO)]
    if baseline:
        kinds.append(("baseline", True, Path(baseline)))
    rows = []
    start_cpu: dict[str, list[dict[str, float]]] = {name: [] for name, capture, _ in kinds if capture}
    index = 0
    for line_size, redact in ((100, "1"), (100, "0"), (4096, "1")):
        samples: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in kinds}
        for _ in range(rounds):
            for name, capture, repo in kinds:  # interleaved, so drift in machine load hits all
                index += 1
                samples[name].append(_case(base, capture, megabytes, line_size, index, redact, repo))
        plain_wall, tee_wall = _ms(samples["plain"], "wall", megabytes), _ms(samples["tee"], "wall", megabytes)
        plain_cpu, tee_cpu = _ms(samples["plain"], "cpu", megabytes), _ms(samples["tee"], "cpu", megabytes)
        copied = statistics.median(s["copied"] for s in samples["tee"]) / samples["tee"][0]["bytes"]
        for name in start_cpu:
            start_cpu[name] += samples[name]
        row = (
            f"| {line_size} B | {redact} | {plain_wall:.2f} | {tee_wall:.2f} | {tee_wall / plain_wall:.0f}x "
            f"| {plain_cpu:.2f} | {tee_cpu:.2f} | {tee_cpu - plain_cpu:.2f} | {copied:.3f} |"
        )
        if baseline:
            old_wall, old_cpu = _ms(samples["baseline"], "wall", megabytes), _ms(samples["baseline"], "cpu", megabytes)
            row += f" {old_wall:.2f} | {old_cpu:.2f} | {old_cpu - plain_cpu:.2f} |"
        rows.append(row)
    start: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in kinds}
    for _ in range(START_ROUNDS):
        for name, capture, repo in kinds:
            index += 1
            start[name].append(_start(base, capture, index, repo))
    apply_plain = _ms(start["plain"], "apply")
    tee_start_cpu = {name: _ms(cases, "tee_start_cpu") for name, cases in start_cpu.items()}
    starts = [
        f"| {name} | {_ms(start[name], 'apply'):.1f} | {_ms(start[name], 'apply') - apply_plain:.1f} "
        f"| {_ms(start[name], 'copied'):.1f} | {tee_start_cpu[name]:.1f} |"
        for name, capture, _ in kinds
        if capture
    ]
    extra_head = " wall ms/MB, baseline tee | CPU ms/MB, baseline tee | extra CPU ms/MB, baseline |" if baseline else ""
    extra_rule = "---:|---:|---:|" if baseline else ""
    return "\n".join(
        [
            "## Raw stdio capture (LOGCONF_CAPTURE_STDIO=1): cost per MB written, and at start-up",
            "",
            f"One process writes {megabytes} MB of whole lines to fd 1 (a regular file) with `os.write`, "
            f"median of {rounds} interleaved runs per case. With the tee, the time includes the tee process "
            "copying every byte to the original fd and, prefixed, to `vllm_rank_0.stdio.log`; CPU counts the "
            "writer and the tee process, less the tee's own start (in the second table), which the wall time "
            "includes. Figures are ms per MB on this machine; compare the ratios. Most of the "
            "extra CPU is the secret scan of the copy (compare LOGCONF_REDACT=1 and 0); the bytes forwarded to "
            "the original fd are never scanned or changed."
            + (f" The baseline columns run the same cases from `{baseline}` (an in-process reader thread)." if baseline else ""),
            "",
            "| line size | LOGCONF_REDACT | wall ms/MB, plain | wall ms/MB, tee | wall ratio | CPU ms/MB, plain | CPU ms/MB, tee "
            "| extra CPU ms/MB | .stdio.log bytes / written |" + extra_head,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|" + extra_rule,
            *rows,
            "",
            f"Start-up, median of {START_ROUNDS}: `dictConfig` of the shipped JSON in the captured process "
            f"(without capture: {apply_plain:.1f} ms), and the time from its start until the first line written "
            "after it is in the copy (the tee's own start: a Python without `site`, which forks away from its starter).",
            "",
            "| tee | dictConfig ms | of which capture | first line copied after ms | tee process start, CPU ms |",
            "|---|---:|---:|---:|---:|",
            *starts,
            "",
        ]
    )


if __name__ == "__main__":
    args = sys.argv[1:]
    baseline_dir = None
    if "--baseline" in args:
        at = args.index("--baseline")
        baseline_dir = args[at + 1]
        del args[at : at + 2]
    with tempfile.TemporaryDirectory(prefix="logconf-capture-bench-") as tmp:
        print(measure(tmp, megabytes=int(args[0]) if args else 32, baseline=baseline_dir))
