"""Benchmark `logconf gather` on a real two-node local Ray cluster: throughput and peak memory.

    python bench/gather_bench.py --vllm-python .venvs/vllm-0.32.0/bin/python [--size 2G]

``measure(workdir, python)`` returns a Markdown section; bench/run.py calls it. The input is the
merge benchmark's (records written by the shipped configs, repeated with later timestamps):
8 rank files, 4 in each node's LOGCONF_DIR, ``--size`` in all (default 2 GB). Two raylets on
127.0.0.1 (``logconf.demo.multinode.two_nodes``) each read their own directory; gather runs as
``python -m logconf gather DEST`` in a child whose peak RSS comes from ``wait4``, and the node
side's peak is the largest RSS a reading task reported. It runs at 1/8 of the size and at the
full size (a flat peak shows the bound); at the full size also again (nothing new: each copy
checked and kept), with ``--jobs 1``, and as a plain ``cp -r`` on the same disk, for contrast.
No absolute limit is asserted: compare the rows of one run.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import merge_bench  # noqa: E402

DEFAULT_SIZE = 2 * 1024**3


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "RAY_ADDRESS"))}
    env["PYTHONPATH"] = REPO
    return env


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """Run ``command``; return (wall seconds, peak RSS MiB, peak private RSS MiB, stdout) of that child.

    The peak RSS comes from wait4; the private (anonymous) part is sampled every 20 ms.
    """
    from logconf.gather import memory_kib

    started = time.monotonic()
    child = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    peak_anon = [0]
    running = threading.Event()
    running.set()

    def sample() -> None:
        while running.is_set():
            peak_anon[0] = max(peak_anon[0], memory_kib(child.pid)[1])
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = child.stdout.read()
    running.clear()
    sampler.join()
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{command} exited {os.waitstatus_to_exitcode(status)}:\n{out[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024, peak_anon[0] / 1024, out


STORE_MIB = 200  # each node's object store (logconf.demo.multinode.two_nodes)


def _identical(dest: str, dirs: tuple[str, ...]) -> bool:
    """Whether DEST holds one subdirectory per node directory, each file byte for byte the node's."""
    with open(os.path.join(dest, "logconf-gather.json"), encoding="utf-8") as file:
        nodes = json.load(file)["nodes"]
    same = sorted(info["dir"] for info in nodes.values()) == sorted(dirs)
    for name, info in nodes.items():
        names = os.listdir(info["dir"])
        _, mismatch, errors = filecmp.cmpfiles(info["dir"], os.path.join(dest, name), names, shallow=False)
        same = same and not mismatch and not errors and sorted(os.listdir(os.path.join(dest, name))) == sorted(names)
    return same


def run_on_cluster(root: str, full: bool) -> dict[str, object]:
    """In a Ray environment: start two nodes on ``root/node-0`` and ``root/node-1`` and gather their files.

    Always a first gather into an empty DEST; with ``full``, also a gather again (nothing new),
    one with ``--jobs 1`` into another empty DEST, and a plain ``cp -r`` for contrast.
    """
    from logconf.demo.multinode import LOOPBACK, two_nodes

    dirs = (os.path.join(root, "node-0"), os.path.join(root, "node-1"))
    size = sum(os.path.getsize(os.path.join(d, n)) for d in dirs for n in os.listdir(d))
    results: dict[str, object] = {"bytes": size, "files": sum(len(os.listdir(d)) for d in dirs), "identical": True}
    with two_nodes(dirs, (1, 1)) as cluster:
        env = {**_env(), **LOOPBACK}
        runs = [("first", "gathered", ()), ("again", "gathered", ()), ("one job", "gathered-1", ("--jobs", "1"))]
        for label, dest, extra in runs if full else runs[:1]:
            target = os.path.join(root, dest)
            command = [sys.executable, "-m", "logconf", "gather", target, "--address", cluster.address, *extra]
            elapsed, peak, anon, out = _timed(command, env)
            node_peak = [line.rsplit(": ", 1)[1] for line in out.splitlines() if "node readers" in line]
            results[label] = {
                "seconds": elapsed,
                "peak_rss_mib": peak,
                "peak_anon_mib": anon,
                "node_peak": node_peak[0] if node_peak else "-",
            }
            results["identical"] = results["identical"] and _identical(target, dirs)
            if label != "first":
                shutil.rmtree(target)
    shutil.rmtree(os.path.join(root, "gathered"), ignore_errors=True)
    if full:
        started = time.monotonic()
        subprocess.run(["cp", "-r", dirs[0], dirs[1], tempfile.mkdtemp(dir=root)], check=True)
        results["cp_seconds"] = time.monotonic() - started
    return results


def generate(root: str, size: int) -> None:
    """Write the merge benchmark's 8 rank files, ``size`` bytes in all, half into each node's directory."""
    blocks = merge_bench._seed_blocks(os.path.join(root, "seed"))
    names = sorted(blocks)
    for index, directory in enumerate(("node-0", "node-1")):
        part = {n: blocks[n] for n in names[index::2]}
        merge_bench.generate(os.path.join(root, directory), size // 2, part)
    shutil.rmtree(os.path.join(root, "seed"))


def _cluster_side(python: str, root: str, full: bool) -> dict[str, Any]:
    done = subprocess.run(
        [python, os.path.abspath(__file__), "--cluster-run", root, *(["--full"] if full else [])],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the cluster side failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _row(label: str, mib: float, run: dict[str, Any]) -> str:
    rate = f"{mib / run['seconds']:.1f}" if mib else "-"
    memory = f"{run['peak_rss_mib']:.0f} ({run['peak_anon_mib']:.0f} private)"
    return f"| {label} | {mib:,.0f} | {run['seconds']:.1f} | {rate} | {memory} | {run['node_peak']} |"


def measure(workdir: str, python: str, size: int | None = None) -> str:
    """Generate the inputs, run the cluster side in ``python`` (an environment with Ray), return a Markdown section."""
    size = size or merge_bench.parse_size(os.environ.get("LOGCONF_BENCH_GATHER_SIZE", str(DEFAULT_SIZE)))
    results = {}
    for label, part in (("small", size // 8), ("full", size)):
        root = tempfile.mkdtemp(prefix="gather-bench-", dir=workdir)
        try:
            generate(root, part)
            results[label] = _cluster_side(python, root, label == "full")
        finally:
            shutil.rmtree(root, ignore_errors=True)
    small, full = results["small"], results["full"]
    small_mib, mib = small["bytes"] / 1024**2, full["bytes"] / 1024**2
    rows = [
        _row("gather, 1/8 size, empty DEST", small_mib, small["first"]),
        _row("gather, full size, empty DEST", mib, full["first"]),
        _row("gather again, full size, nothing new", 0, full["again"]),
        _row("gather --jobs 1, full size, empty DEST", mib, full["one job"]),
        f"| cp -r of both directories, same disk | {mib:,.0f} | {full['cp_seconds']:.1f} "
        f"| {mib / full['cp_seconds']:.1f} | - | - |",
    ]
    identical = "yes" if small["identical"] and full["identical"] else "NO"
    return "\n".join(
        [
            "## logconf gather: throughput and peak memory",
            "",
            f"{full['files']} rank files (the merge benchmark's), half in each of two nodes' LOGCONF_DIR: two raylets on "
            f"127.0.0.1 (ray.cluster_utils.Cluster), one CPU and a {STORE_MIB} MiB object store each. `python -m logconf "
            f"gather DEST --address ...` runs in a child; its peak RSS comes from wait4. Chunks of 8 MiB, 4 files at once "
            f"unless said. Every copy byte-identical to its source: {identical}. Python {sys.version.split()[0]}, "
            f"{os.cpu_count()} CPUs.",
            "",
            "| run | MiB copied | seconds | MiB/s | gather's peak RSS MiB | node readers' peak RSS |",
            "|---|---:|---:|---:|---:|---:|",
            *rows,
            "",
            "Bound: the caller holds the chunks in flight (one per file being copied), each node's reading task one, "
            "and Ray's generator backpressure lets at most 2 wait per file in the object store, whatever the files' "
            "size. RSS also counts the object-store pages a process has mapped (shared memory, at most the store's "
            "size, reused): the private part, sampled every 20 ms for gather and after each chunk on the nodes, is "
            "what the process itself holds. Compare the 1/8-size and full-size rows.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vllm-python", help="an interpreter with Ray (default: this one)", default=sys.executable)
    parser.add_argument("--workdir", default=tempfile.gettempdir(), help="where the inputs are generated (deleted after)")
    parser.add_argument("--size", default=None, help="total input size, e.g. 2G (default) or 256M")
    parser.add_argument("--cluster-run", metavar="ROOT", help=argparse.SUPPRESS)
    parser.add_argument("--full", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cluster_run:
        print(json.dumps(run_on_cluster(args.cluster_run, args.full)))
        return 0
    print(measure(args.workdir, args.vllm_python, merge_bench.parse_size(args.size) if args.size else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
