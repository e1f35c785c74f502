"""Frameworks that re-do their logging set-up after logconf (SkyRL's workers) do not undo the split.

Each test runs a real worker process (tests/frameworks.py) that sets RANK, runs SkyRL 0.4.0's
``configure_ray_worker_logging`` body and logconf in some order, then logs through Loguru and
stdlib under SkyRL's logger names. tests/real/test_real_skyrl.py does the same with SkyRL's code.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from frameworks import RECORDS, loguru_from
from helpers import read_records

import logconf
from logconf import guard

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
KEPT = [(name, message) for _, name, level, message in RECORDS if level != "DEBUG"]  # LOG_LEVEL is INFO
WARNINGS = [message for _, _, level, message in RECORDS if level == "WARNING"]


def worker(logdir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "RANK", "LOG_LEVEL", "VLLM_"))}
    base.update({"LOGCONF_DIR": str(logdir), "PYTHONPATH": str(TESTS), **env})
    return subprocess.run([sys.executable, *args], env=base, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("order", ["apply_first", "framework_first", "auto"])
def test_each_record_is_written_once_to_the_rank_file_and_warnings_printed_once(logdir, tmp_path, order):
    """SkyRL's order, the reverse, and LOGCONF_AUTO: every record once in skyrl_rank_3, WARNING once on stderr."""
    script, env = TESTS / "frameworks.py", {}
    if order == "auto":  # SkyRL's workers are Ray workers, which LOGCONF_AUTO=1 configures as Ray starts them
        script = tmp_path / "site-packages" / "ray" / "_private" / "workers" / "default_worker.py"
        script.parent.mkdir(parents=True)
        shutil.copyfile(TESTS / "frameworks.py", script)
        env = {"LOGCONF_AUTO": "1"}
    done = worker(logdir, str(script), order, **env)
    assert done.returncode == 0, done.stderr
    records = read_records(logdir / "skyrl_rank_3.log")
    assert [(r["logger"], r["message"]) for r in records] == KEPT
    assert {r["rank"] for r in records} == {"3"}
    assert done.stdout == ""
    printed = [line for line in done.stderr.splitlines() if line]
    assert [line.rsplit(": ", 1)[1] for line in printed] == WARNINGS, done.stderr
    assert all(" WARNING rank=3 MainProcess[" in line for line in printed)
    leftovers = {p.name: p.read_text() for p in logdir.iterdir() if p.name != "skyrl_rank_3.log"}
    assert all(text == "" for text in leftovers.values()), leftovers


def test_replacing_root_handlers_keeps_logconf_console_and_follows_the_rank(logdir, monkeypatch, capfd):
    """root.handlers = [...] after apply(): logconf's console stays, and RANK set meanwhile is taken."""
    logconf.apply()
    mine: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            mine.append(record.getMessage())

    monkeypatch.setenv("RANK", "5")
    logging.root.handlers = [Collect()]
    logging.getLogger("torch.distributed").warning("from a library")
    logging.getLogger("skyrl.train").warning("from the trainer")
    assert mine == ["from a library", "from the trainer"]
    err = capfd.readouterr().err
    assert err.count("from a library") == 1 and err.count("from the trainer") == 1
    assert " rank=5 " in err
    assert [r["message"] for r in read_records(logdir / "skyrl_rank_5.log")] == ["from the trainer"]


def test_a_framework_dictconfig_with_a_root_section_keeps_logconf_console(logdir, capfd):
    """A later dictConfig that configures root (uvicorn's --log-config, a library's set-up) adds to it."""
    logconf.apply()
    logging.config.dictConfig(
        {"version": 1, "disable_existing_loggers": False, "handlers": {"n": {"class": "logging.NullHandler"}},
         "root": {"handlers": ["n"], "level": "INFO"}}
    )
    assert {type(h).__name__ for h in logging.root.handlers} == {"NullHandler", "ConsoleHandler"}
    logging.getLogger("skyrl.train").warning("still shown")
    assert capfd.readouterr().err.count("still shown") == 1


def test_apply_again_decides_root_handlers_itself(logdir):
    """apply() twice leaves exactly one console handler on root, and a released guard leaves root a RootLogger."""
    logconf.apply()
    logconf.apply()
    assert [type(h).__name__ for h in logging.root.handlers] == ["ConsoleHandler"]
    guard.release_root()
    assert type(logging.root) is logging.RootLogger


def test_loguru_remove_keeps_the_bridge_and_a_console_sink_added_later_is_muted(logdir, capfd):
    """logger.remove() then logger.add(sys.stderr): records reach the file once, stderr once, via logconf."""
    import loguru

    from logconf import loguru_bridge

    try:
        logconf.apply()
        loguru.logger.remove()
        loguru.logger.add(sys.stderr, level="DEBUG")
        loguru.logger.add(sys.stdout, level="DEBUG")
        loguru_from("skyrl.train.trainer", "WARNING", "once")
        err_out = capfd.readouterr()
        assert err_out.out == ""
        assert err_out.err.count("once") == 1 and " WARNING rank=0 " in err_out.err
        assert [r["message"] for r in read_records(logdir / "skyrl_rank_0.log")] == ["once"]
    finally:
        loguru_bridge.uninstall()
        loguru.logger.remove()
    assert loguru.logger.add.__name__ == "add" and not hasattr(loguru.logger.add, "__wrapped__")


def test_a_module_that_takes_over_the_skyrl_logger_at_import_is_undone(logdir, tmp_path):
    """skyrl.utils.log's import-time set-up (DEBUG, propagate off, its own handler) is put back to apply()'s."""
    package = tmp_path / "pkgs" / "skyrl" / "utils"
    package.mkdir(parents=True)
    (package.parent / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    # What skyrl/utils/log.py does at import (with a StreamHandler standing in for its RichHandler).
    (package / "log.py").write_text(
        "import logging, sys\nlogger = logging.getLogger('skyrl')\nlogger.setLevel(logging.DEBUG)\n"
        "logger.propagate = False\nlogger.addHandler(logging.StreamHandler(sys.stdout))\n"
    )
    code = (
        "import logging, logconf\nlogconf.apply()\nimport skyrl.utils.log\n"
        "logging.getLogger('skyrl.tinker').debug('hidden')\nlogging.getLogger('skyrl.tinker').info('filed')\n"
        "logging.getLogger('skyrl.tinker').warning('shown')\n"
    )
    done = worker(logdir, "-c", code, PYTHONPATH=str(tmp_path / "pkgs"))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("shown") == 1 and "filed" not in done.stderr
    assert [r["message"] for r in read_records(logdir / "skyrl_rank_0.log")] == ["filed", "shown"]
