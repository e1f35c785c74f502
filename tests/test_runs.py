"""Rank files out of time order: found as ordered runs, merged back into one timeline that never steps back."""

from __future__ import annotations

import calendar
import logging
import os
import subprocess
import sys

from helpers import read_records
from logwriters import REPO, at_times, logconf_cli, run

import logconf
from logconf.merge import merge_files
from logconf.runs import MAX_RUNS, WINDOW, Run, find_runs

T0 = calendar.timegm((2026, 11, 26, 9, 0, 0))


def _merged(directory) -> list[tuple[str, str]]:
    """(time, message) of each entry ``logconf merge`` prints, through the real command line."""
    done = subprocess.run(logconf_cli("merge", str(directory)), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [(line[:24], line.rsplit(": ", 1)[1]) for line in done.stdout.splitlines()]


def test_a_file_in_order_is_one_run(logdir):
    run(at_times, "0", "text", T0, list(range(300)))
    assert find_runs(str(logdir / "vllm_rank_0.log")) == [Run(0, 1)]


def test_writers_a_few_places_out_of_turn_stay_one_run_put_back_in_order(logdir):
    """Pairs swapped all along the file (concurrent writers): one run, its window sorts them."""
    run(at_times, "0", "json", T0, [i ^ 1 for i in range(200)])  # 1, 0, 3, 2, ...
    assert find_runs(str(logdir / "vllm_rank_0.jsonl")) == [Run(0, 1, shuffled=True)]
    merged = _merged(logdir)
    assert [m for _, m in merged] == [f"i={i ^ 1}" for i in range(200)]
    assert [t for t, _ in merged] == [f"2026-11-26T09:00:00.{ms:03d}Z" for ms in range(200)]


def test_a_block_written_late_is_a_run_of_its_own_and_merges_in_time(logdir):
    """100 newer records, then 100 older ones (a released hold), then newer again: two runs, one timeline."""
    offsets = [1000 + i for i in range(100)] + list(range(100)) + [2000 + i for i in range(50)]
    run(at_times, "0", "text", T0, offsets)
    path = logdir / "vllm_rank_0.log"
    lines = path.read_text().splitlines()
    assert find_runs(str(path)) == [Run(0, 1, stop=len("\n".join(lines[:100])) + 1), Run(len("\n".join(lines[:100])) + 1, 101)]
    merged = _merged(logdir)
    assert [m for _, m in merged] == [f"i={i}" for i in range(100, 200)] + [f"i={i}" for i in range(100)] + [
        f"i={i}" for i in range(200, 250)
    ]
    assert [t for t, _ in merged] == sorted(t for t, _ in merged)


def test_runs_are_capped_and_every_entry_still_comes_out_once(logdir):
    """A file in reverse time order is a new run past each window: MAX_RUNS runs at most, nothing lost or doubled."""
    count = (WINDOW + 1) * (MAX_RUNS + 2)
    run(at_times, "0", "text", T0, [(count - i) * 1000 for i in range(count)])
    runs = find_runs(str(logdir / "vllm_rank_0.log"))
    assert len(runs) == MAX_RUNS and runs[-1].shuffled
    messages = sorted(int(e.record["message"][2:]) for e in merge_files(str(logdir)))
    assert messages == list(range(count))


def test_a_traceback_stays_with_its_record_when_the_window_moves_it(logdir, monkeypatch):
    monkeypatch.setenv("LOGCONF_RANK", "0")
    from helpers import load_like_vllm

    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    try:
        raise RuntimeError("late failure")
    except RuntimeError:
        late = logging.LogRecord("vllm.engine", logging.ERROR, __file__, 1, "held failure", None, sys.exc_info())
    late.created, late.msecs = T0, 0.0
    newer = logging.LogRecord("vllm.engine", logging.INFO, __file__, 1, "newer", None, None)
    newer.created, newer.msecs = T0 + 5, 0.0
    log.handle(newer)
    log.handle(late)
    entries = list(merge_files(str(logdir)))
    assert [(e.record["message"], len(e.lines)) for e in entries] == [("held failure", len(entries[0].lines)), ("newer", 1)]
    assert entries[0].lines[-1] == "RuntimeError: late failure"


def test_records_released_after_a_hold_merge_before_the_newer_records_of_their_file(unranked_actor):
    """A real hold: the actor's records wait while another process writes rank 0's file; released after them,
    they still come first in merge's timeline."""
    from helpers import load_like_vllm

    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    count = WINDOW + 36  # more than a window: the released block is a run of its own
    for i in range(count):
        log.info("held %d", i)
    writer = "import logging, logconf, json, logging.config\n" + (
        "logging.config.dictConfig(json.load(open(logconf.vllm_config_path())))\n"
        f"for i in range({count}): logging.getLogger('vllm.engine').info('newer %d', i)\n"
    )
    env = {**os.environ, "LOGCONF_RANK": "0", "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", writer], env=env, check=True, timeout=120)
    logconf.set_rank(0)
    path = unranked_actor / "vllm_rank_0.log"
    held, newer = [f"held {i}" for i in range(count)], [f"newer {i}" for i in range(count)]
    assert [r["message"] for r in read_records(path)] == newer + held
    assert len(find_runs(str(path))) == 2
    merged = _merged(unranked_actor)
    assert [m for _, m in merged] == held + newer
    assert [t for t, _ in merged] == sorted(t for t, _ in merged)


def test_a_line_longer_than_a_block_is_passed_over_and_line_numbers_stay_exact(logdir):
    """Newer records, a 3 MiB line, then an older block: the older block is run 2, starting at its true line."""
    run(at_times, "0", "text", T0, [5000 + i for i in range(100)])
    path = logdir / "vllm_rank_0.log"
    with open(path, "ab") as file:
        file.write(b"x" * (3 << 20) + b"\n")
    run(at_times, "0", "text", T0, list(range(WINDOW + 10)))
    runs = find_runs(str(path))
    assert [(r.first_line, r.shuffled) for r in runs] == [(1, False), (102, False)]
    assert runs[1].start == path.stat().st_size - len("".join(path.read_text().splitlines(True)[101:]).encode())
    entries = list(merge_files(str(logdir)))
    assert [e.line_number for e in entries] == list(range(102, 102 + WINDOW + 10)) + list(range(1, 102))


def test_json_lines_of_an_earlier_release_with_a_blank_after_each_colon_are_read_the_same(tmp_path):
    """Rank files written before JSON lines became compact ({"time": "..."}) still show their runs."""
    order = [1, 0, *range(2, WINDOW + 5)]
    stamps = [f"2026-11-26T09:00:00.{ms:03d}Z" for ms in order] + ["2026-11-26T08:00:00.000Z"]  # a second run
    path = tmp_path / "vllm_rank_0.jsonl"
    path.write_text("".join(f'{{"time": "{s}", "level": "INFO", "message": "m"}}\n' for s in stamps))
    runs = find_runs(str(path))
    assert [(r.first_line, r.shuffled) for r in runs] == [(1, True), (len(order) + 1, False)]
