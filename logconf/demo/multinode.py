"""A two-node Ray cluster on one machine, each node with its own LOGCONF_DIR, and the demo job across it.

python -m logconf.demo.multinode --out DIR [--model M] [--hold]

The head node runs engine 0 and the trainer, the second node engine 1; each engine is pinned
to its node. Both nodes are raylets on 127.0.0.1 (``ray.cluster_utils.Cluster``), started with
``LOGCONF_DIR`` set to ``DIR/node-0`` and ``DIR/node-1`` in their environment, next to the rest of
logconf's settings, as ``ray start`` would be on two machines.
With ``--hold`` the cluster stays up after the job, its address and nodes printed as one JSON
line, and ``logconf gather`` runs against it meanwhile. Lines on stdin then change the cluster,
each answered by one JSON line: ``add {"LOGCONF_DIR": ...}`` starts one more node with those
environment variables (``{"node_id": ...}``), ``remove NODE_ID`` stops it as ``ray stop`` would
(``{"removed": NODE_ID}``) and ``kill NODE_ID`` kills its processes at once, as a machine that
dies (``{"killed": NODE_ID}``); each answer comes once Ray no longer lists the node alive (a killed
node stays listed until its missed heartbeats are counted). Any other line, or the end of stdin,
ends the job.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any

import logconf

LOOPBACK = {
    # Ray turns a loopback address given to ray.init into this machine's outward IP, where these
    # loopback-only raylets do not listen; with this unset it keeps 127.0.0.1.
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


NODE = {"node_ip_address": "127.0.0.1", "include_dashboard": False, "object_store_memory": 200 << 20}


def node_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """What every node's raylet environment holds: loopback, this checkout on PYTHONPATH, and ``env``."""
    return {**LOOPBACK, "PYTHONPATH": REPO, **(env or {})}


@contextlib.contextmanager
def two_nodes(dirs: tuple[str, str], cpus: tuple[int, int], env: Mapping[str, str] | None = None) -> Iterator[Any]:
    """Start a head node and one more on 127.0.0.1, node i with LOGCONF_DIR=dirs[i]; yield the Cluster, connected."""
    os.environ.update(LOOPBACK)
    import ray
    from ray.cluster_utils import Cluster

    common = node_env(env)
    cluster = Cluster(
        initialize_head=True, head_node_args={**NODE, "num_cpus": cpus[0], "env_vars": {**common, "LOGCONF_DIR": dirs[0]}}
    )
    try:
        cluster.add_node(**NODE, num_cpus=cpus[1], env_vars={**common, "LOGCONF_DIR": dirs[1]})
        ray.init(address=cluster.address, logging_level="WARNING")
        cluster.wait_for_nodes()
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def node_ids(cluster: Any) -> list[str]:
    """The head's node id, then the other node's."""
    return [cluster.head_node.node_id, *(n.node_id for n in cluster.worker_nodes)]


def run(cluster: Any, model: str, steps: int) -> dict[str, Any]:
    """Run the engines and the trainer across the two nodes; return what happened."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from logconf.demo.actors import EngineActor, TrainerActor

    def on(node_id: str) -> dict[str, Any]:
        return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id, soft=False)}

    started = time.monotonic()
    ids = node_ids(cluster)
    engines = [EngineActor.options(**logconf.engine_options(rank), num_cpus=1, **on(ids[rank])).remote(model) for rank in (0, 1)]
    trainer = TrainerActor.options(num_cpus=1, runtime_env={"env_vars": {"RANK": "0"}}, **on(ids[0])).remote()
    result = ray.get(trainer.train.remote(engines, steps, 2, 8))
    result["engine_actor_pids"] = [ray.get(e.pids.remote())["actor"] for e in engines]
    ray.get([e.shutdown.remote() for e in engines])
    for actor in [*engines, trainer]:
        ray.kill(actor)
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def job_env() -> dict[str, str]:
    """What both nodes' environments hold: logconf's settings, less LOGCONF_DIR, which each node sets itself."""
    env = logconf.ray_runtime_env({"env_vars": {"VLLM_CPU_KVCACHE_SPACE": "1", "PYTHONPATH": REPO}})["env_vars"]
    env.pop("LOGCONF_DIR", None)
    return env


def _wait_until_gone(node_id: str, timeout: float = 180.0) -> None:
    """Return once Ray lists ``node_id`` as dead; a later gather then never picks a node that no longer exists."""
    import ray

    deadline = time.monotonic() + timeout
    while any(n["NodeID"] == node_id and n["Alive"] for n in ray.nodes()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"node {node_id} is still listed alive {timeout:.0f} s after it was stopped")
        time.sleep(0.5)


def hold(cluster: Any, env: Mapping[str, str], lines: Iterator[str]) -> None:
    """Change the held cluster as ``lines`` say (``add {env}``, ``remove ID``, ``kill ID``), answering each on stdout."""
    added = {}
    for line in lines:
        command, _, argument = line.strip().partition(" ")
        if command == "add":
            node = cluster.add_node(**NODE, num_cpus=0, env_vars={**node_env(env), **json.loads(argument)})
            cluster.wait_for_nodes()
            added[node.node_id] = node
            answer: dict[str, Any] = {"node_id": node.node_id}
        elif command in ("remove", "kill"):
            cluster.remove_node(added.pop(argument), allow_graceful=command == "remove")
            _wait_until_gone(argument)
            answer = {"removed" if command == "remove" else "killed": argument}
        else:
            return
        print(json.dumps(answer), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m logconf.demo.multinode", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="node i writes DIR/node-i")
    parser.add_argument("--model", required=True, help="the tiny model's directory (make demo builds it)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--hold", action="store_true", help="keep the cluster up until a line arrives on stdin")
    args = parser.parse_args(argv)
    out = os.path.abspath(args.out)
    dirs = (os.path.join(out, "node-0"), os.path.join(out, "node-1"))
    os.environ.setdefault("VLLM_LOGGING_CONFIG_PATH", logconf.vllm_config_path())
    env = job_env()
    with two_nodes(dirs, (2, 1), env) as cluster:
        result = run(cluster, args.model, args.steps)
        result.update(address=cluster.address, node_ids=node_ids(cluster), dirs=list(dirs))
        print(json.dumps(result), flush=True)
        if args.hold:
            hold(cluster, env, iter(sys.stdin.readline, ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
