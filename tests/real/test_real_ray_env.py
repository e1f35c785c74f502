"""ray_runtime_env on a real local Ray cluster where the workers' logconf is installed at another path than the driver's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from logconf.records import parse_line

from .demo_runs import REPO, vllm_python

pytestmark = pytest.mark.real_vllm

HERE = Path(__file__).resolve().parent

JOB = r"""
import json, os, sys
import ray
import logconf

copy, logdir = sys.argv[1], sys.argv[2]
runtime_env = logconf.ray_runtime_env({"py_modules": [copy], "env_vars": {"LOGCONF_DIR": logdir}})
ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", runtime_env=runtime_env)
from ray_env_actors import Engine

result = ray.get(Engine.options(**logconf.engine_options(0)).remote().probe.remote())
ray.shutdown()
print(json.dumps({"driver_shipped": logconf.vllm_config_path(), "runtime_env": {k: v for k, v in runtime_env.items()}, **result}))
"""


@pytest.mark.parametrize("version", ["0.30.0", "0.32.0"])
def test_each_worker_reads_the_config_of_its_own_logconf_install(tmp_path, version):
    """The workers import logconf from a copy (Ray py_modules, unpacked at a path of Ray's choosing): vLLM in the
    actor and in its spawn child reads that copy's vllm_logging.json, never the driver's path."""
    copy = tmp_path / "copy" / "logconf"
    shutil.copytree(REPO / "logconf", copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "vllm_logging.json", copy / "vllm_logging.json")  # where a wheel puts it
    shutil.copy(REPO / "skyrl_logging.yaml", copy / "skyrl_logging.yaml")
    logdir = tmp_path / "logs"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "VLLM_", "RANK", "RAY_ADDRESS"))}
    env.update(PYTHONPATH=f"{HERE}:{REPO}", VLLM_LOGGING_CONFIG_PATH=str(REPO / "vllm_logging.json"))  # as the README says
    done = subprocess.run(
        [str(vllm_python(version)), "-c", JOB, str(copy), str(logdir)],
        env=env,
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["driver_shipped"] == str(REPO / "vllm_logging.json")
    installed = os.path.dirname(result["logconf"])  # the copy, unpacked by Ray under its session directory
    assert installed != str(REPO / "logconf") and "runtime_resources" in installed
    assert result["shipped"] == os.path.join(installed, "vllm_logging.json")
    for who in ("actor", "child"):
        assert result[who] == {
            "config_path": result["shipped"],
            "handler_module": os.path.join(installed, "handlers.py"),
            "handler_path": str(logdir / "vllm_rank_0.log"),
        }, who
    records = [parse_line(line) for line in (logdir / "vllm_rank_0.log").read_text().splitlines()]
    probes = [(r["process_name"], r["message"]) for r in records if r and r["logger"] == "vllm.probe"]
    assert probes == [("Engine", "from the actor"), ("EngineCore", "from EngineCore")]
    assert "VLLM_LOGGING_CONFIG_PATH" not in result["runtime_env"]["env_vars"]  # the driver's path stays home
