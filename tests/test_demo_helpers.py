"""The demo package's own helpers, in the fast suite: the summary table `make demo` prints, the
environments the SkyRL and two-node jobs start with, the tagged records the SkyRL job's tests
count, and the opt-in extras. The jobs themselves need Ray and vLLM: the real suite runs them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from logwriters import REPO

from logconf.demo import hooks, multinode, skyrl, skyrl_actors
from logconf.demo.__main__ import demo_table
from logconf.summary import summarise

LINES = {
    "vllm_rank_0.log": [
        "2026-11-26T09:00:00.000Z INFO rank=0 EngineActor[11] vllm.engine: ready",
        "2026-11-26T09:00:01.000Z INFO rank=0 EngineCore_DP0[12] vllm.v1.engine.core: step",
        "2026-11-26T09:00:02.000Z INFO rank=0 EngineCore_DP0[12] skyrl_train.trainer: not vLLM's",
    ],
    "skyrl_rank_0.log": ["2026-11-26T09:00:00.500Z INFO rank=0 TrainerActor[13] skyrl_train.trainer: step 0"],
}


def test_the_demo_table_has_a_row_per_file_with_its_lines_bytes_processes_loggers_and_foreign_lines(tmp_path):
    for name, lines in LINES.items():
        (tmp_path / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    summaries = summarise(str(tmp_path))
    rows = demo_table(summaries).splitlines()
    assert rows[:2] == ["| file | lines | bytes | processes | loggers | foreign lines |", "|---|---:|---:|---|---:|---:|"]
    size = {name: (tmp_path / name).stat().st_size for name in LINES}
    assert rows[2:] == [
        f"| skyrl_rank_0.log | 1 | {size['skyrl_rank_0.log']} | 1 (TrainerActor) | 1 | 0 |",
        f"| vllm_rank_0.log | 3 | {size['vllm_rank_0.log']} | 2 (EngineActor, EngineCore_DP0) | 3 | 1 |",
    ]


def test_the_skyrl_job_exports_what_a_user_does_and_keeps_other_pythonpath_entries_once(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(["/opt/site", skyrl.REPO, "", skyrl.SHIM, "/opt/more"]))
    env = skyrl.job_environment(str(tmp_path), "json", 0)
    assert env["PYTHONPATH"].split(os.pathsep) == [skyrl.REPO, skyrl.SHIM, "/opt/site", "/opt/more"]
    assert (env["LOGCONF_AUTO"], env["LOGCONF_DIR"], env["LOGCONF_FORMAT"]) == ("1", str(tmp_path), "json")
    assert env["SKYRL_LOG_FILE"] == str(tmp_path / "skyrl-infra.log")
    assert (env["VLLM_ENABLE_V1_MULTIPROCESSING"], env["VLLM_HOST_IP"]) == ("0", "127.0.0.1")


def test_each_node_of_the_two_node_job_keeps_its_own_logconf_dir(monkeypatch):
    monkeypatch.setenv("LOGCONF_DIR", "/driver/logs")
    monkeypatch.setenv("LOGCONF_FORMAT", "json")
    shared = multinode.job_env()
    assert "LOGCONF_DIR" not in shared and shared["LOGCONF_FORMAT"] == "json"
    node = multinode.node_env({"LOGCONF_DIR": "/node-1"})
    assert node == {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONPATH": multinode.REPO, "LOGCONF_DIR": "/node-1"}


def test_the_skyrl_jobs_tagged_records_are_one_per_logger_and_level_in_order_each_unique():
    records = skyrl_actors.planned_records("driver", skyrl_actors.DRIVER_LOGGERS, skyrl_actors.DRIVER_LEVELS)
    assert [(r["via"], r["logger"], r["level"]) for r in records] == [
        ("logging", "skyrl.train.entrypoint", "INFO"),
        ("logging", "skyrl.train.entrypoint", "WARNING"),
        ("loguru", "skyrl.train.entrypoint", "INFO"),
        ("loguru", "skyrl.train.entrypoint", "WARNING"),
    ]
    assert len({r["message"] for r in records}) == 4
    assert records[0]["message"] == "logconf-skyrl-job driver via logging skyrl.train.entrypoint INFO"


EMIT = """
import json, logging
from loguru import logger
from logconf.demo import skyrl_actors
seen = {"loguru": [], "logging": []}
logger.remove()
logger.add(lambda m: seen["loguru"].append((m.record["name"], m.record["level"].name, m.record["message"])))
class Keep(logging.Handler):
    def emit(self, record):
        seen["logging"].append((record.name, record.levelname, record.getMessage()))
logging.basicConfig(level=logging.DEBUG, handlers=[Keep()])
records = skyrl_actors.planned_records("w", skyrl_actors.WORKER_LOGGERS, ("INFO", "WARNING"))
skyrl_actors.emit(records)
print(json.dumps({"records": records, "seen": seen}))
"""


def test_emit_logs_each_record_by_its_path_under_its_logger_name():
    """In a fresh interpreter (no Loguru bridge of an earlier test): stdlib records through logging, the others
    through Loguru, each under its planned logger name and level."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", EMIT], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    records, seen = result["records"], result["seen"]
    for via in ("logging", "loguru"):
        assert seen[via] == [[r["logger"], r["level"], r["message"]] for r in records if r["via"] == via]
    assert {r["via"] for r in records} == {"logging", "loguru"}


def test_the_demos_extras_change_nothing_unless_asked(monkeypatch):
    monkeypatch.delenv(hooks.ENGINECORE_WARNING_ENV, raising=False)
    monkeypatch.delenv(hooks.LOGURU_ENV, raising=False)
    assert hooks.engine_kwargs() == {} and hooks.loguru_module() is None
    monkeypatch.setenv(hooks.ENGINECORE_WARNING_ENV, "1")
    assert hooks.engine_kwargs() == {"scheduler_cls": "logconf.demo.warning_scheduler.WarningScheduler"}


@pytest.fixture
def no_loguru_demo_module():
    yield
    sys.modules.pop(hooks.LOGURU_MODULE, None)


def test_the_loguru_extra_imports_its_module_once_under_a_skyrl_train_name(monkeypatch, no_loguru_demo_module):
    monkeypatch.setenv(hooks.LOGURU_ENV, "1")
    module = hooks.loguru_module()
    assert module is not None and module.__name__ == "skyrl_train.loguru_demo"
    assert hooks.loguru_module() is module and sys.modules[hooks.LOGURU_MODULE] is module
