"""Records held by Ray actors without a rank, on a real local Ray cluster: on disk whatever ends the
actor (ray.kill, the driver's ray.shutdown()), and through a real uvicorn and vLLM dictConfig."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from logconf.logfiles import RECORD, iter_entries, rank_names

from .demo_runs import REPO, vllm_python

pytestmark = pytest.mark.real_vllm

HERE = Path(__file__).resolve().parent

JOB = r"""
import json, os, sys, time
import ray

logdir = sys.argv[1]
env_vars = {"LOGCONF_DIR": logdir, "PYTHONPATH": os.environ["PYTHONPATH"]}
ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", runtime_env={"env_vars": env_vars})
from hold_actors import ReconfiguredEngine, UnrankedEngine

reconfigured = ReconfiguredEngine.remote()
killed, shut_down = UnrankedEngine.remote("killed"), UnrankedEngine.remote("shut down")
pids = {"reconfigured": ray.get(reconfigured.run.remote(3))}
pids["killed"], pids["shut down"] = ray.get([killed.pid.remote(), shut_down.pid.remote()])
ray.kill(killed)  # SIGKILL, as the OOM killer would
print(json.dumps(pids), flush=True)
ray.shutdown()  # well within the 60 s hold of the other unranked actor
"""


def gone(pid: int, limit_s: float = 60.0) -> bool:
    """Wait until process ``pid`` has ended (Ray ends its workers after the driver has gone)."""
    deadline = time.monotonic() + limit_s
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.1)
    return not os.path.exists(f"/proc/{pid}")


def records(logdir: Path) -> list[tuple[str, str, int, str]]:
    """(file, rank, pid, message) of every record of every rank file the tools read."""
    found = []
    for name in rank_names(str(logdir)):
        for entry in iter_entries(str(logdir / name)):
            assert entry.kind == RECORD, (name, entry)
            assert entry.record is not None
            found.append((name, entry.record["rank"], int(entry.record["pid"]), entry.record["message"]))
    return found


def test_held_records_survive_ray_kill_ray_shutdown_and_a_foreign_dictconfig(tmp_path):
    logdir = tmp_path / "logs"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "VLLM_", "RANK", "RAY_ADDRESS"))}
    env.update(PYTHONPATH=f"{HERE}:{REPO}")
    done = subprocess.run(
        [str(vllm_python("0.32.0")), "-c", JOB, str(logdir)], env=env, cwd=HERE, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]
    pids = json.loads(done.stdout.strip().splitlines()[-1])
    assert gone(pids["killed"]) and gone(pids["shut down"]), pids
    found = records(logdir)
    # ray.kill (SIGKILL): the record is in the actor's spill file, which the tools read.
    killed = pids["killed"]
    assert [r for r in found if r[2] == killed] == [
        (f"vllm_rank_held-{killed}.log", f"held-{killed}", killed, "killed: engine starting")
    ]
    # ray.shutdown() by the driver within the hold: the record is on disk, once.
    shut_down = [r for r in found if r[2] == pids["shut down"]]
    assert [r[3] for r in shut_down] == ["shut down: engine starting"], shut_down
    # uvicorn's dictConfig and vLLM's again did not end the hold: every record reached rank 3.
    reconfigured = pids["reconfigured"]
    assert [r for r in found if r[2] == reconfigured] == [
        ("vllm_rank_3.log", "3", reconfigured, message)
        for message in ("before uvicorn", "after uvicorn", "after vLLM's config again", "ranked")
    ]
    summary = subprocess.run([sys.executable, "-m", "logconf", "summary", str(logdir), "--json"], capture_output=True, text=True)
    assert summary.returncode == 0, summary.stdout + summary.stderr
    print("shut-down actor's record:", shut_down)
