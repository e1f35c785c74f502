"""``make bench``: logconf's hot-path cost and multi-process throughput, side by side with the alternatives.

Every figure comes from a fresh interpreter, rows are interleaved within each repetition (the
order rotates), and each ratio is the median of the ratios paired within a repetition, so a
busy shared machine shifts both sides of a ratio alike. The table is printed and written to
bench/results.md. Nothing here asserts a time: a missed target is shown with its margin.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

PER_RECORD = [
    ("stdlib-filehandler", "plain stdlib FileHandler, same line format (baseline)"),
    ("logconf-vllm-text", "logconf, shipped vllm_logging.json, text"),
    ("logconf-vllm-json", "logconf, shipped vllm_logging.json, JSON"),
    ("logconf-vllm-json-stdlib", "the same JSON without msgspec (stdlib json)"),
    ("logconf-trainer", "logconf, shipped skyrl_logging.yaml via apply()"),
    ("loguru-intercept", "stdlib -> InterceptHandler -> Loguru file sink"),
    ("loguru-intercept-enqueue", "the same with enqueue=True (the replaced design)"),
]
# How busy the machine is while the per-record rows run. Loguru's enqueue=True hands each record to
# a second thread; what that costs the logging thread depends on whether that thread gets a core of
# its own, so the rows are measured in each condition, and each is judged on the figure that
# measures logging there (JUDGED_ON).
CONDITIONS = {
    "quiet": "nothing else started: the process may use both cores, so Loguru's queue thread can run on a core of its own",
    "one-core": "the process pinned to one core (os.sched_setaffinity), nothing else on it: Loguru's queue thread has no "
    "free core and shares the logging thread's, as on a node whose other cores are taken",
    "loaded": "one busy-loop process pinned to each core runs beside the unpinned process, as on a node whose cores are "
    "all taken by workers",
}
JUDGED_ON = {"quiet": "emit_s", "one-core": "emit_s", "loaded": "cpu_s"}
METRICS = {"emit_s": "emitting thread wall time", "cpu_s": "CPU time of all the process's threads"}


ROTATION = [
    ("stdlib-filehandler", "plain stdlib FileHandler, same line format (baseline)"),
    ("logconf-vllm-text", "logconf, shipped JSON, text, rotation off"),
    ("logconf-vllm-text-rotation-armed", "rotation on (1 GiB): every record counted, no rotation in the run"),
    ("logconf-vllm-text-rotating-1m", "rotation at 1 MiB: a rotation every ~10,000 records, compressed behind"),
]
DISABLED = [
    ("disabled-vllm-default", "vLLM's default config shape (baseline)"),
    ("disabled-logconf-vllm", "logconf, shipped vllm_logging.json"),
]
WRITERS = (1, 2, 4, 8)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "VLLM_", "RANK", "LOG_LEVEL"))}
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env


def _json_run(argv: Sequence[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run(argv, capture_output=True, text=True, env=env or _env(), cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _file_run(argv: Sequence[str], out: Path, env: dict[str, str] | None = None, log: Path | None = None) -> dict[str, Any]:
    sink = open(log, "w", encoding="utf-8") if log else subprocess.DEVNULL
    try:
        done = subprocess.run(argv, stdout=sink, stderr=subprocess.STDOUT, env=env or _env(), cwd=ROOT, check=False)
    finally:
        if log:
            sink.close()  # type: ignore[union-attr]
    if done.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-2000:] if log else ""
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{tail}")
    return json.loads(out.read_text(encoding="utf-8"))


def _rotated(items: Sequence[Any], rep: int) -> list[Any]:
    shift = rep % len(items)
    return list(items[shift:]) + list(items[:shift])


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def interleave(names: Sequence[str], reps: int, measure: Callable[[str, int], dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Measure every name once per repetition, in an order that rotates; return the results by name."""
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for rep in range(reps):
        for name in _rotated(names, rep):
            results[name].append(measure(name, rep))
        _say(f"  repetition {rep + 1}/{reps} done")
    return results


def paired_ratio(results: dict[str, list[dict[str, Any]]], name: str, base: str, key: str) -> float:
    return statistics.median(r[key] / b[key] for r, b in zip(results[name], results[base], strict=True))


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _verdict(ok: bool, detail: str) -> str:
    return f"met ({detail})" if ok else f"**MISSED** ({detail})"


class Report:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.targets: list[tuple[str, str]] = []

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def target(self, what: str, ok: bool, detail: str) -> None:
        self.targets.append((what, _verdict(ok, detail)))


class _BusyLoops:
    """One spinning process pinned to each core, for the loaded condition; stopped on exit."""

    def __init__(self, python: str) -> None:
        self.python, self.procs = python, []  # type: ignore[var-annotated]

    def __enter__(self) -> _BusyLoops:
        spin = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True:\n    pass\n"
        for cpu in sorted(os.sched_getaffinity(0)):
            self.procs.append(subprocess.Popen([self.python, "-c", spin, str(cpu)], stdin=subprocess.DEVNULL))
        time.sleep(0.5)  # let them reach their loop
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()


def _per_record_runs(python: str, records: int, reps: int, work: Path, condition: str) -> dict[str, list[dict[str, Any]]]:
    names = [n for n, _ in PER_RECORD]
    cpu = [str(min(os.sched_getaffinity(0)))] if condition == "one-core" else []

    def measure(name: str, rep: int) -> dict[str, Any]:
        out = work / f"{condition}-{name}-{rep}"
        return _json_run([python, str(BENCH / "per_record.py"), name, str(records), str(out), *cpu])

    if condition == "loaded":
        with _BusyLoops(python):
            return interleave(names, reps, measure)
    return interleave(names, reps, measure)


def bench_per_record(report: Report, python: str, records: int, reps: int, work: Path, conditions: Sequence[str]) -> None:
    base = "stdlib-filehandler"
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for condition in conditions:
        _say(f"per-record cost, {condition}: {len(PER_RECORD)} setups x {reps} repetitions x {records} records")
        results[condition] = _per_record_runs(python, records, reps, work, condition)
    first = conditions[0]
    encoder = results[first]["logconf-vllm-json"][0].get("encoder") or "?"
    report.add(
        f'## 1. Per-record cost, {records:,} records of `log.info("Added request %s-%d with %d tokens", ...)`',
        "",
        "Emitting thread: the logging calls alone. End to end: until every record is in the file, closed and fsynced.",
        f"logconf's JSON rows use the {encoder} encoder (the default where msgspec imports, as in every vLLM process).",
        "",
        "Conditions:",
        "",
        *(f"- **{c}**: {CONDITIONS[c]}." for c in conditions),
        "",
        f"### {first}",
        "",
        "| setup | emitting thread µs/record | ratio | end to end µs/record | ratio | lines in file |",
        "|---|---:|---:|---:|---:|---:|",
    )
    for name, label in PER_RECORD:
        runs = results[first][name]
        emit_us, total_us = _median(runs, "emit_s") / records * 1e6, _median(runs, "total_s") / records * 1e6
        lines = sorted({r["lines"] for r in runs})
        report.add(
            f"| {label} | {emit_us:.1f} | {paired_ratio(results[first], name, base, 'emit_s'):.2f}x | {total_us:.1f} | "
            f"{paired_ratio(results[first], name, base, 'total_s'):.2f}x | {', '.join(f'{n:,}' for n in lines)} |"
        )
    enqueue = "loguru-intercept-enqueue"
    report.add(
        "",
        "### Side by side: µs per record, and how many times faster than Loguru enqueue=True",
        "",
        "Wall: the emitting thread's loop. CPU: every thread of the process (Loguru's queue worker included), until the",
        "file is fsynced. In the loaded condition the wall time mostly measures the scheduler's share: a thread that never",
        "sleeps (logconf's, the stdlib's) gets what each busy loop gets, while Loguru's two threads, which sleep and wake",
        "on their queue, get more; what logging takes from a node whose cores are all busy is its CPU time, so that",
        "condition is judged on CPU. The other two are judged on the emitting thread's wall time, what a request waits.",
        "",
        "| setup | " + " | ".join(f"{c} wall µs | x | {c} CPU µs | x" for c in conditions) + " |",
        "|---|" + "---:|---:|---:|---:|" * len(conditions),
    )
    for name, label in PER_RECORD:
        cells = []
        for condition in conditions:
            runs = results[condition]
            for key in ("emit_s", "cpu_s"):
                cells.append(f"{_median(runs[name], key) / records * 1e6:.1f}")
                cells.append(f"{paired_ratio(runs, enqueue, name, key):.1f}x")
        report.add(f"| {label} | " + " | ".join(cells) + " |")
    report.add("")
    text = paired_ratio(results[first], "logconf-vllm-text", base, "emit_s")
    report.target(f"vLLM config, text: at most 1.10x the stdlib FileHandler per record ({first})", text <= 1.10, f"{text:.2f}x")
    js = paired_ratio(results[first], "logconf-vllm-json", base, "emit_s")
    report.target(f"vLLM config, JSON: at most 1.6x the stdlib FileHandler per record ({first})", js <= 1.6, f"{js:.2f}x")
    for name, label in (("logconf-vllm-text", "text"), ("logconf-vllm-json", "JSON")):
        for condition in conditions:
            judged = JUDGED_ON[condition]
            other = "cpu_s" if judged == "emit_s" else "emit_s"
            speedup = paired_ratio(results[condition], enqueue, name, judged)
            aside = paired_ratio(results[condition], enqueue, name, other)
            report.target(
                f"vLLM config, {label}: at least 8x faster per record than Loguru enqueue=True, {condition}",
                speedup >= 8,
                f"{speedup:.1f}x in {METRICS[judged]}; {aside:.1f}x in {METRICS[other]}",
            )


def _per_record_cases(python: str, names: Sequence[str], count: int, reps: int, work: Path) -> dict[str, list[dict[str, Any]]]:
    """Run bench/per_record.py's ``names``, ``count`` calls each, interleaved over ``reps`` repetitions."""
    return interleave(
        names,
        reps,
        lambda name, rep: _json_run([python, str(BENCH / "per_record.py"), name, str(count), str(work / f"{name}-{rep}")]),
    )


def bench_disabled(report: Report, python: str, calls: int, reps: int, work: Path) -> None:
    _say(f"disabled calls: {len(DISABLED)} setups x {reps} repetitions x {calls} calls")
    names = [n for n, _ in DISABLED]
    results = _per_record_cases(python, names, calls, reps, work)
    base = names[0]
    report.add(
        f"## 2. Disabled call: `log.debug(...)` on a `vllm.*` logger at INFO, {calls:,} calls",
        "",
        "| setup | ns/call | ratio |",
        "|---|---:|---:|",
    )
    for name, label in DISABLED:
        ns = _median(results[name], "emit_s") / calls * 1e9
        report.add(f"| {label} | {ns:.0f} | {paired_ratio(results, name, base, 'emit_s'):.2f}x |")
    report.add("")
    ratio = paired_ratio(results, "disabled-logconf-vllm", base, "emit_s")
    report.target("Disabled call: at most 1.2x vLLM's default config", ratio <= 1.2, f"{ratio:.2f}x")


def bench_appenders(report: Report, python: str, total: int, reps: int, work: Path) -> None:
    _say(f"multi-process appends: writers {WRITERS} x {reps} repetitions, {total} records per run")
    results = interleave(
        [str(w) for w in WRITERS],
        reps,
        lambda w, rep: _json_run([python, str(BENCH / "appenders.py"), w, str(total), str(work / f"append-{w}-{rep}")]),
    )
    for runs in results.values():
        for run in runs:
            run["rate"] = run["records"] / run["wall_s"]
    report.add(
        f"## 3. Writer processes appending to one rank file ({os.cpu_count()} cores), {total:,} records per run",
        "",
        "Record sizes log-uniform from 100 B to 256 KiB (the same sizes at every writer count); the writers share",
        "the records between them. Each run's file is read back: every (writer, index) exactly once, body whole.",
        "",
        "| writers | records/s | vs 1 writer | MB/s | torn | lost | duplicated |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    )
    clean = True
    for w in WRITERS:
        runs = results[str(w)]
        rate = _median(runs, "rate")
        ratio = statistics.median(r["rate"] / b["rate"] for r, b in zip(runs, results["1"], strict=True))
        mb = statistics.median(r["bytes"] / r["wall_s"] / 1e6 for r in runs)
        torn, lost, dup = (sum(r[k] for r in runs) for k in ("torn", "lost", "duplicated"))
        clean = clean and torn == lost == dup == 0
        report.add(f"| {w} | {rate:,.0f} | {ratio:.2f}x | {mb:.0f} | {torn} | {lost} | {dup} |")
    report.add("", f"Torn, lost and duplicated are summed over all {reps} repetitions.", "")
    report.target(
        "Multi-process: zero torn, lost or duplicated records at every writer count", clean, "all zero" if clean else "see table"
    )
    eight = statistics.median(r["rate"] / b["rate"] for r, b in zip(results["8"], results["1"], strict=True))
    report.target("8 writers: aggregate records/s at least 0.8x one writer", eight >= 0.8, f"{eight:.2f}x")


STARTUP = [
    ("import", "`import logconf`"),
    ("first-use", "`import logconf`, then the first use of `logconf.apply` (loads every module `apply()` needs)"),
    ("first-apply", "`import logconf; logconf.apply()`: modules and call, a trainer's first two lines"),
    (
        "apply",
        "`logconf.apply()` alone (shipped trainer YAML, its modules and `logging.config` loaded), read from the YAML cache",
    ),
    ("apply-cold", "`logconf.apply()` alone with an empty YAML cache: PyYAML imported, the cache written"),
    ("vllm-dictconfig", "vLLM's load of the shipped JSON (json.loads + dictConfig, logconf's modules loaded by it)"),
]
# Where LOGCONF_AUTO=1 acts, timed inside fresh processes: (name, label, interpreter flags, bench/startup.py's
# kind and arguments (OUT goes after the kind), processes per measurement). "site" runs under -S and times
# site.main(); the stand-in frameworks are modules that LOGCONF_AUTO_FRAMEWORKS names, so that no real package
# is faked.
STEPS = [
    ("site", "interpreter start (`site.main()`, the start-up files): every process", ["-S"], ["site"], 20),
    (
        "framework",
        "`import bench_framework`, which imports what vLLM's logger module imports",
        [],
        ["framework", "bench_framework"],
        40,  # the job's row: compared with the same import plus logconf.apply(), which differs by a ms or two
    ),
    (
        "framework-bare",
        "`import bench_framework_logging_only`, a framework that imports only `logging`",
        [],
        ["framework", "bench_framework_logging_only"],
        20,
    ),
]
# Whole processes: (name, label, argv after the interpreter, is it the job's, processes per measurement).
PROCESSES = [
    ("pass", "`python -c pass`: no part of the job", ["-c", "pass"], False, 20),
    ("job", "`python -c 'import bench_framework'`: a job process", ["-c", "import bench_framework"], True, 20),
]
STANDINS = {
    "bench_framework.py": "import collections.abc, datetime, functools, json, logging, logging.config, os, sys, types, typing\n",
    "bench_framework_logging_only.py": "import logging\n",
}


def _startup_env(work: Path, **extra: str) -> dict[str, str]:
    """The environment of a start-up run: byte code cached as an installed wheel's is (pip compiles it)."""
    env = _env(PYTHONPYCACHEPREFIX=str(work / "pycache"), **extra)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _process_cost(argv: Sequence[str], env: dict[str, str]) -> dict[str, float]:
    """Wall and CPU (user + system, from wait4) seconds of one fresh process."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({code})")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime}


def _in_process_cost(argv: Sequence[str], out: Path, env: dict[str, str]) -> dict[str, float]:
    """CPU and wall seconds of the step that ``bench/startup.py`` times in one fresh process."""
    done = _file_run(argv, out, env)
    return {"cpu_s": done["cpu_seconds"], "wall_s": done["seconds"]}


def _side_by_side(arms: dict[str, Callable[[], dict[str, float]]], runs: int) -> dict[str, dict[str, float]]:
    """Median CPU and wall seconds of each arm over ``runs`` rounds that start one process of every arm in turn.

    The arms' processes alternate rather than run in blocks: this machine's speed drifts within seconds (the
    CPU time a virtual machine reports counts the host's steal too), and arms measured one block after the
    other differed by that drift (a job process's extra came out at -3 ms in one run).
    """
    done: dict[str, list[dict[str, float]]] = {arm: [] for arm in arms}
    for _ in range(runs):
        for arm, measure in arms.items():
            done[arm].append(measure())
    return {arm: {key: _median(runs_, key) for key in ("cpu_s", "wall_s")} for arm, runs_ in done.items()}


def _paired(results: dict[str, list[dict[str, Any]]], base: str, other: str, key: str) -> float:
    """Milliseconds that ``other`` adds to ``base``: the median of the differences paired within each repetition."""
    return statistics.median(b[key] - a[key] for a, b in zip(results[base], results[other], strict=True)) * 1e3


def _paired_extra(results: dict[str, list[dict[str, Any]]], name: str, key: str) -> float:
    """Milliseconds that LOGCONF_AUTO=1 adds to the row ``name``."""
    return _paired(results, f"{name}-off", f"{name}-auto", key)


def _extra_rows(report: Report, results: dict[str, list[dict[str, Any]]], rows: list[tuple[str, str]], digits: int) -> None:
    """One table row per (name, label): CPU without and with LOGCONF_AUTO=1, the paired extra CPU and wall."""
    for name, label in rows:
        off, on = _median(results[f"{name}-off"], "cpu_s") * 1e3, _median(results[f"{name}-auto"], "cpu_s") * 1e3
        cpu, wall = _paired_extra(results, name, "cpu_s"), _paired_extra(results, name, "wall_s")
        report.add(f"| {label} | {off:.{digits}f} | {on:.{digits}f} | {cpu:+.{digits}f} | {wall:+.{digits}f} |")


def bench_processes(report: Report, python: str, reps: int, work: Path, apply_ms: float) -> None:
    _say(f"start-up with and without LOGCONF_AUTO: {len(PROCESSES) + len(STEPS)} commands side by side x {reps} repetitions")
    frameworks = work / "frameworks"
    frameworks.mkdir(exist_ok=True)
    for name, code in STANDINS.items():
        (frameworks / name).write_text(code, encoding="utf-8")
    common = {
        "PYTHONPATH": str(frameworks),
        "LOGCONF_AUTO_FRAMEWORKS": ",".join(n.removesuffix(".py") for n in STANDINS),
        "LOGCONF_DIR": str(work / "logs-processes"),
        "XDG_CACHE_HOME": str(work / "yaml-cache-processes"),
    }
    envs = {"off": _startup_env(work, **common), "auto": _startup_env(work, LOGCONF_AUTO="1", **common)}
    script = str(BENCH / "startup.py")
    # Each group's arms alternate process by process (see _side_by_side); the groups are interleaved by repetition.
    groups: dict[str, tuple[dict[str, Callable[[], dict[str, float]]], int]] = {}
    for name, _, flags, (kind, *args), runs in STEPS:
        arms: dict[str, Callable[[], dict[str, float]]] = {}
        for mode, env in envs.items():
            out = work / f"{name}-{mode}.json"
            arms[mode] = functools.partial(_in_process_cost, [python, *flags, script, kind, str(out), *args], out, env)
        if name == "framework":  # beside it, a job process that applies logconf itself, as LOGCONF_AUTO is held to
            out = work / "framework-explicit.json"
            argv = [python, script, "framework-apply", str(out), *args]
            arms["explicit"] = functools.partial(_in_process_cost, argv, out, envs["off"])
        groups[name] = (arms, runs)
    for name, _, args, _, runs in PROCESSES:
        groups[name] = ({mode: functools.partial(_process_cost, [python, *args], env) for mode, env in envs.items()}, runs)
    for arms, _ in groups.values():  # byte code written, YAML cache filled: every later run finds them
        for measure in arms.values():
            measure()
    by_group = interleave(list(groups), reps, lambda group, rep: _side_by_side(*groups[group]))
    results = {f"{group}-{arm}": [rep[arm] for rep in reps_] for group, reps_ in by_group.items() for arm in reps_[0]}
    hook = [
        _file_run([python, script, "hook-pip", str(work / f"hook-{rep}.json")], work / f"hook-{rep}.json") for rep in range(reps)
    ]
    calls = hook[0]["calls"]
    per_call_ns = _median(hook, "call_seconds") * 1e9
    hook_ms = _median(hook, "hook_cpu_seconds") * 1e3
    report.add(
        "### `LOGCONF_AUTO=1` against without: each step where it acts, timed in the process",
        "",
        f"Each figure: the median of {STEPS[0][4]} fresh processes ({STEPS[1][4]} for `bench_framework`), CPU and wall of",
        "the step alone, with and without started in turn, process by process; then the median over",
        f"{reps} interleaved repetitions; extra: the median of the differences paired within each repetition.",
        "The framework rows import a stand-in framework that `LOGCONF_AUTO_FRAMEWORKS` names: vLLM imports",
        "`logging.config`, `typing` and `json` itself (first row); a framework that imports only",
        "`logging` leaves them to logconf.",
        "",
        "| step | without, CPU ms | with, CPU ms | extra CPU ms | extra wall ms |",
        "|---|---:|---:|---:|---:|",
    )
    _extra_rows(report, results, [(name, label) for name, label, *_ in STEPS], 2)
    off, job = results["framework-off"], _paired_extra(results, "framework", "cpu_s")
    by_hand = _paired(results, "framework-off", "framework-explicit", "cpu_s")
    auto_over = _paired(results, "framework-explicit", "framework-auto", "cpu_s")
    report.add(
        "",
        "The same framework import in a job process that applies logconf itself (a trainer's own two lines, without",
        "`LOGCONF_AUTO`), measured in the same repetitions; extras paired as above:",
        "",
        "| job process importing `bench_framework` | extra CPU ms over the import alone |",
        "|---|---:|",
        f"| `LOGCONF_AUTO=1`: logconf applied at the framework's import | {job:+.2f} |",
        f"| `import bench_framework; import logconf; logconf.apply()` | {by_hand:+.2f} |",
        f"| `LOGCONF_AUTO=1` against the two lines | {auto_over:+.2f} |",
    )
    report.add(
        "",
        "A process that is no part of the job also pays the hook's name check on each module it imports: in `pip --version`,",
        f"{calls} calls at {per_call_ns:.0f} ns each (counted in pip's process; one call timed apart, over 100,000 calls),",
        f"{hook_ms:.2f} ms. (pip's whole run varies by tens of ms from one run to the next: too much to show this.)",
        "",
        "### Whole processes, start to exit (a cross-check: interpreter start and exit vary by more than the steps above)",
        "",
        "Each figure: the median of 20 fresh processes, CPU (user + system, from `wait4`) and wall, started as above.",
        "",
        "| process | without, CPU ms | with, CPU ms | extra CPU ms | extra wall ms |",
        "|---|---:|---:|---:|---:|",
    )
    _extra_rows(report, results, [(name, label) for name, label, *_ in PROCESSES], 1)
    report.add("")
    fixed = _paired_extra(results, "site", "cpu_s")
    report.target(
        "`LOGCONF_AUTO=1`, a process that is no part of the job: at most 3 ms more start-up",
        fixed + hook_ms <= 3,
        f"{fixed:+.2f} ms CPU at start (`site.main()`), +{hook_ms:.2f} ms over pip's {calls} imports; "
        f"whole `python -c pass` {_paired_extra(results, 'pass', 'cpu_s'):+.1f} ms",
    )
    bare = _paired_extra(results, "framework-bare", "cpu_s")
    report.target(
        "`LOGCONF_AUTO=1`, a job process (its framework imports what vLLM's logger does) pays what `apply()` costs it: "
        "at most 1.1x the extra start-up of `import logconf; logconf.apply()` there, with `apply()` under 10 ms",
        job <= 1.1 * by_hand and apply_ms < 10,
        f"{job:+.1f} ms against {by_hand:+.1f} ms ({job / by_hand:.2f}x), `apply()` {apply_ms:.1f} ms, logconf's modules "
        f"the rest (whole process {_paired_extra(results, 'job', 'cpu_s'):+.1f} ms; {bare:+.1f} ms where the framework "
        "imports only `logging`)",
    )
    report.target(
        "`LOGCONF_AUTO=1`, a job process: at most 10 ms more start-up in all, logconf's modules and `apply()`",
        job <= 10,
        f"{job:+.1f} ms CPU at the framework's import, {job / (_median(off, 'cpu_s') * 1e3):.0%} of the import's own "
        f"{_median(off, 'cpu_s') * 1e3:.1f} ms: a share that holds while this machine's speed drifts",
    )


def bench_startup(report: Report, python: str, reps: int, work: Path) -> None:
    _say(f"import and apply: fresh interpreters x {reps}")
    warm = work / "yaml-cache-warm"
    for kind in ("apply", "import"):  # the YAML cache filled, byte code written
        _file_run(
            [python, str(BENCH / "startup.py"), kind, str(work / "prime.json")],
            work / "prime.json",
            _startup_env(work, LOGCONF_DIR=str(work / "logs-prime"), XDG_CACHE_HOME=str(warm)),
        )

    def measure(kind: str, rep: int) -> dict[str, Any]:
        out = work / f"{kind}-{rep}.json"
        # Every process of a job but the first finds the shipped YAML in the cache; the first of all does not.
        cache = work / f"yaml-cache-cold-{rep}" if kind == "apply-cold" else warm
        env = _startup_env(work, LOGCONF_DIR=str(work / f"logs-{rep}"), XDG_CACHE_HOME=str(cache))
        return _file_run([python, str(BENCH / "startup.py"), kind.removesuffix("-cold"), str(out)], out, env)

    results = interleave([k for k, _ in STARTUP], reps, measure)
    report.add(
        "## 4. Start-up in a fresh interpreter",
        "",
        "Byte code is cached (`PYTHONPYCACHEPREFIX`, written by a first run), as it is for a wheel that pip installed.",
        "Wall and CPU time of the step in its process; targets are judged on CPU, which a busy machine does not stretch",
        "by making the process wait (on a quiet one the two are equal).",
        "",
        "| step | CPU ms (median) | wall ms (median) | wall ms (min-max) | heavy modules imported |",
        "|---|---:|---:|---:|---|",
    )
    for kind, label in STARTUP:
        runs = results[kind]
        ms = [r["seconds"] * 1e3 for r in runs]
        cpu = _median(runs, "cpu_seconds") * 1e3
        heavy = sorted({m for r in runs for m in r["heavy_modules"]})
        report.add(
            f"| {label} | {cpu:.1f} | {statistics.median(ms):.1f} | {min(ms):.1f}-{max(ms):.1f} | {', '.join(heavy) or 'none'} |"
        )
    report.add("")
    imp = _median(results["import"], "cpu_seconds") * 1e3
    heavy = sorted({m for r in results["import"] for m in r["heavy_modules"]} & {"ray", "vllm"})
    first = _median(results["first-use"], "cpu_seconds") * 1e3
    both = _median(results["first-apply"], "cpu_seconds") * 1e3
    report.target(
        "`import logconf` under 20 ms, pulling in neither ray nor vllm",
        imp < 20 and not heavy,
        f"{imp:.1f} ms, {heavy or 'neither'}; {first:.1f} ms with the first use of `logconf.apply`, {both:.1f} ms with the call",
    )
    app = _median(results["apply"], "cpu_seconds") * 1e3
    cold = _median(results["apply-cold"], "cpu_seconds") * 1e3
    report.target("`apply()` under 10 ms", app < 10, f"{app:.1f} ms; {cold:.1f} ms the first time on a machine (empty cache)")
    bench_processes(report, python, reps, work, app)


def bench_engine(report: Report, vllm_python: str, model: str, reps: int, work: Path) -> None:
    _say(f"vLLM engine start-up: 2 configs x {reps} repetitions (about a minute each on a busy 2-core machine)")
    configs = {"default": {}, "logconf": {"VLLM_LOGGING_CONFIG_PATH": str(ROOT / "vllm_logging.json")}}

    def measure(name: str, rep: int) -> dict[str, Any]:
        out, logs = work / f"engine-{name}-{rep}.json", work / f"engine-{name}-{rep}"
        env = _env(VLLM_CPU_KVCACHE_SPACE="1", LOGCONF_DIR=str(logs), **configs[name])
        result = _file_run(
            [vllm_python, str(BENCH / "startup.py"), "engine", str(out), model], out, env, log=work / f"engine-{name}-{rep}.out"
        )
        result["files"] = sorted(p.name for p in logs.glob("*")) if logs.exists() else []
        return result

    results = interleave(list(configs), reps, measure)
    version = subprocess.run(
        [vllm_python, "-c", "import vllm; print(vllm.__version__)"], capture_output=True, text=True, check=False
    ).stdout.strip()
    report.add(
        f"## 5. vLLM engine start-up (vllm-cpu {version}, tiny Llama, `LLM(...)` from interpreter start to ready)",
        "",
        "| logging | s (median) | s (min-max) | ratio | logconf files written |",
        "|---|---:|---:|---:|---|",
    )
    for name, label in (("default", "vLLM's default logging (baseline)"), ("logconf", "shipped vllm_logging.json")):
        s = [r["seconds"] for r in results[name]]
        files = sorted({f for r in results[name] for f in r["files"]})
        report.add(
            f"| {label} | {statistics.median(s):.1f} | {min(s):.1f}-{max(s):.1f} | "
            f"{paired_ratio(results, name, 'default', 'seconds'):.2f}x | {', '.join(files) or '-'} |"
        )
    report.add("")


def bench_rotation(report: Report, python: str, records: int, reps: int, work: Path) -> None:
    _say(f"rotation: {len(ROTATION)} setups x {reps} repetitions x {records} records, then pause, compression, tools")
    results = _per_record_cases(python, [n for n, _ in ROTATION], records, reps, work / "rotation")
    base, off = "stdlib-filehandler", "logconf-vllm-text"
    report.add(
        "## 11. Long runs: rotation",
        "",
        f"### Per-record cost with rotation on, {records:,} records (quiet; median of {reps} interleaved repetitions)",
        "",
        "Emitting thread: the logging calls alone. CPU: every thread of the process, compression included.",
        "",
        "| setup | emitting thread µs/record | vs stdlib | vs rotation off | CPU µs/record |",
        "|---|---:|---:|---:|---:|",
    )
    for name, label in ROTATION:
        runs = results[name]
        report.add(
            f"| {label} | {_median(runs, 'emit_s') / records * 1e6:.1f} | {paired_ratio(results, name, base, 'emit_s'):.2f}x | "
            f"{paired_ratio(results, name, off, 'emit_s'):.2f}x | {_median(runs, 'cpu_s') / records * 1e6:.1f} |"
        )
    report.add("")
    sys.path.insert(0, str(BENCH))
    import rotation_bench

    lines, ratios = rotation_bench.per_record_thread_cpu(str(work))
    report.add(*lines)
    for name, what in (("on", "on"), ("rotating", "rotating every 1 MiB")):
        report.target(
            f"vLLM config, text, rotation {what}: at most 1.10x the stdlib FileHandler per record (logging thread's CPU)",
            ratios[name] <= 1.10,
            f"{ratios[name]:.2f}x",
        )
    for name, what in (("logconf-vllm-text-rotation-armed", "on"), ("logconf-vllm-text-rotating-1m", "rotating every 1 MiB")):
        ratio = paired_ratio(results, name, base, "emit_s")
        report.target(
            f"vLLM config, text, rotation {what}: at most 1.10x the stdlib FileHandler per record (emitting thread's wall)",
            ratio <= 1.10,
            f"{ratio:.2f}x",
        )
    section = rotation_bench.measure(str(work), with_thread_cpu=False)
    report.add(*section.splitlines()[2:], "")  # its own title is this section's


def bench_ray_json(report: Report, vllm_python: str, records: int, reps: int, work: Path) -> None:
    import ray_json_bench

    _say(f"JSON lines in a Ray actor: {len(ray_json_bench.CASES)} setups x {reps} repetitions x {records} records")
    results = ray_json_bench.measure(str(work), vllm_python, records, reps)
    base, js = "stdlib-filehandler", "logconf-vllm-json"
    sample = results["json-file"]["last"]
    ray_fields = [key for key in ("job_id", "node_id", "worker_id", "actor_id", "actor_name", "task_id") if key in sample]
    report.add(
        f"## 12. JSON lines in a Ray actor, {records:,} records per call",
        "",
        f"One named actor (`eng-0`, rank 0) on a local Ray {results['ray']} cluster loads the shipped vllm_logging.json",
        "with LOGCONF_FORMAT=json, as vLLM does, beside a plain FileHandler with section 1's text format on another",
        "logger; each setup logs in an actor method call of its own, interleaved, in the emitting thread. Every JSON line",
        f"carries {', '.join(f'`{k}`' for k in ray_fields)} (the last one written names the actor `{sample.get('actor_name')}`).",
        "",
        "| setup | emitting thread µs/record | ratio |",
        "|---|---:|---:|",
        f"| plain stdlib FileHandler, same line format (baseline) | {_median(results[base], 'emit_s') / records * 1e6:.1f} "
        "| 1.00x |",
        f"| logconf, shipped vllm_logging.json, JSON, with Ray's context and task id | "
        f"{_median(results[js], 'emit_s') / records * 1e6:.1f} | {paired_ratio(results, js, base, 'emit_s'):.2f}x |",
        f"| reading the task id alone (`logconf.raycontext.task_id_reader()`'s reader) | "
        f"{_median(results['task-id-read'], 'emit_s') / records * 1e6:.2f} | - |",
        "",
    )
    ratio = paired_ratio(results, js, base, "emit_s")
    what = "vLLM config, JSON, in a Ray actor: at most 1.6x the stdlib FileHandler per record"
    report.target(what, ratio <= 1.6, f"{ratio:.2f}x")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter with logconf's deps and loguru (default: this one)")
    parser.add_argument("--vllm-python", help="interpreter with vllm-cpu, for the engine start-up rows (omit to skip them)")
    parser.add_argument("--model", help="model directory for the engine start-up rows")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument(
        "--conditions", default=",".join(CONDITIONS), help="per-record conditions, comma-separated (default: all)"
    )
    parser.add_argument("--sections", help="which numbered sections to run, comma-separated (default: all)")
    parser.add_argument("--disabled-calls", type=int, default=1_000_000)
    parser.add_argument("--append-records", type=int, default=4_000, help="records per multi-process run, shared by the writers")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--engine-reps", type=int, default=3)
    parser.add_argument("--merge-size", default=None, help="input of the merge memory bound, e.g. 256M (default 2G)")
    parser.add_argument(
        "--gather-size", default=None, help="logs spread over the two nodes of the gather benchmark, e.g. 256M (default 2G)"
    )
    parser.add_argument(
        "--errors-size", default=None, help="input of the logconf errors rows of section 9, e.g. 256M (default 2G)"
    )
    parser.add_argument("--report-size", default=None, help="input of the report benchmark, e.g. 256M (default 2G)")
    parser.add_argument("--out", default=str(BENCH / "results.md"))
    args = parser.parse_args(argv)
    if args.reps < 5:
        _say(f"note: {args.reps} repetitions; the issue asks for a median of at least 5")
    conditions = [c for c in args.conditions.split(",") if c]
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown or not conditions:
        parser.error(f"--conditions: unknown {unknown or 'none given'}; choose from {', '.join(CONDITIONS)}")
    wanted = None if args.sections is None else {n.strip() for n in args.sections.split(",")}  # None: every section

    started = time.time()
    report = Report()
    failed: list[str] = []
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="logconf-bench-"))
    try:
        sections: list[tuple[str, Callable[[], None]]] = [
            ("1. Per-record cost", lambda: bench_per_record(report, args.python, args.records, args.reps, work, conditions)),
            ("2. Disabled call", lambda: bench_disabled(report, args.python, args.disabled_calls, args.reps, work)),
            ("3. Writer processes", lambda: bench_appenders(report, args.python, args.append_records, args.reps, work)),
            ("4. Start-up", lambda: bench_startup(report, args.python, args.reps, work)),
        ]
        if args.vllm_python and args.model:
            sections.append(
                ("5. vLLM engine start-up", lambda: bench_engine(report, args.vllm_python, args.model, args.engine_reps, work))
            )
        elif wanted is None or "5" in wanted:
            report.add("## 5. vLLM engine start-up", "", "Skipped: pass --vllm-python and --model.", "")
        sys.path.insert(0, str(BENCH))
        import capture_bench
        import failures_bench
        import gather_bench
        import merge_bench
        import report_bench

        merge_size = merge_bench.parse_size(args.merge_size) if args.merge_size else None
        sections += [
            ("6. Merge: memory bound and speed", lambda: report.add(merge_bench.measure(str(work), merge_size), "")),
            ("7. Stdio tee: cost per MB", lambda: report.add(capture_bench.measure(str(work)), "")),
        ]
        if args.vllm_python:
            gather_size = merge_bench.parse_size(args.gather_size) if args.gather_size else None
            sections.append(
                (
                    "8. Gather: two nodes",
                    lambda: report.add(gather_bench.measure(str(work), args.vllm_python, gather_size), ""),
                )
            )
        elif wanted is None or "8" in wanted:
            report.add("## 8. Gather: two nodes", "", "Skipped: pass --vllm-python (an environment with Ray).", "")
        errors_size = merge_bench.parse_size(args.errors_size) if args.errors_size else None
        sections.append(
            (
                "9. Finding the failure: stacks and errors",
                lambda: report.add(failures_bench.measure(str(work), args.python, args.vllm_python, errors_size), ""),
            )
        )
        report_size = merge_bench.parse_size(args.report_size) if args.report_size else None
        sections.append(
            ("10. Report: page size and memory bound", lambda: report.add(report_bench.measure(str(work), report_size), ""))
        )
        sections.append(("11. Long runs: rotation", lambda: bench_rotation(report, args.python, args.records, args.reps, work)))
        if args.vllm_python:
            sections.append(
                (
                    "12. JSON lines in a Ray actor",
                    lambda: bench_ray_json(report, args.vllm_python, args.records, args.reps, work),
                )
            )
        elif wanted is None or "12" in wanted:
            report.add("## 12. JSON lines in a Ray actor", "", "Skipped: pass --vllm-python (an environment with Ray).", "")
        for title, section in sections:
            if wanted is not None and title.split(".")[0] not in wanted:
                continue
            try:
                section()
            except Exception as exc:  # one broken section must not cost the others their figures
                _say(f"{title} failed: {exc}")
                failed.append(title)
                report.add(f"## {title}", "", "Not measured in this run: it failed with", "", "```", str(exc).strip(), "```", "")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    head = [
        "# logconf benchmark results",
        "",
        f"`make bench` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}: Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} cores, load average {load_before[0]:.1f} at the start and "
        f"{os.getloadavg()[0]:.1f} at the end; {(time.time() - started) / 60:.1f} min in all.",
        f"Median of {args.reps} interleaved repetitions ({args.engine_reps} for the engine), each in a fresh interpreter;",
        "ratios are medians of the ratios paired within each repetition. Per-record targets are judged",
        "in the emitting thread, the cost a request path pays.",
        "",
        "## Targets",
        "",
        "| target | result |",
        "|---|---|",
        *(f"| {what} | {verdict} |" for what, verdict in report.targets),
        *(f"| every target of section {title} | **NOT MEASURED** (the section failed; see below) |" for title in failed),
        "",
    ]
    text = "\n".join(head + report.lines).rstrip() + "\n"
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
