"""Lines over LINE_LIMIT: summary, merge and tail count them with file and line number, never hold or print them whole."""

from __future__ import annotations

import calendar
import json
import os
import subprocess
import tempfile

from helpers import following
from logwriters import REPO, at_fixed_time, logconf_cli, run

from logconf.logfiles import LINE_LIMIT, SHOWN, LineReader, TooLong

T0 = calendar.timegm((2026, 11, 26, 9, 0, 0))
RUNAWAY = 2 * LINE_LIMIT  # a print() of 2 MiB on its own line, mid-file
BLOB = 64 * LINE_LIMIT  # 64 MiB at the end of the file, no newline: a writer that never ended its line
SECOND = "2026-11-26T09:00:01.000Z"  # the time of the record between the long lines
HEADROOM_KIB = 32 * 1024  # peak RSS may exceed the same command's on a small file by this much, no more


def _run_measured(command: list[str]) -> tuple[int, str, int]:
    """Run ``command``; return its exit status, its stdout and its own peak RSS in KiB (wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        assert err.read() == b""
        return child.returncode, out.read().decode(), usage.ru_maxrss


def _write_run(logdir) -> str:
    """Two records, a 2 MiB line, a record, then 64 MiB with no newline; return the first record's time."""
    run(at_fixed_time, "0", "text", T0, 2, name="EngineActor-0")
    path = logdir / "vllm_rank_0.log"
    with open(path, "ab") as file:
        file.write(b"y" * RUNAWAY + b"\n")
    run(at_fixed_time, "0", "text", T0 + 1, 1, name="EngineActor-0")
    with open(path, "ab") as file:
        for _ in range(BLOB // LINE_LIMIT):
            file.write(b"x" * LINE_LIMIT)
    return "2026-11-26T09:00:00.000Z"


def test_summary_merge_and_tail_report_long_lines_in_bounded_memory(logdir, tmp_path):
    """A 2 MiB line and a 64 MiB unfinished one: each reported with its line number and size, peak RSS flat."""
    first = _write_run(logdir)
    small = tmp_path / "small"
    small.mkdir()
    with open(logdir / "vllm_rank_0.log", "rb") as file, open(small / "vllm_rank_0.log", "wb") as out:
        out.write(b"".join(file.readline() for _ in range(2)))
    second = SECOND
    head = f"{first} vllm_rank_0.log INFO rank=0 EngineActor-0"

    code, out, peak = _run_measured(logconf_cli("summary", str(logdir), "--json"))
    assert code == 1
    row = json.loads(out)["files"][0]
    counts = {k: row[k] for k in ("lines", "records", "unparsable", "torn", "too_long", "too_long_lines")}
    assert counts == {"lines": 5, "records": 3, "unparsable": 0, "torn": 0, "too_long": 2, "too_long_lines": [3, 5]}
    assert peak < _run_measured(logconf_cli("summary", str(small), "--json"))[2] + HEADROOM_KIB, peak

    code, out, _ = _run_measured(logconf_cli("summary", str(logdir)))
    assert code == 1
    assert out.splitlines()[-2:] == [
        f"vllm_rank_0.log: lines 3, 5 are over {LINE_LIMIT} bytes (not read)",
        "1 files, 3 records, 5 lines: PROBLEMS: 2 too_long",
    ]

    code, out, peak = _run_measured(logconf_cli("merge", str(logdir)))
    assert code == 0
    lines = out.splitlines()
    assert [line.split("]", 1)[-1] for line in lines[:2]] == [" vllm.tie: tie rank=0 i=0", " vllm.tie: tie rank=0 i=1"]
    assert all(line.startswith(head) for line in lines[:2])
    assert len(lines) == 5
    assert lines[2] == f"{first} vllm_rank_0.log TOO_LONG: line 3, {RUNAWAY} bytes (limit {LINE_LIMIT}), starts: {'y' * SHOWN}"
    assert lines[3].startswith(f"{second} vllm_rank_0.log INFO ") and lines[3].endswith(" vllm.tie: tie rank=0 i=0")
    assert lines[4] == f"{second} vllm_rank_0.log TOO_LONG: line 5, {BLOB} bytes (limit {LINE_LIMIT}), starts: {'x' * SHOWN}"
    assert peak < _run_measured(logconf_cli("merge", str(small)))[2] + HEADROOM_KIB, peak

    code, out, _ = _run_measured(logconf_cli("merge", str(logdir), "--json", "--grep", "^[xy]"))
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        {"time": first, "file": "vllm_rank_0.log", "kind": "too_long", "line": "y" * SHOWN, "line_number": 3, "bytes": RUNAWAY},
        {"time": second, "file": "vllm_rank_0.log", "kind": "too_long", "line": "x" * SHOWN, "line_number": 5, "bytes": BLOB},
    ]

    code, out, peak = _run_measured(logconf_cli("tail", str(logdir), "-n", "2"))
    assert (code, out.splitlines()) == (0, lines[3:])
    assert peak < _run_measured(logconf_cli("tail", str(small), "-n", "2"))[2] + HEADROOM_KIB, peak


def test_tail_follow_reports_a_long_line_when_it_ends_in_bounded_memory(logdir):
    """tail -f keeps an unfinished 64 MiB line back without holding it; its newline makes it one TOO_LONG line."""
    first = _write_run(logdir)
    too_long = f"{first} vllm_rank_0.log TOO_LONG: line 3, {RUNAWAY} bytes (limit {LINE_LIMIT}), starts: {'y' * SHOWN}"
    with following(logconf_cli("tail", "-f", str(logdir), "-n", "1", "--interval", "0.05"), REPO) as (tail, reader):
        lines = reader.until(lambda seen: len(seen) >= 1)  # the first look: read to the end, the blob held back
        with open(logdir / "vllm_rank_0.log", "ab") as file:
            file.write(b"x" * 10 + b"\n")
        lines += reader.until(lambda seen: len(seen) >= 2)
        with open(f"/proc/{tail.pid}/status", encoding="ascii") as status:
            peak_kib = int(next(line for line in status if line.startswith("VmHWM:")).split()[1])
    lines += reader.rest()
    # The record on line 4 waits for the unfinished line after it (it could be its traceback's).
    assert lines[0] == too_long
    assert lines[1].startswith(f"{SECOND} vllm_rank_0.log INFO ") and lines[1].endswith(": tie rank=0 i=0")
    ended = f"{SECOND} vllm_rank_0.log TOO_LONG: line 5, {BLOB + 10} bytes (limit {LINE_LIMIT}), starts: {'x' * SHOWN}"
    assert lines[2:] == [ended]
    assert peak_kib < 48 * 1024, peak_kib  # the blob alone is 64 MiB; the interpreter about 16


def test_line_reader_keeps_lines_up_to_the_limit_and_reports_longer_ones(tmp_path):
    """At the limit a line is whole; one byte more makes it TOO_LONG with its size; an unfinished tail waits for finish()."""
    path = tmp_path / "lines"
    path.write_bytes(b"a" * 8 + b"\n" + b"b" * 9 + b"\n" + b"\n" + b"c" * 30 + b"\n" + b"d" * 3)
    lines = LineReader(limit=8)
    with open(path, "rb") as file:
        assert list(lines.read(file)) == ["a" * 8, TooLong("b" * 9, 9), "", TooLong("c" * 9, 30)]  # head: what was read
        assert lines.unfinished
        with open(path, "ab") as more:
            more.write(b"d" * 6)
        assert list(lines.read(file)) == []  # 9 bytes, no newline yet: passed over, waiting for its end
    assert lines.finish() == TooLong("d" * 9, 9)
    assert not lines.unfinished
    path.write_bytes(b"e" * 8)
    with open(path, "rb") as file:
        assert list(lines.read(file)) == []
    assert lines.finish() == "e" * 8
