"""Run the demo job and print a summary of the log files it wrote.

python -m logconf.demo --out demo-logs [--format json] [--late-rank]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import logconf
from logconf.summary import FileSummary, summarise

DEFAULT_MODEL = os.path.join(os.path.expanduser("~"), ".cache", "logconf", "tiny-llama")


def run(out: str, fmt: str, steps: int, late_rank: bool, model: str) -> dict:
    """Run 2 engine actors and a trainer actor on a local Ray cluster; return what happened."""
    import ray

    from logconf.demo.model import build_tiny_llama

    out = os.path.abspath(out)
    # What the README asks of a user: the two variables, exported before anything starts.
    os.environ["LOGCONF_DIR"] = out
    os.environ["LOGCONF_FORMAT"] = fmt
    os.environ.setdefault("VLLM_LOGGING_CONFIG_PATH", logconf.vllm_config_path())
    build_tiny_llama(model)
    started = time.monotonic()
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ray.init(
        address="local",  # a cluster of its own, whatever other cluster this machine runs
        num_cpus=4,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",  # a local cluster on loopback only
        log_to_driver=True,
        runtime_env=logconf.ray_runtime_env({"env_vars": {"VLLM_CPU_KVCACHE_SPACE": "1", "PYTHONPATH": here}}),
    )
    # The driver imports actor modules, and with them vLLM: its own vLLM records get a file of
    # their own. Set after ray.init, so that Ray's workers do not inherit it.
    os.environ["LOGCONF_RANK"] = "driver"
    try:
        from logconf.demo.actors import EngineActor, TrainerActor

        engines = [EngineActor.options(**logconf.engine_options(0), num_cpus=1).remote(model)]
        if late_rank:
            from logconf.demo.late_engine import LateRankEngineActor

            engines.append(LateRankEngineActor.options(num_cpus=1).remote(model, 1))
        else:
            engines.append(EngineActor.options(**logconf.engine_options(1), num_cpus=1).remote(model))
        trainer = TrainerActor.options(num_cpus=1, runtime_env={"env_vars": {"RANK": "0"}}).remote()
        result = ray.get(trainer.train.remote(engines, steps, 2, 8))
        result["engine_actor_pids"] = [ray.get(e.pids.remote())["actor"] for e in engines]
        ray.get([e.shutdown.remote() for e in engines])
        for actor in [*engines, trainer]:
            ray.kill(actor)
    finally:
        ray.shutdown()
    result["seconds"] = round(time.monotonic() - started, 1)
    with open(os.path.join(out, "demo-run.json"), "w", encoding="utf-8") as file:
        json.dump(result, file)
    return result


def demo_table(summaries: list[FileSummary]) -> str:
    """The run's files in a few columns; ``logconf summary DIR`` has the full picture."""
    rows = ["| file | lines | bytes | processes | loggers | foreign lines |", "|---|---:|---:|---|---:|---:|"]
    for s in summaries:
        names = ", ".join(sorted(p.rsplit(":", 1)[0] for p in s.processes))
        rows.append(f"| {s.file} | {s.lines} | {s.bytes} | {len(s.processes)} ({names}) | {len(s.loggers)} | {s.foreign} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m logconf.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="demo-logs", help="LOGCONF_DIR for the run (default: demo-logs)")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--late-rank", action="store_true", help="engine 1 learns its rank in __init__")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="where the tiny model is built or found")
    args = parser.parse_args(argv)
    result = run(args.out, args.format, args.steps, args.late_rank, args.model)
    summaries = summarise(os.path.abspath(args.out))
    print(f"\n{result['steps']} training steps, {result['tokens']} tokens generated, {result['seconds']} s on Ray")
    print(demo_table(summaries))
    return 1 if any(s.problems for s in summaries) else 0


if __name__ == "__main__":
    sys.exit(main())
