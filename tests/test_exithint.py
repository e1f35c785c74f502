"""A driver that dies of an uncaught exception points at the run's first error, after Python's traceback; nothing else does."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from failure_helpers import child_env

HELPERS = os.path.dirname(__file__)

# A driver: applies logconf, runs an engine whose EngineCore logs its failure (through the vLLM
# config, in a process of its own), then ends as argv[1] says.
DRIVER = r"""
import logging, os, subprocess, sys
import logconf
logconf.apply()
logging.getLogger("skyrl.train.entrypoint").info("driver up")
engine = '''
import logging, os, sys
sys.path.insert(0, os.environ["HELPERS"])
from helpers import load_like_vllm
load_like_vllm()
log = logging.getLogger("vllm.v1.engine.core")
log.info("Initializing a V1 LLM engine")
try:
    raise ValueError("8 KV cache blocks are needed, 1 fits")
except ValueError:
    log.exception("EngineCore failed to start.")
'''
quiet = {**os.environ, "LOGCONF_RANK": "1", "LOGCONF_CONSOLE_LEVEL": "CRITICAL"}
subprocess.run([sys.executable, "-c", engine], check=True, env=quiet)
how = sys.argv[1]

def run_a_test():  # what pytest does with a failed test: catch it, keep it in sys.last_value
    try:
        raise AssertionError("a failed test")
    except AssertionError as failed:
        sys.last_type, sys.last_value, sys.last_traceback = type(failed), failed, failed.__traceback__

if how == "tool-caught":
    run_a_test()
if how == "framework-hook":
    sys.excepthook = lambda *exc: print("a framework's own excepthook", file=sys.stderr)
if how == "exit":
    sys.exit(3)
if how == "ctrl-c":
    raise KeyboardInterrupt
if how == "fork-child":  # a child of os.fork (not of multiprocessing) applies logconf and dies; the driver ends normally
    if os.fork() == 0:
        logconf.apply()
        logging.getLogger("skyrl.train.worker").error("the forked child's error")
        raise RuntimeError("a forked child fails")
    os.wait()
if how not in ("normal", "tool-caught", "fork-child"):
    raise RuntimeError("Engine core initialization failed. See root cause above. Failed core proc(s): {}")
"""


def _drive(tmp_path, how: str, logdir=None) -> subprocess.CompletedProcess[str]:
    logdir = logdir or tmp_path / "logs"
    env = child_env(logdir, tmp_path / "registry", HELPERS=HELPERS)
    return subprocess.run([sys.executable, "-c", DRIVER, how], env=env, capture_output=True, text=True, timeout=120)


def test_after_pythons_traceback_the_driver_names_the_first_error_and_how_to_see_the_rest(tmp_path):
    done = _drive(tmp_path, "raise")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    end = lines.index("RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}")
    assert lines[0] == "Traceback (most recent call last):"
    hint = lines[end + 1 :]
    assert hint[0].startswith(
        f"logconf: the first error of this run on this host ({tmp_path / 'logs'}): vllm_rank_1.log line 2, 20"
    )
    assert hint[0].endswith("Z, rank 1, MainProcess[" + hint[0].rsplit("[", 1)[1])
    shown = [line for line in hint[1:] if not line.startswith("      ")]  # 3.13 adds the source line of -c code
    assert shown == [
        "  vllm.v1.engine.core: EngineCore failed to start.",
        "  Traceback (most recent call last):",
        '    File "<string>", line 9, in <module>',
        "  ValueError: 8 KV cache blocks are needed, 1 fits",
        f"logconf: every error of the run: logconf errors {tmp_path / 'logs'}; "
        "other nodes' files: logconf gather DEST && logconf errors DEST",
    ]


def test_a_framework_that_replaced_the_excepthook_still_gets_the_pointer(tmp_path):
    done = _drive(tmp_path, "framework-hook")
    lines = done.stderr.splitlines()
    assert lines[0] == "a framework's own excepthook"
    assert lines[1].startswith("logconf: the first error of this run on this host")


@pytest.mark.parametrize("how", ["normal", "exit", "ctrl-c", "tool-caught"])
def test_a_driver_that_ends_normally_by_exit_or_by_ctrl_c_prints_nothing_more(tmp_path, how):
    """Nor does one where a tool caught an exception and kept it in sys.last_value, as pytest does."""
    done = _drive(tmp_path, how)
    assert (
        done.returncode == {"normal": 0, "exit": 3, "ctrl-c": -2, "tool-caught": 0}[how]
    )  # Python ends on an uncaught Ctrl-C by SIGINT
    assert "logconf" not in done.stderr


def test_a_forked_child_that_applies_logconf_and_dies_points_once(tmp_path):
    """The driver's exit handler, inherited by the fork, stays the driver's: the child's own points, once."""
    done = _drive(tmp_path, "fork-child")
    assert done.returncode == 0
    assert "RuntimeError: a forked child fails" in done.stderr
    assert done.stderr.count("logconf: the first error of this run on this host") == 1


def test_a_driver_run_as_a_module_points_too(tmp_path):
    """``python -m package.main`` (SkyRL's entry points): the uncaught traceback starts in runpy."""
    (tmp_path / "driver_main.py").write_text(DRIVER.replace("sys.argv[1]", "'raise'"))
    env = child_env(tmp_path / "logs", tmp_path / "registry", HELPERS=HELPERS)
    env["PYTHONPATH"] += os.pathsep + str(tmp_path)
    done = subprocess.run([sys.executable, "-m", "driver_main"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    raised = lines.index("RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}")
    assert lines[raised + 1].startswith("logconf: the first error of this run on this host")


def test_errors_from_before_the_driver_started_are_not_this_runs(tmp_path):
    """A directory reused by run after run: the pointer names only what happened since this driver started."""
    logdir = tmp_path / "logs"
    first = _drive(tmp_path, "raise", logdir)
    assert "vllm_rank_1.log line 2" in first.stderr
    code = "import logconf; logconf.apply(); raise SystemError('no engine this time')"
    env = child_env(logdir, tmp_path / "registry")
    again = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert again.stderr.splitlines()[-1] == "SystemError: no engine this time"
