"""Records held while a Ray actor's rank is unknown: released at set_rank, by the deadline, at close,
when full by count or by bytes; a forked child writes its own at once.

The ``unranked_actor`` fixture (conftest) puts a stand-in ``ray`` module in ``sys.modules`` that
makes this process look like a Ray actor without a rank, so that the hold runs in the test process. The real thing runs in
tests/real/test_real_stack.py (``-k late``) and tests/real/test_real_auto.py.
"""

from __future__ import annotations

import logging
import logging.config
import multiprocessing
import os
import time

import pytest
from helpers import load_like_vllm, read_records

import logconf
from logconf import hold


def messages(path) -> list[tuple[str, str]]:
    return [(r["rank"], r["message"]) for r in read_records(path)] if path.exists() else []


def wait_for(condition, limit_s: float = 30.0) -> None:
    """Poll ``condition`` until it holds (the limit only stops a test that would otherwise hang)."""
    deadline = time.monotonic() + limit_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_set_rank_writes_the_held_records_to_the_new_rank_with_it(unranked_actor):
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    log.info("held 1")
    log.info("held 2")
    assert list(unranked_actor.iterdir()) == []  # nothing written, not even an empty rank-0 file
    logconf.set_rank(3)
    log.info("after")
    assert messages(unranked_actor / "vllm_rank_3.log") == [("3", "held 1"), ("3", "held 2"), ("3", "after")]
    assert sorted(p.name for p in unranked_actor.iterdir()) == ["vllm_rank_3.log"]


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
    wait_for(lambda: path.exists() and path.stat().st_size > 0)
    assert messages(path) == [("0", "held")]


@pytest.mark.parametrize("ending", ["logging.shutdown", "close", "dictConfig"])
def test_shutdown_close_and_a_later_dictconfig_write_what_is_held(unranked_actor, ending):
    """Each ends the hold: the records go to the rank known then, and logging goes on after it.

    (After dictConfig the new handlers hold again: the process still has no rank.)"""
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    log.info("held")
    handler = logging.getLogger("vllm").handlers[0]
    if ending == "logging.shutdown":
        logging.shutdown()
    elif ending == "close":
        handler.close()
    else:
        load_like_vllm()  # dictConfig closes the handlers it replaces
    assert messages(unranked_actor / "vllm_rank_0.log") == [("0", "held")]
    log.info("after")
    logconf.set_rank(0)
    assert messages(unranked_actor / "vllm_rank_0.log") == [("0", "held"), ("0", "after")]


def test_the_hold_ends_when_its_records_reach_the_byte_cap(unranked_actor):
    """Records of 1 MiB: seven stay held, the eighth passes 8 MiB and all eight are written."""
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    path = unranked_actor / "vllm_rank_0.log"
    blob = "x" * (1 << 20)
    for i in range(7):
        log.info("big %d %s", i, blob)
    assert not path.exists()
    log.info("big 7 %s", blob)
    assert [m.split(" ")[:2] for _, m in messages(path)] == [["big", str(i)] for i in range(8)]
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
    logging.shutdown()
    assert messages(unranked_actor / "vllm_rank_0.log") == [("0", "child"), ("0", "parent held")]
