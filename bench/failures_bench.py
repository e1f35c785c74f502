"""Benchmark finding the failure: `logconf stacks` on N processes (one node, two nodes), `logconf errors` on
2 GB, and what the stack-dump registration and LOGCONF_STALL_S cost.

    python bench/failures_bench.py [--vllm-python .venvs/vllm-0.32.0/bin/python] [--size 2G]

``measure(workdir, python, vllm_python, size)`` returns a Markdown section; bench/run.py calls it.

- stacks, one node: N worker processes (logconf applied, then waiting in a Python wait) on this
  machine; ``python -m logconf stacks --dir`` runs in a child, timed whole, and the collection
  (signal every process, read each dump once whole) is timed in this process as well.
- stacks, two nodes: two raylets on 127.0.0.1 (``logconf.demo.multinode.two_nodes``), N actors
  per node; ``python -m logconf stacks --address`` (Ray's connection included) in a child.
- errors: the merge benchmark's input (every 50th record an ERROR with its traceback) at 1/8 of
  the size and at the full size; ``python -m logconf errors DIR`` in a child whose peak RSS comes
  from wait4 (a flat peak shows the bound).
- cost: the per-record case ``logconf-vllm-text`` of bench/per_record.py with and without
  ``LOGCONF_STALL_S`` (its watcher running beside), paired per repetition; and ``apply()`` with the
  registration (the default) and with ``LOGCONF_STACKS_SIGNAL=off``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
sys.path.insert(0, os.path.join(REPO, "tests"))

import merge_bench  # noqa: E402
from failure_helpers import wait_asleep  # noqa: E402

WAITER = r"""
import logging, sys, threading
import logconf
logconf.apply()
logging.getLogger("skyrl.train").info("waiting")
print("ready", flush=True)
threading.Event().wait()
"""
ONE_NODE = (4, 16, 32)
PER_NODE = 8
REPS = 3


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "VLLM_", "RANK", "RAY_ADDRESS"))}
    env.update(PYTHONPATH=os.pathsep.join([REPO, BENCH]), **extra)
    return env


def _stacks_one_node(python: str, root: str, count: int) -> dict[str, float]:
    logdir, registry = os.path.join(root, f"logs-{count}"), os.path.join(root, f"registry-{count}")
    env = _env(LOGCONF_DIR=logdir, LOGCONF_STACKS_DIR=registry)
    workers = [subprocess.Popen([python, "-c", WAITER], env=env, stdout=subprocess.PIPE, text=True) for _ in range(count)]
    try:
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
        wait_asleep([w.pid for w in workers])
        walls, collections = [], []
        os.environ["LOGCONF_STACKS_DIR"] = registry
        from logconf.stacks import collect_here

        for _ in range(REPS):
            started = time.monotonic()
            done = subprocess.run([python, "-m", "logconf", "stacks", "--dir", logdir], env=env, capture_output=True, text=True)
            walls.append(time.monotonic() - started)
            if done.returncode != 0 or f"{count} dumps" not in done.stdout.splitlines()[0]:
                raise RuntimeError(f"logconf stacks: {done.returncode} {done.stdout[:300]} {done.stderr[-500:]}")
            started = time.monotonic()
            collection = collect_here([logdir])
            collections.append(time.monotonic() - started)
            assert len(collection.dumps) == count and not collection.missing
        return {"wall": statistics.median(walls), "collect": statistics.median(collections)}
    finally:
        os.environ.pop("LOGCONF_STACKS_DIR", None)
        for worker in workers:
            worker.kill()
            worker.wait()
            if worker.stdout is not None:
                worker.stdout.close()


def run_on_cluster(root: str, per_node: int) -> dict[str, Any]:
    """In a Ray environment: two nodes, ``per_node`` waiting actors on each, ``logconf stacks --address`` timed."""
    from logconf.demo.multinode import LOOPBACK, node_ids, two_nodes

    os.environ.update(LOOPBACK)  # before Ray is imported: it reads this at import
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    registry = os.path.join(root, "registry")
    dirs = (os.path.join(root, "node-0"), os.path.join(root, "node-1"))
    with two_nodes(dirs, (1, 1), {"PYTHONPATH": os.pathsep.join([REPO, BENCH]), "LOGCONF_STACKS_DIR": registry}) as cluster:

        @ray.remote(num_cpus=0)
        class Waiter:
            def __init__(self) -> None:
                import logconf

                logconf.apply()

            def pid(self) -> int:
                return os.getpid()

            def wait(self) -> None:
                import threading

                threading.Event().wait()

        ids = node_ids(cluster)
        actors = [
            Waiter.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote()
            for node in ids
            for _ in range(per_node)
        ]
        pids = ray.get([a.pid.remote() for a in actors])
        for actor in actors:
            actor.wait.remote()
        wait_asleep(pids)
        env = {**_env(LOGCONF_STACKS_DIR=registry), **LOOPBACK}
        walls = []
        for _ in range(REPS):
            started = time.monotonic()
            command = [sys.executable, "-m", "logconf", "stacks", "--address", cluster.address]
            command += ["--dir", dirs[0], "--dir", dirs[1]]
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            walls.append(time.monotonic() - started)
            if done.returncode != 0 or f"{2 * per_node} dumps" not in done.stdout.splitlines()[0]:
                raise RuntimeError(f"logconf stacks: {done.returncode} {done.stdout[:300]} {done.stderr[-500:]}")
        for actor in actors:
            ray.kill(actor)
    return {"processes": 2 * per_node, "wall": statistics.median(walls)}


def _timed(command: list[str]) -> tuple[float, float, int]:
    """Run ``command`` with stdout to /dev/null; return (wall seconds, peak RSS MiB, exit status)."""
    started = time.monotonic()
    with open(os.devnull, "wb") as sink:
        child = subprocess.Popen(command, cwd=REPO, env=_env(), stdout=sink)
        _, status, usage = os.wait4(child.pid, 0)
    return time.monotonic() - started, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def _errors_rows(python: str, root: str, size: int) -> list[str]:
    blocks = merge_bench._seed_blocks(os.path.join(root, "seed"))
    rows = []
    for label, part in (("1/8 size", size // 8), ("full size", size)):
        directory = os.path.join(root, f"errors-{part}")
        written, records = merge_bench.generate(directory, part, blocks)
        elapsed, peak, status = _timed([python, "-m", "logconf", "errors", directory])
        if status != 1:  # the input holds errors: 1 is the answer, anything else a failure
            raise RuntimeError(f"logconf errors exited {status}")
        mib = written / 1024**2
        rows.append(f"| logconf errors, {label} | {mib:,.0f} | {records:,} | {elapsed:.1f} | {mib / elapsed:.1f} | {peak:.0f} |")
        shutil.rmtree(directory)
    return rows


def _per_record(python: str, root: str, reps: int) -> tuple[float, float, float]:
    """Median emit seconds without and with LOGCONF_STALL_S, and the median paired ratio."""
    off, on, ratios = [], [], []
    for rep in range(reps):
        pair = {}
        for arm in (("off", "stall") if rep % 2 == 0 else ("stall", "off")):
            out = os.path.join(root, f"per-record-{arm}-{rep}")
            extra = {"LOGCONF_STACKS_DIR": os.path.join(root, "registry-pr")}
            if arm == "stall":
                extra["LOGCONF_STALL_S"] = "4"  # its watcher looks at the files every second meanwhile
            done = subprocess.run(
                [python, os.path.join(BENCH, "per_record.py"), "logconf-vllm-text", "100000", out],
                env=_env(**extra),
                capture_output=True,
                text=True,
                check=True,
            )
            pair[arm] = json.loads(done.stdout.strip().splitlines()[-1])["emit_s"]
        off.append(pair["off"])
        on.append(pair["stall"])
        ratios.append(pair["stall"] / pair["off"])
    return statistics.median(off), statistics.median(on), statistics.median(ratios)


_APPLY = "import time; t = time.perf_counter(); import logconf; logconf.apply(); print(time.perf_counter() - t)"


def _apply_cost(python: str, root: str, reps: int) -> tuple[float, float]:
    """Median seconds of ``import logconf; logconf.apply()`` with the stack registration, and without it."""
    times: dict[str, list[float]] = {"on": [], "off": []}
    for rep in range(reps):
        for arm in ("on", "off") if rep % 2 == 0 else ("off", "on"):
            extra = {"LOGCONF_DIR": os.path.join(root, "apply"), "LOGCONF_STACKS_DIR": os.path.join(root, "registry-apply")}
            if arm == "off":
                extra["LOGCONF_STACKS_SIGNAL"] = "off"
            done = subprocess.run([python, "-c", _APPLY], env=_env(**extra), capture_output=True, text=True, check=True)
            times[arm].append(float(done.stdout))
    return statistics.median(times["on"]), statistics.median(times["off"])


def measure(workdir: str, python: str, vllm_python: str | None = None, size: int | None = None) -> str:
    """Run every part; return a Markdown section."""
    size = size or merge_bench.parse_size(os.environ.get("LOGCONF_BENCH_ERRORS_SIZE", str(merge_bench.DEFAULT_SIZE)))
    root = tempfile.mkdtemp(prefix="failures-bench-", dir=workdir)
    try:
        one_node = {n: _stacks_one_node(python, root, n) for n in ONE_NODE}
        cluster = None
        if vllm_python:
            done = subprocess.run(
                [vllm_python, os.path.abspath(__file__), "--cluster-run", os.path.join(root, "cluster")],
                cwd=REPO,
                env=_env(),
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise RuntimeError(f"the two-node side failed ({done.returncode}):\n{done.stderr[-3000:]}")
            cluster = json.loads(done.stdout.strip().splitlines()[-1])
        errors = _errors_rows(python, root, size)
        off, on, ratio = _per_record(python, root, 5)
        apply_on, apply_off = _apply_cost(python, root, 5)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    stacks_rows = [f"| one node, {n} processes | {r['collect']:.2f} | {r['wall']:.2f} |" for n, r in one_node.items()]
    if cluster:
        stacks_rows.append(f"| two nodes (Ray), {cluster['processes']} actors | - | {cluster['wall']:.2f} |")
    else:
        stacks_rows.append("| two nodes (Ray) | skipped: pass --vllm-python (an environment with Ray) | - |")
    return "\n".join(
        [
            "## Finding the failure: logconf stacks, logconf errors, and what they cost",
            "",
            f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end. "
            f"Medians of {REPS} runs. `collect` is the signalling and reading of every dump (each taken whole once its "
            "file has not grown for 0.2 s), timed in the bench process; the command adds its interpreter's start and, "
            "on Ray, the connection to the cluster and one task per node.",
            "",
            "| logconf stacks | collect s | whole command s |",
            "|---|---:|---:|",
            *stacks_rows,
            "",
            "`logconf errors` on the merge benchmark's input (8 rank files, every 50th record an ERROR with its "
            "traceback); output to /dev/null, peak RSS from wait4. A flat peak across sizes shows the bound: one "
            "record per file being read, 1,000 distinct errors at most, 5 lines of context per process.",
            "",
            "| run | input MiB | records | seconds | MiB/s | peak RSS MiB |",
            "|---|---:|---:|---:|---:|---:|",
            *errors,
            "",
            "What it costs a process that logs (5 paired repetitions, fresh interpreters):",
            "",
            "| | without | with | ratio (paired) |",
            "|---|---:|---:|---:|",
            f"| per record, shipped vllm JSON, text, 100k records, LOGCONF_STALL_S=4 (watcher beside) | "
            f"{off / 1e5 * 1e6:.2f} µs | {on / 1e5 * 1e6:.2f} µs | {ratio:.2f}x |",
            f"| `import logconf; apply()`, stack registration (default) vs LOGCONF_STACKS_SIGNAL=off | "
            f"{apply_off * 1e3:.1f} ms | {apply_on * 1e3:.1f} ms | {apply_on / apply_off:.2f}x |",
            "",
            "Nothing is added per record: the registration runs once per process, and the stall watcher is a "
            "process of its own that stats the rank files.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vllm-python", help="an environment with Ray, for the two-node row")
    parser.add_argument("--size", default=None, help="input of `logconf errors`, e.g. 256M (default 2G)")
    parser.add_argument("--workdir", default=tempfile.gettempdir())
    parser.add_argument("--cluster-run", metavar="ROOT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cluster_run:
        print(json.dumps(run_on_cluster(args.cluster_run, PER_NODE)))
        return 0
    size = merge_bench.parse_size(args.size) if args.size else None
    print(measure(args.workdir, sys.executable, args.vllm_python, size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
