"""JSON lines in a real named Ray actor: Ray's context on every line, looked up once per formatter, not per record."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from logconf.records import parse_line

from .demo_runs import REPO, vllm_python

pytestmark = pytest.mark.real_vllm

HERE = Path(__file__).resolve().parent
RECORDS = 1_000

JOB = r"""
import json, os, sys
import ray
import logconf

logdir, records = sys.argv[1], int(sys.argv[2])
env_vars = {"LOGCONF_DIR": logdir, "LOGCONF_FORMAT": "json", "PYTHONPATH": os.environ["PYTHONPATH"]}
ray.init(num_cpus=1, include_dashboard=False, _node_ip_address="127.0.0.1", runtime_env={"env_vars": env_vars})
from json_actors import JsonEngine

engine = JsonEngine.options(**logconf.engine_options(0, name="eng-0")).remote(records)
result = ray.get(engine.run.remote(records))
context = ray.get_runtime_context()
result.update(job_id=context.get_job_id(), node_id=context.get_node_id(), actor_id=engine._actor_id.hex())
ray.shutdown()
print(json.dumps(result))
"""


class Run:
    def __init__(self, result: dict, records: list[dict]) -> None:
        self.result, self.records = result, records


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    logdir = tmp_path_factory.mktemp("json-actor") / "logs"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "VLLM_", "RANK", "RAY_ADDRESS"))}
    env.update(PYTHONPATH=f"{HERE}:{REPO}")
    done = subprocess.run(
        [str(vllm_python("0.32.0")), "-c", JOB, str(logdir), str(RECORDS)],
        env=env,
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    lines = (logdir / "vllm_rank_0.jsonl").read_text(encoding="utf-8").splitlines()
    records = [parse_line(line) for line in lines]
    assert all(records), [line for line, record in zip(lines, records, strict=True) if not record][:3]
    return Run(result, records)  # type: ignore[arg-type]


def test_a_named_actors_json_lines_carry_its_name_and_rays_ids(run):
    """Every line of the named actor ("eng-0") carries, after host, Ray's job, node, worker and actor ids, the
    actor's name and the running task's id, as Ray's driver sees them; the creation task, then the run() call."""
    result, records = run.result, run.records
    assert len(records) == 2 * RECORDS
    ray_keys = ["host", "job_id", "node_id", "worker_id", "actor_id", "actor_name", "task_id"]
    for record in records:
        keys = list(record)
        assert keys[keys.index("host") : keys.index("host") + len(ray_keys)] == ray_keys, keys
    assert {(r["process_name"], r["pid"], r["rank"], r["host"]) for r in records} == {
        ("JsonEngine", result["pid"], "0", os.uname().nodename)
    }
    assert {(r["job_id"], r["node_id"], r["actor_id"], r["actor_name"]) for r in records} == {
        (result["job_id"], result["node_id"], result["actor_id"], "eng-0")
    }
    assert len({r["worker_id"] for r in records}) == 1
    tasks = [r["task_id"] for r in records]
    assert tasks == [result["init_task"]] * RECORDS + [result["run_task"]] * RECORDS
    assert result["init_task"] != result["run_task"]


def test_the_per_process_lookups_happen_when_the_formatter_is_built_not_per_record(run):
    """Loading the shipped config asks for this process's Ray ids and host once (the JSON file formatter's), for its
    actor class a few times (each formatter's process name, the stack dump's); logging 2,000 records asks for none of
    them again: only the task id is read per record, from the reader built with the formatter."""
    result = run.result
    built = result["built"]
    assert built.get("raycontext.context") == 1, built  # the JSON formatter's _context
    assert built.get("raycontext.task_id_reader") == 1, built
    assert 1 <= built.get("raycontext.actor_class", 0) <= 3, built
    assert built.get("host_name") == 1, built
    assert 1 <= built.get("ray.get_runtime_context", 0) <= 10, built
    assert result["after_init"] == built  # 1,000 records in __init__
    assert result["after_run"] == result["before_run"] == built  # 1,000 more in a method call
