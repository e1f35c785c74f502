"""Records held while a Ray actor's rank is unknown: on disk at once, in a spill file the tools read;
written to the rank's file at set_rank, by the deadline, when full by count or by bytes, at exit;
kept through close, logging.shutdown and any later dictConfig; a forked child writes its own at once.

The ``unranked_actor`` fixture (conftest) puts a stand-in ``ray`` module in ``sys.modules`` that
makes this process look like a Ray actor without a rank, so that the hold runs in the test
process; child processes do the same with ``capture_helpers.pose_as_unranked_ray_actor``. The real
thing runs in tests/real/test_real_stack.py (``-k late``), tests/real/test_real_auto.py and
tests/real/test_real_hold.py.
"""

from __future__ import annotations

import json
import logging
import logging.config
import multiprocessing
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from frameworks import UVICORN_LOGGING_CONFIG
from helpers import load_like_vllm, read_records

import logconf
from logconf import cli, hold
from logconf.logfiles import RECORD, iter_entries

REPO = Path(__file__).resolve().parents[1]


def messages(path) -> list[tuple[str, str]]:
    return [(r["rank"], r["message"]) for r in read_records(path)] if path.exists() else []


def wait_for(condition, limit_s: float = 30.0) -> None:
    """Poll ``condition`` until it holds (the limit only stops a test that would otherwise hang)."""
    deadline = time.monotonic() + limit_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def with_tracebacks(path: Path) -> list[tuple[dict, str]]:
    """Each record of a rank file and its traceback (a text record's further lines, a JSON record's exc_info)."""
    entries = list(iter_entries(str(path)))
    assert all(e.kind == RECORD for e in entries), entries
    return [(e.record, e.record.get("exc_info") or "\n".join(e.lines[1:])) for e in entries]  # type: ignore[union-attr]


def spill(logdir: Path, name: str = "vllm", pid: int | None = None) -> Path:
    return logdir / f"{name}_rank_held-{pid or os.getpid()}.log"


def test_the_hold_time_counts_from_the_first_record_not_from_the_configuration(unranked_actor, monkeypatch):
    """A Ray worker configured at its start may wait longer than the hold time before it is given its actor (an
    idle worker Ray started ahead, a loaded machine): that wait holds nothing and uses none of the hold."""
    monkeypatch.setenv("LOGCONF_RANK_HOLD_S", "0.3")
    load_like_vllm()
    time.sleep(0.6)  # configured, and no record yet: the worker waits for its actor
    log = logging.getLogger("vllm.engine")
    log.info("in __init__, before the rank")
    logconf.set_rank(2)
    assert messages(unranked_actor / "vllm_rank_2.log") == [("2", "in __init__, before the rank")]
    assert not (unranked_actor / "vllm_rank_0.log").exists()

def test_an_actor_started_with_torch_s_rank_writes_at_once_to_that_rank(unranked_actor, monkeypatch):
    """RANK (torchrun's, a framework's) is a rank as good as LOGCONF_RANK: nothing is held, no spill file."""
    monkeypatch.delenv("LOGCONF_RANK", raising=False)
    monkeypatch.setenv("RANK", "2")
    load_like_vllm()
    logging.getLogger("vllm.engine").info("at once")
    assert sorted(p.name for p in unranked_actor.iterdir()) == ["vllm_rank_2.log"]
    assert messages(unranked_actor / "vllm_rank_2.log") == [("2", "at once")]

def test_set_rank_writes_the_held_records_to_the_new_rank_with_it(unranked_actor):
    """Held records are in the spill file as they are logged; set_rank moves them to the rank's file."""
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    log.info("held 1")
    log.info("held 2")
    held = f"held-{os.getpid()}"
    assert messages(spill(unranked_actor)) == [(held, "held 1"), (held, "held 2")]
    assert sorted(p.name for p in unranked_actor.iterdir()) == [spill(unranked_actor).name]  # no rank-0 file
    logconf.set_rank(3)
    log.info("after")
    assert messages(unranked_actor / "vllm_rank_3.log") == [("3", "held 1"), ("3", "held 2"), ("3", "after")]
    assert sorted(p.name for p in unranked_actor.iterdir()) == ["vllm_rank_3.log"]  # the spill file is gone


def test_a_held_record_keeps_its_message_as_it_was_when_logged(unranked_actor):
    load_like_vllm()
    state = {"step": 1}
    logging.getLogger("vllm.engine").info("state %s", state)
    state["step"] = 2
    logconf.set_rank(0)
    assert messages(unranked_actor / "vllm_rank_0.log") == [("0", "state {'step': 1}")]


def test_the_hold_deadline_writes_the_records_by_itself(unranked_actor, monkeypatch):
    """LOGCONF_RANK_HOLD_S=0.2 and nothing more logged: the timer writes the record to the rank known then."""
    monkeypatch.setenv("LOGCONF_RANK_HOLD_S", "0.2")
    load_like_vllm()
    logging.getLogger("vllm.engine").info("held")
    path = unranked_actor / "vllm_rank_0.log"
    wait_for(lambda: path.exists() and path.stat().st_size > 0 and not spill(unranked_actor).exists())
    assert messages(path) == [("0", "held")]
    assert not spill(unranked_actor).exists()


def _uvicorn_config() -> None:
    logging.config.dictConfig(UVICORN_LOGGING_CONFIG)


ENDINGS = {
    "logging.shutdown": logging.shutdown,
    "close": lambda: logging.getLogger("vllm").handlers[0].close(),
    "vllm_logging.json again (vLLM >= 0.31 at engine creation)": load_like_vllm,
    "uvicorn's LOGGING_CONFIG": _uvicorn_config,
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_close_shutdown_and_a_foreign_dictconfig_do_not_end_the_hold(unranked_actor, ending):
    """Each closes the handlers; the hold goes on (its records are on disk), later records join it,
    and set_rank writes them all, in order, to the rank set afterwards: none to rank 0's file."""
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    log.info("held")
    ENDINGS[ending]()
    log.info("after")
    held = f"held-{os.getpid()}"
    assert messages(spill(unranked_actor)) == [(held, "held"), (held, "after")]
    logconf.set_rank(2)
    log.info("ranked")
    assert messages(unranked_actor / "vllm_rank_2.log") == [("2", "held"), ("2", "after"), ("2", "ranked")]
    assert sorted(p.name for p in unranked_actor.iterdir()) == ["vllm_rank_2.log"]


def test_the_exit_hook_writes_what_is_held_to_the_rank_known_then(unranked_actor):
    """At a normal exit (atexit, before logging's shutdown) the hold ends: the rank file has the record, the spill is gone."""
    load_like_vllm()
    logging.getLogger("vllm.engine").info("held")
    logconf.handlers._release_held_at_exit()
    assert messages(unranked_actor / "vllm_rank_0.log") == [("0", "held")]
    assert not spill(unranked_actor).exists()


def test_the_hold_ends_when_its_records_reach_the_byte_cap(unranked_actor):
    """Records of 1 MiB: seven stay held, the eighth passes 8 MiB and all eight are written."""
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    path = unranked_actor / "vllm_rank_0.log"
    blob = "x" * (1 << 20)
    for i in range(7):
        log.info("big %d %s", i, blob)
    assert not path.exists()
    assert len(messages(spill(unranked_actor))) == 7
    log.info("big 7 %s", blob)
    assert [m.split(" ")[:2] for _, m in messages(path)] == [["big", str(i)] for i in range(8)]
    assert not spill(unranked_actor).exists()
    log.info("small")
    assert messages(path)[-1] == ("0", "small")


def test_the_hold_ends_when_its_records_reach_the_count_cap(unranked_actor):
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    path = unranked_actor / "vllm_rank_0.log"
    for i in range(hold.MAX_RECORDS - 1):
        log.info("n %d", i)
    assert not path.exists()
    log.info("n %d", hold.MAX_RECORDS - 1)
    assert [m for _, m in messages(path)] == [f"n {i}" for i in range(hold.MAX_RECORDS)]


def _child_logs(tag: str) -> None:
    logging.getLogger("vllm.engine").info(tag)


def test_a_multiprocessing_fork_child_writes_its_record_and_not_the_parents(unranked_actor):
    """multiprocessing's fork children end with os._exit: what a child logs is written at once, by it."""
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    log.info("parent held")
    child = multiprocessing.get_context("fork").Process(target=_child_logs, args=("child",))
    child.start()
    child.join()
    assert child.exitcode == 0
    records = read_records(unranked_actor / "vllm_rank_0.log")
    assert [(r["message"], r["pid"]) for r in records] == [("child", child.pid)]
    assert messages(spill(unranked_actor)) == [(f"held-{os.getpid()}", "parent held")]  # the child left it alone
    logconf.set_rank(2)
    assert messages(unranked_actor / "vllm_rank_2.log") == [("2", "parent held")]
    assert messages(unranked_actor / "vllm_rank_0.log") == [("0", "child")]


def test_an_os_fork_child_that_ends_with_os_exit_keeps_its_record(unranked_actor):
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    log.info("parent held")
    pid = os.fork()
    if pid == 0:
        try:
            log.info("child")
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [(r["message"], r["pid"]) for r in read_records(unranked_actor / "vllm_rank_0.log")] == [("child", pid)]
    assert messages(spill(unranked_actor)) == [(f"held-{os.getpid()}", "parent held")]  # the child left it alone
    logconf.set_rank(0)
    assert messages(unranked_actor / "vllm_rank_0.log") == [("0", "child"), ("0", "parent held")]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_held_records_traceback_reaches_the_spill_and_the_rank_file(unranked_actor, monkeypatch, fmt):
    monkeypatch.setenv("LOGCONF_FORMAT", fmt)
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    try:
        _ = 1 / 0
    except ZeroDivisionError:
        log.exception("step failed")
    ext = "jsonl" if fmt == "json" else "log"
    spilled = with_tracebacks(unranked_actor / f"vllm_rank_held-{os.getpid()}.{ext}")
    logconf.set_rank(1)
    for records in (spilled, with_tracebacks(unranked_actor / f"vllm_rank_1.{ext}")):
        assert [r["message"] for r, _ in records] == ["step failed"]
        trace = records[0][1]
        assert trace.startswith("Traceback (most recent call last):") and trace.endswith("ZeroDivisionError: division by zero")


def test_a_spill_file_left_by_a_dead_process_with_this_pid_is_left_alone(unranked_actor):
    """Pids are reused: a file left under this pid's spill name is not appended to nor removed."""
    unranked_actor.mkdir()
    left = spill(unranked_actor)
    left.write_text("2026-01-01T00:00:00.000Z INFO rank=x P[1] vllm.engine: left by the dead\n")
    load_like_vllm()
    logging.getLogger("vllm.engine").info("held")
    again = unranked_actor / f"vllm_rank_held-{os.getpid()}-2.log"
    assert messages(again) == [(f"held-{os.getpid()}-2", "held")]
    logconf.set_rank(4)
    assert messages(unranked_actor / "vllm_rank_4.log") == [("4", "held")]
    assert left.read_text().endswith("left by the dead\n") and not again.exists()


DIES = {
    "SIGKILL": "os.kill(os.getpid(), signal.SIGKILL)",
    "SIGSEGV": "ctypes.string_at(0)",
    "os._exit": "os._exit(3)",
}


@pytest.mark.parametrize("death", list(DIES))
def test_a_process_that_dies_in_the_hold_leaves_every_held_record_on_disk_for_the_tools(logdir, capsys, death):
    """An unranked Ray actor logs, then dies by SIGKILL, a native crash or os._exit: its records
    are in its spill file, whole and in order, and summary and merge read it as a rank file."""
    code = f"""
        import ctypes, logging, os, signal
        from capture_helpers import pose_as_unranked_ray_actor
        from helpers import load_like_vllm
        pose_as_unranked_ray_actor()
        load_like_vllm()
        log = logging.getLogger("vllm.engine")
        for i in range(3):
            log.info("start-up %d", i)
        try:
            raise OSError("no such device")
        except OSError:
            log.exception("device check failed")
        print(os.getpid(), flush=True)
        {DIES[death]}
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "VLLM_", "RANK"))}
    env.update(LOGCONF_DIR=str(logdir), PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'tests'}")
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, timeout=60)
    assert done.returncode == {"SIGKILL": -9, "SIGSEGV": -11, "os._exit": 3}[death], done.stderr
    pid = int(done.stdout)
    assert sorted(p.name for p in logdir.iterdir()) == [f"vllm_rank_held-{pid}.log"]
    records = with_tracebacks(spill(logdir, pid=pid))
    assert [(r["rank"], int(r["pid"]), r["message"]) for r, _ in records] == [
        *((f"held-{pid}", pid, f"start-up {i}") for i in range(3)),
        (f"held-{pid}", pid, "device check failed"),
    ]
    assert records[-1][1].endswith("OSError: no such device")
    capsys.readouterr()
    assert cli.main(["summary", str(logdir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ok"] is True
    assert [(f["file"], f["records"]) for f in summary["files"]] == [(f"vllm_rank_held-{pid}.log", 4)]
    assert cli.main(["merge", str(logdir)]) == 0
    merged = capsys.readouterr().out.splitlines()
    assert [line.split(": ", 1)[1] for line in merged if f"[{pid}]" in line] == [
        "start-up 0", "start-up 1", "start-up 2", "device check failed"
    ]


def test_held_records_land_after_newer_ones_and_merge_shows_one_timeline(unranked_actor, capsys):
    """Another process writes rank 3's file during the hold; set_rank(3) appends the older held
    records after it in one run, and merge prints every record in time order."""
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    log.info("held early")
    time.sleep(0.002)  # a millisecond clock: the other process's record is strictly newer
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VLLM_", "RANK"))}
    env.update(LOGCONF_RANK="3", PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'tests'}")
    code = "from helpers import load_like_vllm\nimport logging\nload_like_vllm()\nlogging.getLogger('vllm').info('ranked peer')"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    time.sleep(0.002)
    log.info("held late")
    logconf.set_rank(3)
    log.info("after")
    assert [m for _, m in messages(unranked_actor / "vllm_rank_3.log")] == ["ranked peer", "held early", "held late", "after"]
    capsys.readouterr()
    assert cli.main(["merge", str(unranked_actor)]) == 0
    merged = [line.split(": ", 1)[1] for line in capsys.readouterr().out.splitlines()]
    assert merged == ["held early", "ranked peer", "held late", "after"]
