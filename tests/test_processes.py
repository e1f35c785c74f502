"""Real spawn and fork children that share rank files, as vLLM's processes do."""

from __future__ import annotations

import collections
import logging
import multiprocessing
import threading

import pytest
from helpers import big_writer, load_like_vllm, rank_group, read_records

COUNT = 50


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_two_ranks_of_three_processes_each_write_only_their_own_file(logdir, method):
    """An actor, its EngineCore_DP0 and its VllmWorker-0 per rank: exact counts, zero foreign lines."""
    ctx = multiprocessing.get_context(method)
    groups = [ctx.Process(target=rank_group, args=(str(rank), COUNT, method), name=f"EngineActor-{rank}") for rank in (0, 1)]
    for process in groups:
        process.start()
    for process in groups:
        process.join(120)
        assert process.exitcode == 0
    for rank in ("0", "1"):
        records = read_records(logdir / f"vllm_rank_{rank}.log")
        by_process = collections.Counter(r["process_name"] for r in records)
        assert by_process == {f"EngineActor-{rank}": COUNT, "EngineCore_DP0": COUNT, "VllmWorker-0": COUNT}
        assert {r["rank"] for r in records} == {rank}
        assert all(f"rank={rank} " in r["message"] for r in records)  # zero foreign lines
        assert len({r["pid"] for r in records}) == 3
        seen = collections.Counter((r["process_name"], r["message"]) for r in records)
        assert set(seen.values()) == {1}


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_four_processes_writing_records_over_64k_never_interleave(logdir, method):
    """Records of 64 KiB to 256 KiB from 4 processes at once come back whole, each exactly once."""
    ctx = multiprocessing.get_context(method)
    sizes = [64 * 1024 + 1, 100_000, 256 * 1024]
    writers = [ctx.Process(target=big_writer, args=(f"<w{n}>", 20, sizes[n % 3])) for n in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(120)
        assert writer.exitcode == 0
    records = read_records(logdir / "vllm_rank_0.log")
    assert len(records) == 80
    seen = collections.Counter()
    for record in records:
        tag, index, body, end = record["message"].split(" ")
        assert end == "END"
        assert len(body) == sizes[int(tag[2]) % 3]
        assert body == (tag * (len(body) // len(tag) + 1))[: len(body)]
        seen[(tag, int(index))] += 1
    assert seen == {(f"<w{n}>", i): 1 for n in range(4) for i in range(20)}


def test_fork_after_configuration_writes_nothing_twice(logdir):
    """A forked child inherits the open file; the handler keeps no buffer to write twice."""
    load_like_vllm()
    log = logging.getLogger("vllm.parent")
    log.info("before fork")
    child = multiprocessing.get_context("fork").Process(target=_child_logs, name="EngineCore_DP0")
    child.start()
    child.join(60)
    assert child.exitcode == 0
    log.info("after fork")
    records = read_records(logdir / "vllm_rank_0.log")
    assert [(r["process_name"], r["message"]) for r in records] == [
        ("MainProcess", "before fork"),
        ("EngineCore_DP0", "from the child"),
        ("MainProcess", "after fork"),
    ]


def _child_logs() -> None:
    logging.getLogger("vllm.child").info("from the child")


def test_threads_share_a_handler_without_deadlock_or_loss(logdir):
    """vLLM logs from its asyncio thread and from executor threads at once."""
    load_like_vllm()
    log = logging.getLogger("vllm.threads")

    def work(n: int) -> None:
        for i in range(500):
            log.info("thread %d record %d", n, i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive(), "logging deadlocked"
    lock = logging.getLogger("vllm").handlers[0].lock
    assert lock.acquire(blocking=False), "the handler lock was left held"
    lock.release()
    messages = [r["message"] for r in read_records(logdir / "vllm_rank_0.log")]
    assert sorted(messages) == sorted(f"thread {n} record {i}" for n in range(4) for i in range(500))
