"""LOGCONF_AUTO=1: logconf applied at interpreter start by the installed logconf_auto.pth, and nothing without it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import read_records

import logconf
from logconf import auto
from logconf.raycontext import is_ray_daemon, is_ray_worker

REPO = Path(__file__).resolve().parents[1]
RAY_WORKER = Path("site-packages", "ray", "_private", "workers", "default_worker.py")  # as Ray starts its workers


def python(code: str, logdir: Path, argv0: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "RANK", "LOG_LEVEL", "VLLM_"))}
    base.update({"LOGCONF_DIR": str(logdir), **env})
    if argv0 is not None:  # run the code as a script at that path, as Ray runs its worker script
        argv0.parent.mkdir(parents=True, exist_ok=True)
        argv0.write_text(code)
        command = [sys.executable, str(argv0)]
    else:
        command = [sys.executable, "-c", code]
    return subprocess.run(command, env=base, cwd="/", capture_output=True, text=True, timeout=60, check=False)


def test_the_startup_file_is_installed_beside_logconf():
    """This interpreter's site-packages holds logconf_auto.pth, the line that LOGCONF_AUTO needs."""
    import site

    found = [Path(d) / "logconf_auto.pth" for d in site.getsitepackages() if (Path(d) / "logconf_auto.pth").is_file()]
    assert found, "logconf_auto.pth is not installed; reinstall logconf (pip install -e .)"
    assert found[0].read_text() == (REPO / "logconf" / "logconf_auto.pth").read_text()


def test_auto_applies_logconf_at_interpreter_start(logdir):
    """A plain script that never imports logconf: its trainer records reach skyrl_rank_0, vLLM's path is set."""
    code = (
        "import logging, os\nlogging.getLogger('skyrl.train.trainer').info('filed at start')\n"
        "logging.getLogger('skyrl.train.trainer').warning('printed once')\nprint(os.environ['VLLM_LOGGING_CONFIG_PATH'])"
    )
    done = python(code, logdir, LOGCONF_AUTO="1")
    assert done.returncode == 0, done.stderr
    assert done.stdout == logconf.vllm_config_path() + "\n"
    assert done.stderr.count("printed once") == 1
    assert [r["message"] for r in read_records(logdir / "skyrl_rank_0.log")] == ["filed at start", "printed once"]


@pytest.mark.parametrize("value", [None, "0", "off", ""])
def test_without_auto_interpreter_start_loads_nothing_of_logconf(logdir, value):
    """LOGCONF_AUTO unset or off: no logconf module is loaded and no file is created."""
    env = {} if value is None else {"LOGCONF_AUTO": value}
    code = "import sys, os\nprint(sorted(m for m in sys.modules if 'logconf' in m), 'VLLM_LOGGING_CONFIG_PATH' in os.environ)"
    done = python(code, logdir, **env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[] False\n"
    assert not logdir.exists()


def test_auto_keeps_a_config_path_the_user_set(logdir, tmp_path):
    code = "import os\nprint(os.environ['VLLM_LOGGING_CONFIG_PATH'])"
    done = python(code, logdir, LOGCONF_AUTO="1", VLLM_LOGGING_CONFIG_PATH="/etc/mine.json")
    assert done.stdout == "/etc/mine.json\n", done.stderr


def test_auto_with_a_bad_environment_reports_one_line_and_the_program_runs(logdir):
    """LOGCONF_FORMAT=xml: one logconf line on stderr naming the variable, and the program's own output."""
    done = python("print('still running')", logdir, LOGCONF_AUTO="1", LOGCONF_FORMAT="xml")
    assert done.returncode == 0
    assert done.stdout == "still running\n"
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("logconf: LOGCONF_AUTO=1 but logconf was not applied")
    assert "LOGCONF_FORMAT" in lines[0] and "'xml'" in lines[0]


def test_auto_takes_a_config_file_of_the_users(logdir, tmp_path):
    """LOGCONF_AUTO_CONFIG names the trainer config to apply instead of the shipped YAML."""
    config = tmp_path / "mine.yaml"
    config.write_text(
        (REPO / "skyrl_logging.yaml").read_text().replace("skyrl_rank_", "mine_rank_")
    )
    code = "import logging\nlogging.getLogger('skyrl').info('mine')"
    done = python(code, logdir, LOGCONF_AUTO="1", LOGCONF_AUTO_CONFIG=str(config))
    assert done.returncode == 0, done.stderr
    assert [r["message"] for r in read_records(logdir / "mine_rank_0.log")] == ["mine"]


@pytest.mark.parametrize(
    ("argv0", "daemon"),
    [
        ("/v/lib/python3.11/site-packages/ray/dashboard/dashboard.py", True),
        ("/v/lib/python3.11/site-packages/ray/dashboard/agent.py", True),
        ("/v/lib/python3.11/site-packages/ray/_private/log_monitor.py", True),
        ("/v/lib/python3.11/site-packages/ray/_private/runtime_env/agent/main.py", True),
        ("/v/lib/python3.11/site-packages/ray/autoscaler/_private/monitor.py", True),
        ("/v/bin/ray", True),
        ("/v/lib/python3.11/site-packages/ray/_private/workers/default_worker.py", False),
        ("/home/me/ray/train.py", False),
        ("-c", False),
        ("-m", False),
        ("", False),
    ],
)
def test_which_processes_are_rays_own(argv0, daemon):
    """Ray's daemons (scripts in the installed ray package, the ray CLI) are left alone; its workers are not."""
    assert is_ray_daemon(argv0) is daemon
    assert auto.wanted(argv0) is not daemon
    assert is_ray_worker(argv0) is argv0.endswith("default_worker.py")


def test_a_ray_worker_holds_records_until_its_rank_is_known_then_writes_them(logdir, tmp_path):
    """A Ray worker configured at start holds its records; RANK set by a framework's set-up releases them there."""
    script = tmp_path / RAY_WORKER
    code = (
        "import logging, os\nlog = logging.getLogger('skyrl.train.worker')\nlog.info('before the rank')\n"
        f"print(os.getpid(), sorted(os.listdir({str(logdir)!r})))\n"
        "os.environ['RANK'] = '2'\nlogging.root.handlers = []  # a framework's set-up, as SkyRL's\n"
        "log.info('after the rank')\n"
    )
    done = python(code, logdir, argv0=script, LOGCONF_AUTO="1", PYTHONPATH=str(REPO))
    assert done.returncode == 0, done.stderr
    pid, listed = done.stdout.split(" ", 1)
    assert listed == f"['skyrl_rank_held-{pid}.log']\n"  # on disk in the spill file only, no rank-0 file
    records = read_records(logdir / "skyrl_rank_2.log")
    assert [(r["message"], r["rank"]) for r in records] == [("before the rank", "2"), ("after the rank", "2")]
    assert sorted(p.name for p in logdir.iterdir()) == ["skyrl_rank_2.log"]


def test_held_records_are_written_when_the_hold_time_ends_without_another_record(logdir, tmp_path):
    """LOGCONF_RANK_HOLD_S=1: a record held at start is in rank 0's file about a second later, by itself."""
    script = tmp_path / RAY_WORKER
    code = (
        "import logging, os, time\nlogging.getLogger('skyrl.train.worker').info('held')\n"
        f"path = os.path.join({str(logdir)!r}, 'skyrl_rank_0.log')\n"
        "print(os.path.exists(path))\ndeadline = time.monotonic() + 30\n"
        "while not (os.path.exists(path) and os.path.getsize(path)) and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\nprint(open(path).read().count('held'))\nos._exit(0)  # no atexit: the timer wrote it\n"
    )
    started = time.monotonic()
    done = python(code, logdir, argv0=script, LOGCONF_AUTO="1", LOGCONF_RANK_HOLD_S="1")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "False\n1\n"
    assert time.monotonic() - started < 30
