"""LOGCONF_AUTO=1: logconf applied in the job's processes by the installed logconf_auto.pth, and nowhere else.

The job's processes: Ray workers, from their start; any other process from its first import of
a job framework (vllm, skyrl, skyrl_train, skyrl_gym, and LOGCONF_AUTO_FRAMEWORKS), before that
framework's code runs; never Ray's own daemons. Stand-in packages under those names, written by
the tests, play the frameworks here (tests/real/ runs the real ones). Every other process keeps
its output and exit code byte for byte, which each test of that kind compares with a run of the
same command without LOGCONF_AUTO.
"""

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
# A framework's first lines, as the process looks when they run: is logconf applied already?
STANDIN = (
    "import json, logging, os, sys\n"
    "consoles = [type(h).__name__ for h in logging.root.handlers]\n"
    "logging.getLogger('skyrl_gym.standin').info('logged by %s at import', __name__)\n"
    "print(json.dumps([__name__, os.environ.get('VLLM_LOGGING_CONFIG_PATH'), consoles]), flush=True)\n"
)


def clean_env(logdir: Path, **env: str) -> dict[str, str]:
    """The outer environment without logconf's, vLLM's or Loguru's variables; logconf from this tree, after PYTHONPATH."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "RANK", "LOG_LEVEL", "VLLM_", "LOGURU_"))}
    base.update({"LOGCONF_DIR": str(logdir), **env})
    base["PYTHONPATH"] = os.pathsep.join([*filter(None, [env.get("PYTHONPATH")]), str(REPO)])
    return base


def python(code: str, logdir: Path, argv0: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    if argv0 is not None:  # run the code as a script at that path, as Ray runs its worker script
        argv0.parent.mkdir(parents=True, exist_ok=True)
        argv0.write_text(code)
        command = [sys.executable, str(argv0)]
    else:
        command = [sys.executable, "-c", code]
    return subprocess.run(command, env=clean_env(logdir, **env), cwd="/", capture_output=True, text=True, timeout=60, check=False)


def standins(root: Path, *names: str, code: str = STANDIN) -> Path:
    """Packages named like job frameworks under ``root``, each running ``code`` at import; return ``root``."""
    for name in names:
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "__init__.py").write_text(code)
    return root


def with_and_without_auto(argv: list[str], logdir: Path, **env: str) -> tuple[tuple, tuple]:
    """Run ``argv`` twice at once, without and with LOGCONF_AUTO=1: each run's (exit code, stdout, stderr) in bytes."""
    runs = [
        subprocess.Popen(argv, env=clean_env(logdir, **env, **auto_env), cwd="/", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for auto_env in ({}, {"LOGCONF_AUTO": "1"})
    ]
    results = []
    for run in runs:
        out, err = run.communicate(timeout=120)
        results.append((run.returncode, out, err))
    return results[0], results[1]


def test_the_startup_file_is_installed_beside_logconf():
    """This interpreter's site-packages holds logconf_auto.pth, the line that LOGCONF_AUTO needs."""
    import site

    found = [Path(d) / "logconf_auto.pth" for d in site.getsitepackages() if (Path(d) / "logconf_auto.pth").is_file()]
    assert found, "logconf_auto.pth is not installed; reinstall logconf (pip install -e .)"
    assert found[0].read_text() == (REPO / "logconf" / "logconf_auto.pth").read_text()


@pytest.mark.parametrize("framework", sorted(auto.FRAMEWORKS))
def test_a_process_is_the_jobs_from_its_first_import_of_a_framework_before_the_framework_runs(logdir, tmp_path, framework):
    """Before the import nothing is applied; the framework's first line already sees vLLM's path and logconf's
    console; its records and the script's reach skyrl_rank_0, a WARNING is printed once."""
    path = standins(tmp_path / "frameworks", framework)
    code = (
        "import logging\nlogging.getLogger('skyrl.train.trainer').info('before the import')\n"
        f"import {framework}\nlogging.getLogger('skyrl.train.trainer').warning('printed once')\n"
    )
    done = python(code, logdir, LOGCONF_AUTO="1", PYTHONPATH=str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f'["{framework}", "{logconf.vllm_config_path()}", ["ConsoleHandler"]]\n'
    assert done.stderr.count("printed once") == 1
    records = read_records(logdir / "skyrl_rank_0.log")
    assert [r["message"] for r in records] == [f"logged by {framework} at import", "printed once"]


def test_logconf_auto_frameworks_adds_the_modules_that_make_a_process_the_jobs(logdir, tmp_path):
    """LOGCONF_AUTO_FRAMEWORKS=" mytrainer , ": importing mytrainer applies logconf; without it, it does not."""
    path = standins(tmp_path / "frameworks", "mytrainer")
    code = "import mytrainer"
    done = python(code, logdir, LOGCONF_AUTO="1", LOGCONF_AUTO_FRAMEWORKS=" mytrainer , ", PYTHONPATH=str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f'["mytrainer", "{logconf.vllm_config_path()}", ["ConsoleHandler"]]\n'
    assert [r["message"] for r in read_records(logdir / "skyrl_rank_0.log")] == ["logged by mytrainer at import"]
    plain = python(code, tmp_path / "other", LOGCONF_AUTO="1", PYTHONPATH=str(path))
    assert plain.stdout == '["mytrainer", null, []]\n', plain.stderr
    assert not (tmp_path / "other").exists()
    assert auto.frameworks({"LOGCONF_AUTO_FRAMEWORKS": "a,,b"}) == auto.FRAMEWORKS | {"a", "b"}


def test_a_framework_looked_for_but_not_imported_leaves_the_process_alone(logdir, tmp_path):
    """find_spec('vllm') (libraries probe for vLLM) and a failed `import skyrl`: not the job's; then `import vllm` is."""
    path = standins(tmp_path / "frameworks", "vllm")
    code = (
        "import importlib.util, logging, sys\n"
        "assert importlib.util.find_spec('vllm') is not None\n"
        "try:\n    import skyrl\nexcept ImportError:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('logconf')), logging.root.handlers)\n"
        "import vllm\n"
    )
    done = python(code, logdir, LOGCONF_AUTO="1", PYTHONPATH=str(path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "['logconf', 'logconf.auto'] []"
    assert lines[1] == f'["vllm", "{logconf.vllm_config_path()}", ["ConsoleHandler"]]'


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
    path = standins(tmp_path / "frameworks", "vllm")
    done = python("import vllm", logdir, LOGCONF_AUTO="1", VLLM_LOGGING_CONFIG_PATH="/etc/mine.json", PYTHONPATH=str(path))
    assert done.stdout == '["vllm", "/etc/mine.json", ["ConsoleHandler"]]\n', done.stderr


def test_with_vllm_configure_logging_0_the_vllm_config_path_stays_unset_and_the_trainer_is_configured(logdir, tmp_path):
    """VLLM_CONFIGURE_LOGGING=0: vLLM is told to leave logging alone, so its config path is not set (vLLM would refuse it)."""
    path = standins(tmp_path / "frameworks", "vllm")
    done = python("import vllm", logdir, LOGCONF_AUTO="1", VLLM_CONFIGURE_LOGGING="0", PYTHONPATH=str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == '["vllm", null, ["ConsoleHandler"]]\n'
    assert done.stderr == ""
    assert [r["message"] for r in read_records(logdir / "skyrl_rank_0.log")] == ["logged by vllm at import"]


def test_auto_with_a_bad_environment_reports_one_line_and_the_program_runs(logdir, tmp_path):
    """LOGCONF_FORMAT=xml: one logconf line on stderr naming the variable, and the program's own output."""
    path = standins(tmp_path / "frameworks", "skyrl", code="")
    done = python("import skyrl\nprint('still running')", logdir, LOGCONF_AUTO="1", LOGCONF_FORMAT="xml", PYTHONPATH=str(path))
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
    path = standins(tmp_path / "frameworks", "skyrl", code="")
    code = "import logging, skyrl\nlogging.getLogger('skyrl').info('mine')"
    done = python(code, logdir, LOGCONF_AUTO="1", LOGCONF_AUTO_CONFIG=str(config), PYTHONPATH=str(path))
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


# Processes that are no part of the job: each case's command, and what it needs on disk.
NOT_THE_JOB = {
    "basicConfig": "import logging\nlogging.basicConfig(level=logging.INFO)\nlogging.getLogger('x').info('info shown')\n",
    "basicConfig-force": (
        "import logging\nlogging.basicConfig(level=logging.INFO, force=True)\n"
        "logging.getLogger('skyrl.x').info('info shown')\nlogging.getLogger('x').warning('warning as basicConfig writes it')\n"
    ),
    "plain-warning": "import logging\nlogging.getLogger('x').warning('last resort format')\nprint('out')\nraise SystemExit(3)\n",
    "loguru": (
        "from loguru import logger\nlogger.info('loguru info')\nlogger.success('loguru success')\n"
        "logger.debug('loguru debug')\nimport logging\nlogging.getLogger('skyrl.x').error('stdlib error')\n"
    ),
}


@pytest.mark.parametrize("case", sorted(NOT_THE_JOB))
def test_a_script_that_is_no_part_of_the_job_keeps_its_output_byte_for_byte(logdir, case):
    """basicConfig (with and without force), a bare warning, Loguru's default sink: the same bytes and exit code."""
    env = {"LOGURU_FORMAT": "{level} | {name}:{function}:{line} - {message}"}  # Loguru's default sink, without a clock
    plain, with_auto = with_and_without_auto([sys.executable, "-c", NOT_THE_JOB[case]], logdir, **env)
    assert plain[1] or plain[2], plain  # the case prints something that logconf could change
    assert with_auto == plain
    assert not logdir.exists()


def test_a_python_m_module_that_is_no_part_of_the_job_keeps_its_output_byte_for_byte(logdir, tmp_path):
    """`python -m tool` (sys.argv is ['-m'] when the start-up file runs): basicConfig at INFO, a record, an exit code."""
    (tmp_path / "mods" / "usertool").mkdir(parents=True)
    (tmp_path / "mods" / "usertool" / "__main__.py").write_text(
        "import logging, sys\nlogging.basicConfig(level=logging.INFO)\nlogging.getLogger(__name__).info('tool ran')\n"
        "print(sys.argv)\nsys.exit(4)\n"
    )
    plain, with_auto = with_and_without_auto([sys.executable, "-m", "usertool"], logdir, PYTHONPATH=str(tmp_path / "mods"))
    assert plain[0] == 4 and plain[2] == b"INFO:__main__:tool ran\n"
    assert with_auto == plain
    assert not logdir.exists()


def test_pip_keeps_its_output_and_exit_code_byte_for_byte(logdir):
    """A pip error is printed once, as pip prints it, not a second time in logconf's format."""
    argv = [sys.executable, "-m", "pip", "install", "--no-index", "--disable-pip-version-check", "nonexistent-pkg-of-logconf"]
    plain, with_auto = with_and_without_auto(argv, logdir)
    assert plain[0] == 1 and b"ERROR: " in plain[2]
    assert with_auto == plain
    assert not logdir.exists()


RAY_DAEMON = Path("site-packages", "ray", "dashboard", "agent.py")
RAY_M_DAEMON = Path("site-packages", "ray", "util", "client", "server")  # Ray starts it with `python -m`


def test_a_ray_daemon_started_by_its_script_is_left_alone_even_when_it_imports_a_framework(logdir, tmp_path):
    """start() itself leaves a Ray daemon alone: its basicConfig, records and imports are as without logconf,
    and it does not even carry the import hook (sys.meta_path as without logconf)."""
    path = standins(tmp_path / "frameworks", "vllm")
    script = tmp_path / RAY_DAEMON
    script.parent.mkdir(parents=True)
    script.write_text(
        "import logging, sys\nlogging.basicConfig(level=logging.INFO)\n"
        "print([type(finder).__module__ for finder in sys.meta_path if 'logconf' in type(finder).__module__])\n"
        "import vllm\nlogging.getLogger('ray').info('up')\n"
    )
    plain, with_auto = with_and_without_auto([sys.executable, str(script)], logdir, PYTHONPATH=str(path))
    assert plain[1] == b'[]\n["vllm", null, ["StreamHandler"]]\n' and b"INFO:ray:up" in plain[2]
    assert with_auto == plain
    assert not logdir.exists()


def test_a_ray_daemon_started_with_python_m_is_left_alone_even_when_it_imports_a_framework(logdir, tmp_path):
    """`python -m ray.util.client.server` (the path of a package named ray, in a site-packages): as without logconf."""
    path = standins(tmp_path / "frameworks", "vllm")
    package = tmp_path / RAY_M_DAEMON
    package.mkdir(parents=True)
    for parent in (package.parent, package.parent.parent, package.parent.parent.parent):
        (parent / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(
        "import logging\nlogging.basicConfig(level=logging.INFO)\nimport vllm\nlogging.getLogger('ray').info('serving')\n"
    )
    pythonpath = os.pathsep.join([str(tmp_path / "site-packages"), str(path)])
    argv = [sys.executable, "-m", "ray.util.client.server"]
    plain, with_auto = with_and_without_auto(argv, logdir, PYTHONPATH=pythonpath)
    assert plain[1] == b'["vllm", null, ["StreamHandler"]]\n' and b"INFO:ray:serving" in plain[2]
    assert with_auto == plain
    assert not logdir.exists()
