"""LOGCONF_STALL_S: a run that stops making progress gets its stacks dumped once per stall, by nobody at the keyboard."""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import sys
import time

from failure_helpers import child_env
from helpers import read_records

import logconf
from logconf.stackdump import watcher_lock
from logconf.stallwatch import LOGGER, Watcher, interval_for, only_stall_records, snapshot

# The job waits until its stall watcher runs, logs, stalls in a Python sleep (GIL released), logs again,
# stalls in a C call that holds the GIL, logs once more and ends.
STALLING = r"""
import ctypes, fcntl, logging, os, sys, time
import logconf
from logconf.stackdump import settings, watcher_lock
logconf.apply()
log = logging.getLogger("skyrl.train")
lock = watcher_lock(settings().directory, os.environ["LOGCONF_DIR"])
while True:  # the watcher holds its lock while it runs
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except BlockingIOError:
        break
    finally:
        os.close(fd)
    time.sleep(0.05)

def sleep_in_python(seconds):
    time.sleep(seconds)

def hold_gil(seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:  # the dump's signal ends libc's sleep early, as it would any caught signal
        ctypes.PyDLL(None).usleep(100_000)

for phase, stall in (("first", sleep_in_python), ("second", hold_gil)):
    for i in range(3):
        log.info("%s steps %d", phase, i)
        time.sleep(0.05)
    stall(2)
log.info("done")
"""

# An engine that logs nothing after start-up, beside a trainer that logs steadily; both end.
IDLE_ENGINE = r"""
import logging, os, subprocess, sys, time
if sys.argv[1] == "engine":
    sys.path.insert(0, os.environ["HELPERS"])
    from helpers import load_like_vllm
    load_like_vllm()
    sys.stdin.readline()
else:
    import logconf
    logconf.apply()
    engine = subprocess.Popen([sys.executable, "-c", sys.argv[2], "engine"], stdin=subprocess.PIPE)
    log = logging.getLogger("skyrl.train")
    for i in range(25):
        log.info("step %d", i)
        time.sleep(0.1)
    engine.stdin.close()
    engine.wait()
"""


def _watcher_gone(registry, logdir, timeout: float = 10.0) -> bool:
    """Whether the watcher released its lock (it exited) within ``timeout``."""
    deadline = time.monotonic() + timeout
    lock = watcher_lock(str(registry), str(logdir))
    while time.monotonic() < deadline:
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            time.sleep(0.05)
        finally:
            os.close(fd)
    return False


def test_each_stall_dumps_the_stacks_once_with_a_warning_in_the_rank_file_the_gil_held_or_not(tmp_path):
    logdir, registry = tmp_path / "logs", tmp_path / "registry"
    env = child_env(logdir, registry, LOGCONF_STALL_S="0.5")
    done = subprocess.run([sys.executable, "-c", STALLING], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert _watcher_gone(registry, logdir)  # the run ended: its watcher left, and dumped nothing more
    records = read_records(logdir / "skyrl_rank_0.log")
    messages = [r["message"] if r["logger"] != LOGGER else "STALL" for r in records]
    steps = [f"{phase} steps {i}" for phase in ("first", "second") for i in range(3)]
    assert messages == [*steps[:3], "STALL", *steps[3:], "STALL", "done"]
    warnings = [r for r in records if r["logger"] == LOGGER]
    assert [(r["level"], r["rank"], r["process_name"]) for r in warnings] == [("WARNING", "0", "StallWatch")] * 2
    reports = sorted((logdir / "stacks").iterdir())
    assert len(reports) == 2
    for warning, report, (function, line) in zip(warnings, reports, (("sleep_in_python", 20), ("hold_gil", 25)), strict=True):
        assert f"the stacks of 1 process are in {report}: " in warning["message"]
        assert warning["message"].endswith(f"waits in `{function}` (<string>:{line})")
        assert warning["message"].startswith(f"no rank file in {logdir} grew on ")
        text = report.read_text()
        assert f"line {line} in {function}" in text
        assert "# logconf stacks: rank 0, MainProcess, pid " in text


def test_an_idle_engine_beside_a_trainer_that_logs_is_no_stall_and_a_run_that_ends_gets_no_dump(tmp_path):
    logdir, registry = tmp_path / "logs", tmp_path / "registry"
    env = child_env(logdir, registry, LOGCONF_STALL_S="0.6", HELPERS=os.path.dirname(__file__))
    done = subprocess.run(
        [sys.executable, "-c", IDLE_ENGINE, "trainer", IDLE_ENGINE], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert _watcher_gone(registry, logdir)
    assert not (logdir / "stacks").exists()
    assert [r["message"] for r in read_records(logdir / "skyrl_rank_0.log")] == [f"step {i}" for i in range(25)]


def test_another_hosts_stall_warning_is_not_progress_but_any_other_change_is(tmp_path, logdir):
    """On a log directory shared by hosts each host's watcher writes warnings: they must not re-arm the others."""
    env_dir = str(logdir)
    logconf.apply()
    logging.getLogger("skyrl.train").info("a record")
    before = snapshot(env_dir)
    watcher = Watcher({"log_dir": env_dir, "registry": str(tmp_path / "registry"), "stall_s": 1.0})
    watcher.warn("another host's stall")
    after = snapshot(env_dir)
    assert after != before and only_stall_records(env_dir, before, after)
    logging.getLogger("skyrl.train").info("progress")
    assert not only_stall_records(env_dir, after, snapshot(env_dir))
    os.rename(logdir / "skyrl_rank_0.log", logdir / "skyrl_rank_0.log.1")
    (logdir / "skyrl_rank_0.log").write_text("")
    assert not only_stall_records(env_dir, after, snapshot(env_dir))  # rotated: another inode
    assert interval_for(0.5) == 0.125 and interval_for(600) == 5.0 and interval_for(0.01) == 0.05


def test_a_real_rotation_is_progress_never_a_stall(tmp_path):
    """A rank file that rotates (its live file becomes a new, small one, another inode) is progress, also after a
    stall fired (not taken for another host's stall warnings), and the set's rotated files are not watched."""
    from rotation_writers import settle

    from logconf.formatters import make_formatter
    from logconf.handlers import RankFileHandler
    from logconf.logfiles import rank_sets

    handler = RankFileHandler(str(tmp_path), "vllm_rank_0.log", per_host="0", rotate_bytes="1K", rotate_compress="0")
    handler.setFormatter(make_formatter("text", rank="0", redact="0"))
    log = logging.getLogger("vllm.test.stall")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("a record")
        before = snapshot(str(tmp_path))
        for i in range(40):
            log.warning("step %d", i)
        settle()
        after = snapshot(str(tmp_path))
        (found,) = rank_sets(str(tmp_path))
        assert found.rotated and after["vllm_rank_0.log"][0] != before["vllm_rank_0.log"][0]
        assert after != before and not only_stall_records(str(tmp_path), before, after)  # progress
    finally:
        log.removeHandler(handler)
        handler.close()
        log.propagate = True


def test_a_rank_file_gone_between_two_looks_is_progress_not_a_crash(tmp_path):
    """A rank file renamed or removed after the watcher's snapshot (a rotation, a user) changed: progress, never a
    traceback in the watcher's thread."""
    from logconf.stallwatch import only_stall_records

    gone = tmp_path / "vllm_rank_0.log"
    assert only_stall_records(str(tmp_path), {gone.name: (1, 10)}, {gone.name: (1, 20)}) is False

