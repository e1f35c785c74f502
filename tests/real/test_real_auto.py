"""LOGCONF_AUTO=1 on a real local Ray cluster: workers configured at start, Ray's daemons left alone."""

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

JOB = r"""
import json, os, sys, time
import ray

logdir = sys.argv[1]
if os.environ.get("LOGCONF_AUTO") == "1":  # exported in the shell: the local cluster inherits it
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")
else:  # given to Ray's workers only, in the job's runtime_env
    env_vars = {"LOGCONF_AUTO": "1", "LOGCONF_DIR": logdir, "LOGCONF_RANK_HOLD_S": "3"}
    env_vars["PYTHONPATH"] = os.environ["PYTHONPATH"]
    runtime_env = {"env_vars": env_vars}
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", runtime_env=runtime_env)
from auto_actors import PolicyWorker, rollout

worker = PolicyWorker.remote(1)
worker_pid = ray.get(worker.work.remote())
task_pid = ray.get(rollout.remote())
held = os.path.join(logdir, "skyrl_rank_0.log")
deadline = time.monotonic() + 60
while "rollout done" not in (open(held).read() if os.path.exists(held) else "") and time.monotonic() < deadline:
    time.sleep(0.1)
AGENTS = {"ray/dashboard/agent.py": "ray::DashboardAgent", "ray/_private/runtime_env/agent/main.py": "ray::RuntimeEnvAgent"}


def ours(pid):
    # A process of this job's cluster: it has this job's LOGCONF_DIR, or its parent (the raylet)
    # has; a process that retitles itself (Ray's agents) can overwrite its own /proc environ.
    try:
        if f"LOGCONF_DIR={logdir}".encode() in open(f"/proc/{pid}/environ", "rb").read():
            return True
        parent = open(f"/proc/{pid}/stat", "rb").read().rsplit(b")", 1)[1].split()[1].decode()
        return f"LOGCONF_DIR={logdir}".encode() in open(f"/proc/{parent}/environ", "rb").read()
    except (OSError, IndexError):
        return False


def scan():
    daemons = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        title = argv[0].decode(errors="replace").strip()
        script = next((a.decode() for a in argv[1:3] if a.endswith(b".py")), "")
        if title in ("ray::DashboardAgent", "ray::RuntimeEnvAgent"):  # the agents retitle themselves
            script = title
        elif "/ray/" not in script or script.endswith("default_worker.py"):
            continue
        if not ours(pid):
            continue
        fds = []
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                fds.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:
                pass
        name = script.rsplit("site-packages/", 1)[-1]
        name = AGENTS.get(name, name)  # an agent that has not retitled itself yet
        daemons[name] = [f for f in fds if f.startswith(logdir)]
    return daemons


DAEMONS = {"ray/_private/log_monitor.py", "ray/dashboard/dashboard.py", "ray::DashboardAgent", "ray::RuntimeEnvAgent"}
deadline = time.monotonic() + 120
daemons = scan()
# The agents may still be starting (and retitling themselves); with a runtime_env no daemon
# sees LOGCONF_DIR at all.
while os.environ.get("LOGCONF_AUTO") == "1" and not DAEMONS <= set(daemons) and time.monotonic() < deadline:
    time.sleep(0.5)
    daemons = scan()
ray.shutdown()
print(json.dumps({"worker_pid": worker_pid, "task_pid": task_pid, "daemons": daemons}))
"""


@pytest.mark.parametrize("given", ["exported", "runtime_env"])
def test_auto_configures_ray_workers_at_start_and_leaves_rays_daemons_alone(tmp_path, given):
    """LOGCONF_AUTO=1 exported for the job, or in its Ray runtime_env, and nothing else of logconf:
    an actor and a task are configured; Ray's daemons, which see the exported variable, are not."""
    logdir = tmp_path / "logs"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "VLLM_", "RANK", "RAY_ADDRESS"))}
    env.update(PYTHONPATH=f"{HERE}:{REPO}")
    if given == "exported":
        env.update(LOGCONF_AUTO="1", LOGCONF_DIR=str(logdir), LOGCONF_RANK_HOLD_S="3")
    done = subprocess.run(
        [str(vllm_python("0.32.0")), "-c", JOB, str(logdir)], env=env, cwd=HERE, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # Ray's own Python processes: none opened a logconf file (with runtime_env, none sees the variables).
    if given == "exported":
        seen = {"ray/_private/log_monitor.py", "ray/dashboard/dashboard.py", "ray::DashboardAgent", "ray::RuntimeEnvAgent"}
        assert seen <= set(result["daemons"]), result["daemons"]
        assert all(files == [] for files in result["daemons"].values()), result["daemons"]
    else:
        assert result["daemons"] == {}
    worker = [parse_line(line) for line in (logdir / "skyrl_rank_1.log").read_text().splitlines()]
    assert [(r["process_name"], r["pid"], r["rank"], r["message"]) for r in worker] == [
        ("PolicyWorker", result["worker_pid"], "1", "policy before its rank"),
        ("PolicyWorker", result["worker_pid"], "1", "policy ready"),
        ("PolicyWorker", result["worker_pid"], "1", "policy step"),
    ]
    task = [parse_line(line) for line in (logdir / "skyrl_rank_0.log").read_text().splitlines()]
    task = [r for r in task if r["pid"] == result["task_pid"]]
    assert [(r["process_name"], r["rank"], r["logger"], r["message"]) for r in task] == [
        ("MainProcess", "0", "skyrl_gym.rollout", "rollout done")
    ]
    assert done.stderr.count("policy step") == 1  # the WARNING, forwarded once by Ray to the driver


OBSERVED_JOB = r"""
import json, os, socket, sys, time
import ray
from ray.cluster_utils import Cluster

observe = os.environ["OBSERVE_LOGGING_DIR"]
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    client_port = s.getsockname()[1]
node = {"node_ip_address": "127.0.0.1", "include_dashboard": False, "num_cpus": 1, "ray_client_server_port": client_port}
cluster = Cluster(initialize_head=True, head_node_args=node)
try:
    ray.init(address=cluster.address)
    from auto_actors import PolicyWorker

    worker = PolicyWorker.remote(1)
    worker_pid = ray.get(worker.work.remote())
    open(os.path.join(observe, "go"), "w").close()
    # Every daemon reports again and again; wait until each has run long enough to have set up its logging.
    wanted = ("log_monitor.py", "dashboard.py", "agent.py", "main.py", "ray/util/client/server/__main__.py")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        reports = []
        for name in os.listdir(observe):
            if name.endswith(".json"):
                try:
                    reports.append(json.load(open(os.path.join(observe, name))))
                except ValueError:
                    pass  # being replaced
        ready = [w for w in wanted if any(r["argv"] and r["argv"][0].endswith(w) and r["age_s"] >= 20 for r in reports)]
        if len(ready) == len(wanted):
            break
        time.sleep(1)
    ray.shutdown()
finally:
    cluster.shutdown()
driver = sorted(m for m in sys.modules if m == "logconf" or m.startswith("logconf."))
print(json.dumps({"worker_pid": worker_pid, "driver_pid": os.getpid(), "driver_logconf": driver, "reports": reports}))
"""
HOOK = {"logconf", "logconf.auto", "logconf.raycontext"}  # the start-up hook (raycontext where argv[0] names ray)


def hook_only(modules: list[str]) -> bool:
    """Whether the logconf modules a process loaded are the start-up hook's and nothing more."""
    return "logconf.auto" in modules and set(modules) <= HOOK


def test_rays_daemons_are_left_alone_however_started_seen_from_inside_each_process(tmp_path):
    """LOGCONF_AUTO=1 exported for a real local cluster whose head also runs Ray's client server
    (`python -m ray.util.client.server`, sys.argv ['-m'] when the start-up file runs). Seen from inside
    each process (tests/real/observer): every Ray daemon, and the driver, which imports Ray but no
    framework, hold the start-up hook and nothing else of logconf, no logconf handler, no vLLM config
    path; the Ray worker holds logconf's handlers and writes its rank's file."""
    logdir, observe = tmp_path / "logs", tmp_path / "observe"
    observe.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "VLLM_", "RANK", "RAY_ADDRESS"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(HERE / "observer"), str(HERE), str(REPO)]),
        LOGCONF_AUTO="1", LOGCONF_DIR=str(logdir), OBSERVE_LOGGING_DIR=str(observe),
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # else Ray swaps 127.0.0.1 for an outward address it does not listen on
    )  # fmt: skip
    done = subprocess.run(
        [str(vllm_python("0.32.0")), "-c", OBSERVED_JOB], env=env, cwd=HERE, capture_output=True, text=True, timeout=400
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    reports = {r["pid"]: r for r in result["reports"]}
    worker = reports.pop(result["worker_pid"])
    daemons = {
        r["argv"][0].rsplit("site-packages/", 1)[-1]: r
        for r in reports.values()
        if "/ray/" in r["argv"][0] and not r["argv"][0].endswith("default_worker.py")
    }
    started = {
        "ray/_private/log_monitor.py", "ray/dashboard/dashboard.py", "ray/dashboard/agent.py",
        "ray/_private/runtime_env/agent/main.py", "ray/util/client/server/__main__.py",
    }  # fmt: skip
    assert started <= set(daemons), sorted(daemons)
    for name, report in daemons.items():
        logconf_handlers = {k: v for k, v in report["handlers"].items() if any(h.startswith("logconf.") for h in v)}
        assert hook_only(report["logconf_modules"]), (name, report["logconf_modules"])
        assert (report["vllm_config_path"], logconf_handlers) == (None, {}), name
    assert hook_only(result["driver_logconf"]), result["driver_logconf"]
    assert "logconf.config" in worker["logconf_modules"]
    assert "logconf.handlers.ConsoleHandler" in worker["handlers"]["<root>"]
    assert [parse_line(line)["message"] for line in (logdir / "skyrl_rank_1.log").read_text().splitlines()] == [
        "policy before its rank",
        "policy ready",
        "policy step",
    ]
