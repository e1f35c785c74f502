"""Reading faulthandler's dumps back, grouping the same stacks and naming the odd ones out."""

from __future__ import annotations

import faulthandler
import threading

from logconf.stackgroups import Frame, ProcessStacks, Thread, group, kind_of, parse_dump, rank_list, sentences, where


def _parked(ready: threading.Event, release: threading.Event) -> None:
    ready.set()
    release.wait()


def test_a_real_dump_of_every_thread_parses_into_threads_and_frames(tmp_path):
    ready, release = threading.Event(), threading.Event()
    helper = threading.Thread(target=_parked, args=(ready, release), daemon=True)
    helper.start()
    ready.wait(10)
    path = tmp_path / "dump.txt"
    try:
        with open(path, "w") as file:
            faulthandler.dump_traceback(file=file, all_threads=True)
    finally:
        release.set()
        helper.join(10)
    threads = parse_dump(path.read_text())
    by_id = {t.ident: t for t in threads}
    assert helper.ident in by_id and threading.get_ident() in by_id
    assert by_id[threading.get_ident()].current and not by_id[helper.ident].current
    parked = by_id[helper.ident].frames
    assert [f.function for f in parked[:3]] == ["wait", "wait", "_parked"]  # Condition.wait, Event.wait, ours
    assert parked[2] == Frame(__file__, _parked.__code__.co_firstlineno + 2, "_parked")
    assert where(parked) == parked[2]  # the innermost frame outside the standard library
    assert by_id[threading.get_ident()].frames[0].function == "test_a_real_dump_of_every_thread_parses_into_threads_and_frames"


def test_where_skips_the_standard_library_but_not_site_packages_and_kind_drops_the_number():
    frames = [
        Frame("/usr/lib/python3.11/threading.py", 327, "wait"),
        Frame("<frozen importlib._bootstrap>", 1, "_call"),
        Frame("/venv/lib/python3.11/site-packages/zmq/sugar/socket.py", 800, "recv_multipart"),
        Frame("/job/train.py", 10, "step"),
    ]
    assert where(frames) == frames[2]
    assert where(frames[:2]) == frames[0]  # nothing but the stdlib: the innermost frame
    assert where([]) is None
    assert [kind_of(n) for n in ("EngineCore_DP0", "EngineCore_DP12", "VllmWorker-3", "EngineCore", "Worker7", "7")] == [
        "EngineCore",
        "EngineCore",
        "VllmWorker",
        "EngineCore",
        "Worker",
        "7",
    ]


def test_ranks_are_said_in_runs():
    assert rank_list(["0", "1", "2", "3"]) == "0 to 3"
    assert rank_list(["5", "0", "1", "7", "8", "9"]) == "0, 1, 5, 7 to 9"
    assert rank_list(["driver", "2", None]) == "2, ?, driver"


def _process(pid: int, rank: str, name: str, *functions: str, state: str = "S") -> ProcessStacks:
    frames = [Frame("/job/train.py", 10 + i, f) for i, f in enumerate(functions)]
    return ProcessStacks(pid, rank, name, "node-a", state, [Thread(pid, False, frames)], main_thread=pid)


def test_the_largest_group_of_a_kind_is_where_it_is_and_the_rest_are_odd_ones_out():
    processes = [
        *(_process(100 + r, str(r), "TrainerWorker", "all_reduce", "step") for r in range(6)),
        _process(200, "3", "EngineCore_DP0", "recv_multipart", "run_busy_loop"),
        _process(201, "4", "EngineCore_DP1", "recv_multipart", "run_busy_loop"),
        _process(202, "5", "EngineCore_DP2", "execute_model", "run_busy_loop", state="R"),
        _process(106, "6", "TrainerWorker", "load_batch", "step", state="R"),
    ]
    groups = group(processes)
    assert [(g.kind, len(g.members), g.odd) for g in groups] == [
        ("TrainerWorker", 6, False),
        ("TrainerWorker", 1, True),
        ("EngineCore", 2, False),
        ("EngineCore", 1, True),
    ]
    assert sentences(groups) == [
        "6 TrainerWorker processes (ranks 0 to 5) wait in `all_reduce` (train.py:10)",
        "odd one out: rank 6's TrainerWorker[106] runs in `load_batch` (train.py:10), "
        "while 6 other TrainerWorker processes wait in `all_reduce` (train.py:10)",
        "2 EngineCore processes (ranks 3, 4) wait in `recv_multipart` (train.py:10)",
        "odd one out: rank 5's EngineCore_DP2[202] runs in `execute_model` (train.py:10), "
        "while 2 other EngineCore processes wait in `recv_multipart` (train.py:10)",
    ]


def test_without_a_majority_no_group_is_odd_and_the_same_function_on_another_line_is_another_stack():
    a = _process(1, "0", "Worker", "step")
    b = ProcessStacks(2, "1", "Worker", "n", "S", [Thread(2, False, [Frame("/job/train.py", 99, "step")])], main_thread=2)
    groups = group([a, b])
    assert [(len(g.members), g.odd) for g in groups] == [(1, False), (1, False)]
    assert sentences(groups) == [
        "rank 0's Worker[1] waits in `step` (train.py:10)",
        "rank 1's Worker[2] waits in `step` (train.py:99)",
    ]


def test_the_main_thread_places_a_process_else_the_interrupted_one():
    main = Thread(1, False, [Frame("/job/a.py", 1, "main_loop")])
    other = Thread(2, True, [Frame("/job/a.py", 2, "helper")])
    assert ProcessStacks(9, "0", "P", "n", "S", [other, main], main_thread=1).main is main
    assert ProcessStacks(9, "0", "P", "n", "S", [main, other], main_thread=None).main is other
    assert ProcessStacks(9, "0", "P", "n", "S", [], main_thread=1).main is None
