"""A two-node Ray job whose workers hang in known places, and `logconf stacks --address` run against it.

python tests/real/stacks_job.py OUT

Two raylets on 127.0.0.1 (``ray.cluster_utils.Cluster``), node i with LOGCONF_DIR=OUT/node-i.
Five ``TrainerWorker`` actors, ranks 0 to 4, pinned: ranks 0, 1 and 4 on the head, 2 and 3 on
the other node. Ranks 0 to 2 wait in ``wait_for_peers``, rank 3 is blocked in a socket's recv,
rank 4 holds the GIL in libc's sleep. The driver applies logconf too (a process that no raylet
started: the head's node task reaches it). Once every worker sleeps where it was sent, the
driver runs ``python -m logconf stacks OUT/stacks --address ...`` and prints one JSON line: the
command's exit status, output and seconds, the workers' pids and nodes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PLAN = [(0, 0, "wait_for_peers"), (1, 0, "wait_for_peers"), (2, 1, "wait_for_peers"), (3, 1, "recv_weights"), (4, 0, "hold_gil")]


def main() -> int:
    out = os.path.abspath(sys.argv[1])
    sys.path[:0] = [REPO, HERE, os.path.join(REPO, "tests")]
    from failure_helpers import wait_asleep

    import logconf
    from logconf.demo.multinode import node_ids, two_nodes

    dirs = (os.path.join(out, "node-0"), os.path.join(out, "node-1"))
    os.environ["LOGCONF_DIR"] = os.path.join(out, "driver")
    logconf.apply()
    env = {"PYTHONPATH": os.pathsep.join([REPO, HERE]), "LOGCONF_STACKS_DIR": os.environ["LOGCONF_STACKS_DIR"]}
    with two_nodes(dirs, (2, 2), env) as cluster:
        import ray
        from failure_actors import TrainerWorker
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ids = node_ids(cluster)
        actors = [
            TrainerWorker.options(
                **logconf.engine_options(rank), scheduling_strategy=NodeAffinitySchedulingStrategy(ids[node], soft=False)
            ).remote()
            for rank, node, _ in PLAN
        ]
        pids = ray.get([a.pid.remote() for a in actors])
        for actor, (_, _, method) in zip(actors, PLAN, strict=True):
            getattr(actor, method).remote()
        wait_asleep(pids, timeout=60)
        started = time.monotonic()
        command = [sys.executable, "-m", "logconf", "stacks", os.path.join(out, "stacks"), "--address", cluster.address]
        command += ["--timeout", "60"]  # a loaded machine may take seconds to schedule a process's dump
        command += ["--dir", dirs[0], "--dir", dirs[1], "--dir", os.environ["LOGCONF_DIR"]]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        seconds = time.monotonic() - started
        result = {
            "rc": done.returncode,
            "stdout": done.stdout,
            "stderr": done.stderr[-4000:],
            "seconds": round(seconds, 2),
            "pids": pids,
            "driver": os.getpid(),
            "node_ids": ids,
        }
        for actor in actors:
            ray.kill(actor)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
