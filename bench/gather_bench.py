"""Benchmark `logconf gather` on a real two-node local Ray cluster: throughput and peak memory.

    python bench/gather_bench.py --vllm-python .venvs/vllm-0.32.0/bin/python [--size 2G]

``measure(workdir, python)`` returns a Markdown section; bench/run.py calls it. The input is the
merge benchmark's (records written by the shipped configs, repeated with later timestamps):
8 rank files, 4 in each node's LOGCONF_DIR, ``--size`` in all (default 2 GB). Two raylets on
127.0.0.1 (``logconf.demo.multinode.two_nodes``) each read their own directory; gather runs as
``python -m logconf gather DEST`` in a child whose peak RSS comes from ``wait4``, and the node
side's peak is the largest RSS a reading task reported. A second gather (nothing new: each copy
checked and kept) and a plain ``cp`` of the same files on the same disk run for contrast.
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
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import merge_bench  # noqa: E402

DEFAULT_SIZE = 2 * 1024**3


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "RAY_ADDRESS"))}
    env["PYTHONPATH"] = REPO
    return env


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``command``; return (wall seconds, peak RSS in MiB, stdout) of that child."""
    started = time.monotonic()
    child = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{command} exited {os.waitstatus_to_exitcode(status)}:\n{out[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024, out


def run_on_cluster(root: str) -> dict[str, object]:
    """In a Ray environment: start two nodes on ``root/node-0`` and ``root/node-1``, gather twice, cp once."""
    from logconf.demo.multinode import LOOPBACK, two_nodes

    dirs = (os.path.join(root, "node-0"), os.path.join(root, "node-1"))
    size = sum(os.path.getsize(os.path.join(d, n)) for d in dirs for n in os.listdir(d))
    dest = os.path.join(root, "gathered")
    results: dict[str, object] = {"bytes": size, "files": sum(len(os.listdir(d)) for d in dirs)}
    with two_nodes(dirs, (1, 1)) as cluster:
        env = {**_env(), **LOOPBACK}
        gather = [sys.executable, "-m", "logconf", "gather", dest, "--address", cluster.address]
        for label in ("first", "again"):
            elapsed, peak, out = _timed(gather, env)
            results[label] = {"seconds": elapsed, "peak_rss_mib": peak, "out": out.splitlines()[-3:]}
        node_peak = [line for line in out.splitlines() if "node readers" in line]
        results["node_peak"] = node_peak[-1] if node_peak else ""
    with open(os.path.join(dest, "logconf-gather.json"), encoding="utf-8") as file:
        nodes = json.load(file)["nodes"]
    identical = sorted(info["dir"] for info in nodes.values()) == sorted(dirs)
    for name, info in nodes.items():
        names = os.listdir(info["dir"])
        _, mismatch, errors = filecmp.cmpfiles(info["dir"], os.path.join(dest, name), names, shallow=False)
        identical = identical and not mismatch and not errors and sorted(os.listdir(os.path.join(dest, name))) == sorted(names)
    results["identical"] = identical
    shutil.rmtree(dest)
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


def measure(workdir: str, python: str, size: int | None = None) -> str:
    """Generate the inputs, run the cluster side in ``python`` (an environment with Ray), return a Markdown section."""
    size = size or merge_bench.parse_size(os.environ.get("LOGCONF_BENCH_GATHER_SIZE", str(DEFAULT_SIZE)))
    root = tempfile.mkdtemp(prefix="gather-bench-", dir=workdir)
    try:
        generate(root, size)
        done = subprocess.run(
            [python, os.path.abspath(__file__), "--cluster-run", root],
            cwd=REPO,
            env=_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"the cluster side failed ({done.returncode}):\n{done.stderr[-3000:]}")
        r = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    mib = r["bytes"] / 1024**2
    first, again = r["first"], r["again"]
    rate = mib / first["seconds"]
    rows = [
        f"| gather, empty DEST | {mib:,.0f} | {first['seconds']:.1f} | {rate:.1f} | {first['peak_rss_mib']:.0f} |",
        f"| gather again, nothing new | 0 | {again['seconds']:.1f} | - | {again['peak_rss_mib']:.0f} |",
        f"| cp -r of both directories, same disk | {mib:,.0f} | {r['cp_seconds']:.1f} | {mib / r['cp_seconds']:.1f} | - |",
    ]
    return "\n".join(
        [
            "## logconf gather: throughput and peak memory",
            "",
            f"{r['files']} rank files, {mib:,.0f} MiB in all, half in each of two nodes' LOGCONF_DIR: two raylets on "
            f"127.0.0.1 (ray.cluster_utils.Cluster), one CPU each. `python -m logconf gather DEST --address ...` runs in a "
            f"child; its peak RSS comes from wait4. Chunks of 8 MiB. Copies byte-identical to the sources: "
            f"{'yes' if r['identical'] else 'NO'}. "
            f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs.",
            "",
            "| run | MiB copied | seconds | MiB/s | gather's peak RSS MiB |",
            "|---|---:|---:|---:|---:|",
            *rows,
            "",
            f"Node side: {r['node_peak'] or 'not reported'}. Memory is bounded by the chunk size: the caller holds one "
            "chunk, each node's reading task one, and Ray's generator backpressure lets at most 2 wait in a node's "
            "object store, whatever the files' size.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vllm-python", help="an interpreter with Ray (default: this one)", default=sys.executable)
    parser.add_argument("--workdir", default=tempfile.gettempdir(), help="where the inputs are generated (deleted after)")
    parser.add_argument("--size", default=None, help="total input size, e.g. 2G (default) or 256M")
    parser.add_argument("--cluster-run", metavar="ROOT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cluster_run:
        print(json.dumps(run_on_cluster(args.cluster_run)))
        return 0
    print(measure(args.workdir, args.vllm_python, merge_bench.parse_size(args.size) if args.size else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
