"""`logconf tail`: the last records merged, and with -f every rank file followed, new files included."""

from __future__ import annotations

import calendar
import json
import logging
import multiprocessing
import os
import re
import subprocess
import threading
import time

from helpers import following, load_like_vllm, read_records
from logwriters import REPO, at_fixed_time, logconf_cli, loguru_trainer, run, slow_engine, steady_writer, trainer

from logconf.logfiles import subsystem_of
from logconf.tail import Follower, follow

T0 = calendar.timegm((2026, 11, 26, 9, 0, 0))
HEAD = re.compile(r"^\S+Z (\S+) ([A-Z]+) rank=(\S+) (\S+)\[\d+\] (\S+): (.*)$")


def test_tail_prints_the_last_records_of_the_merged_timeline(logdir):
    """Without -f, tail -n 3 prints the 3 latest records across all files, in merge order."""
    run(at_fixed_time, "0", "text", T0, 3, name="EngineActor-0")
    run(at_fixed_time, "1", "json", T0 + 1, 2, name="EngineActor-1")
    result = subprocess.run(logconf_cli("tail", str(logdir), "-n", "3"), cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert [HEAD.match(line).group(6) for line in result.stdout.splitlines()] == [
        "tie rank=0 i=2",
        "tie rank=1 i=0",
        "tie rank=1 i=1",
    ]


def _levels(lines: list[str]) -> list[tuple[str, str, str]]:
    """(file, level, message) of each text line, or of each --json line."""
    if lines and lines[0].startswith("{"):
        return [(d["file"], d["level"], d["message"]) for d in map(json.loads, lines)]
    return [m.group(1, 2, 3) for m in map(HEAD_ANY_LEVEL.match, lines) if m]


HEAD_ANY_LEVEL = re.compile(r"^\S+Z (\S+) ([A-Z]+|Level \d+) rank=\S+ \S+\[\d+\] \S+: (.*)$")


def test_tail_level_filter_ranks_loguru_and_unnamed_levels_by_number(logdir):
    """tail --level INFO keeps Loguru's SUCCESS and drops its TRACE and a level-15 record, text and JSON, with and without -f."""
    run(loguru_trainer, "0", "text", name="MainProcess")
    kept = [("skyrl_rank_0.log", level, level.lower()) for level in ("INFO", "SUCCESS", "WARNING")]
    for extra in ([], ["--json"]):
        result = subprocess.run(
            logconf_cli("tail", str(logdir), "--level", "INFO", *extra), cwd=REPO, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert _levels(result.stdout.splitlines()) == kept
    with following(logconf_cli("tail", "-f", str(logdir), "--level", "25", "--interval", "0.05"), REPO) as (_, reader):
        run(loguru_trainer, "1", "json", name="MainProcess")
        lines = reader.until(lambda seen: len(seen) >= 4)
    lines += reader.rest()
    assert _levels(lines) == [*kept[1:], *(("skyrl_rank_1.jsonl", level, level.lower()) for level in ("SUCCESS", "WARNING"))]
    assert len(lines) == 4


def test_follow_prints_records_from_every_rank_file_including_ones_created_later(logdir):
    """tail -f -n 1 on a run: the last old record, then rank 0's new ones and rank 1's and the trainer's new files', each once.

    Tracebacks stay whole. The first look's record says tail has read to the end; only then are
    new records written, so none of them can be taken for old ones.
    """
    run(at_fixed_time, "0", "text", T0, 2, name="EngineActor-0")  # old records: -n 1 prints the last
    expected_lines = 1 + 11 + 2 * 4
    with following(logconf_cli("tail", "-f", str(logdir), "-n", "1", "--interval", "0.05"), REPO) as (_, reader):
        lines = reader.until(lambda seen: len(seen) >= 1)  # the first look is done
        ctx = multiprocessing.get_context("spawn")
        writers = [
            ctx.Process(target=slow_engine, args=("0", "text", 4, 0.1), name="EngineCore_DP0"),
            ctx.Process(target=slow_engine, args=("1", "json", 4, 0.1), name="EngineCore_DP0"),
            ctx.Process(target=trainer, args=("0", "json", 3), name="MainProcess"),
        ]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(120)
            assert writer.exitcode == 0
        lines += reader.until(lambda seen: len(lines) + len(seen) >= expected_lines)
    lines += reader.rest()  # whatever tail printed before it stopped: a duplicate would show here
    assert HEAD.match(lines[0]).group(1, 6) == ("vllm_rank_0.log", "tie rank=0 i=1")
    heads = [HEAD.match(line) for line in lines[1:] if HEAD.match(line)]
    assert sorted((m.group(1), m.group(6)) for m in heads) == sorted(
        [("vllm_rank_0.log", f"live rank=0 i={i}") for i in range(3)]
        + [("vllm_rank_1.jsonl", f"live rank=1 i={i}") for i in range(3)]
        + [("vllm_rank_0.log", "step 4 failed"), ("vllm_rank_1.jsonl", "step 4 failed")]
        + [("skyrl_rank_0.jsonl", f"trainer step {i}") for i in range(3)]
    )
    for i, line in enumerate(lines):
        if line.endswith("step 4 failed"):
            assert lines[i + 1] == "Traceback (most recent call last):"
            assert lines[i + 4] == "RuntimeError: step 4 blew up"
    assert len(lines) == expected_lines
    assert all("tie " not in line for line in lines[1:])


def test_follow_with_count_zero_prints_only_what_arrives_after_its_first_look(logdir):
    """follow(count=0) reads every file to its end and emits nothing; records written after that come out once."""
    run(at_fixed_time, "0", "text", T0, 2, name="EngineActor-0")
    batches: list[list[tuple[str, str]]] = []
    first_look, stop = threading.Event(), threading.Event()

    def emit(entries) -> None:
        batches.append([(e.file, e.record["message"]) for e in entries])
        first_look.set()

    follower = threading.Thread(
        target=follow, args=(str(logdir), 0, lambda e: True, emit), kwargs={"interval": 0.02, "stop": stop.is_set}
    )
    follower.start()
    try:
        assert first_look.wait(60)
        run(at_fixed_time, "0", "text", T0 + 1, 1, name="EngineActor-0")  # appended to the old file
        run(at_fixed_time, "1", "json", T0 + 1, 1, name="EngineActor-1")  # a new file
        _wait_for(lambda: sum(map(len, batches)) >= 2, "the two new records")
    finally:
        stop.set()
        follower.join(30)
    assert batches[0] == []
    assert sorted(record for batch in batches[1:] for record in batch) == [
        ("vllm_rank_0.log", "tie rank=0 i=0"),
        ("vllm_rank_1.jsonl", "tie rank=1 i=0"),
    ]


def test_follower_keeps_an_unfinished_line_back_until_its_newline_arrives(logdir):
    """Bytes of a record still being written are not printed (or called torn) until the line is whole."""
    load_like_vllm()
    logging.getLogger("vllm.a").info("first")
    path = str(logdir / "vllm_rank_0.log")
    assert subsystem_of("vllm_rank_0.log") == "vllm"
    with Follower(path, 0) as follower:
        assert [e.record["message"] for e in follower.poll()] == ["first"]
        with open(path, "rb") as file:
            whole = file.read()
        logging.getLogger("vllm.a").info("second")
        with open(path, "rb") as file:
            second = file.read()[len(whole) :]
        with open(path, "r+b") as file:  # stand in for a write seen half done: cut the second record short
            file.truncate(len(whole) + 10)
        assert list(follower.poll()) == []
        with open(path, "ab") as file:
            file.write(second[10:])
        assert [e.record["message"] for e in follower.poll()] == ["second"]
        assert list(follower.poll()) == []


def _wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


def test_follow_reads_a_rotated_file_to_its_end_and_then_the_new_one(logdir):
    """logrotate renames the rank file and creates a new one while a writer logs: tail -f prints every record once, in order.

    RankFileHandler keeps writing to the renamed file until its next reopen check (within 1 s),
    so records land in the old file after the new one exists; tail must read both.
    """
    logdir.mkdir()
    path, rotated, stop = logdir / "vllm_rank_0.log", logdir / "vllm_rank_0.log.1", logdir.parent / "stop"
    command = logconf_cli("tail", "-f", str(logdir), "-n", "1000000", "--interval", "0.05")  # -n: all, whenever it starts
    with following(command, REPO) as (_, reader):
        writer = multiprocessing.get_context("spawn").Process(target=steady_writer, args=("0", str(stop), 0.002))
        try:
            writer.start()
            lines = reader.until(lambda seen: len(seen) >= 20)  # tail is following the first file
            os.rename(path, rotated)  # logrotate: rename, then create (mode 0640, as the handler would)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o640))
            _wait_for(lambda: path.stat().st_size > 0, "the writer to notice the rename")
            lines += reader.until(lambda seen: len(seen) >= 20)  # some records of the new file, as they come
            stop.touch()
            writer.join(60)
            assert writer.exitcode == 0
            written = [r["message"] for r in read_records(rotated) + read_records(path)]
            lines += reader.until(lambda seen: len(lines) + len(seen) >= len(written))
        finally:
            if writer.is_alive():
                writer.kill()
    lines += reader.rest()
    assert written == [f"rec {i}" for i in range(len(written) - 1)] + ["last"]  # the writer lost nothing either
    assert [HEAD.match(line).group(6) for line in lines] == written


def test_a_follower_reads_a_copytruncated_file_again_from_its_start(tmp_path):
    """logrotate's copytruncate empties the file in place; a shorter record written then is the next one read."""
    path = tmp_path / "vllm_rank_0.log"

    def line(second: int, message: str) -> str:
        return f"2026-11-26T09:00:{second:02d}.000Z INFO rank=0 EngineCore_DP0[7] vllm.engine: {message}\n"

    path.write_text(line(1, "a long record before the truncation " * 4) + line(2, "another one"))
    follower = Follower(str(path), 0)
    assert [e.record["message"] for e in follower.poll()][1:] == ["another one"]
    with open(path, "r+") as file:
        file.truncate(0)
        file.write(line(3, "short"))
    assert [e.record["message"] for e in follower.poll()] == ["short"]
    follower.close()
