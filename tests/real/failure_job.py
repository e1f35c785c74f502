"""A SkyRL-shaped job, logconf set up by LOGCONF_AUTO alone: stacks from a live engine, then an engine that fails to start.

python tests/real/failure_job.py OUT MODEL   (the environment is the test's: LOGCONF_AUTO=1, LOGCONF_DIR=OUT, ...)

1. A real vLLM engine (``logconf.demo.actors.EngineActor``: AsyncLLM in a Ray actor, rank 0,
   with its EngineCore and VllmWorker-0 processes) starts; once it is up the driver runs
   ``python -m logconf stacks --address <its cluster> --dir OUT`` and prints one JSON line: the command's
   exit status, output and seconds, and the engine actor's pid and descendants. The engine
   stays up until the job ends.
2. SkyRL 0.4.0's own ``VLLMServerActor`` (server_idx 1) starts an engine whose EngineCore cannot
   hold the KV cache of one request (``--num-gpu-blocks-override 1``): EngineCore logs "EngineCore
   failed to start." with its traceback, vLLM raises "Engine core initialization failed" in the
   actor, and the driver's ``ray.get`` raises it, uncaught: the driver ends with it.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> int:
    out, model = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    import ray
    from failure_actors import actor_family
    from skyrl.backends.skyrl_train.inference_servers.vllm_server_actor import (  # type: ignore[import-not-found]
        VLLMServerActor,
    )

    import logconf
    from logconf.demo.actors import EngineActor
    from logconf.demo.skyrl import server_cli_args

    context = ray.init(address="local", num_cpus=4, include_dashboard=False, _node_ip_address="127.0.0.1")
    engine = EngineActor.options(**logconf.engine_options(0), num_cpus=1).remote(model)
    family = ray.get(engine.__ray_call__.remote(actor_family))
    started = time.monotonic()
    address = context.address_info["gcs_address"]  # this job's cluster, whatever other cluster the machine runs
    command = [sys.executable, "-m", "logconf", "stacks", os.path.join(out, "..", "stacks"), "--address", address, "--dir", out]
    command += ["--timeout", "60"]  # a loaded machine may take seconds to schedule a process's dump
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    seconds = time.monotonic() - started
    # The engine stays up: its shutdown at the job's end (tracebacks of vLLM's own, in 0.30) is after the failure below.
    result = {"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr[-4000:], "seconds": round(seconds, 2)}
    print(json.dumps({**result, "family": family, "driver": os.getpid()}), flush=True)

    cli_args = server_cli_args(model, "--num-gpu-blocks-override", "1")
    server = ray.remote(num_cpus=1)(VLLMServerActor).remote(
        copy.deepcopy(cli_args),
        start_port=18500,
        server_idx=1,
        distributed_executor_backend="mp",
        enable_ray_prometheus_stats=False,
    )
    ray.get(server.start.remote())  # raises: EngineCore failed to start
    return 0


if __name__ == "__main__":
    sys.exit(main())
