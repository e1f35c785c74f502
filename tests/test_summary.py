"""`logconf summary`: exact per-file counts from files that real handlers wrote, text and JSON alike."""

from __future__ import annotations

import calendar
import json
import os
import subprocess

from logwriters import REPO, at_fixed_time, engine_rank, leaky, logconf_cli, run, trainer

from logconf.logfiles import LINE_LIMIT
from logconf.summary import SCHEMA, summarise, summary_json, summary_table, too_long_notes

ROW_KEYS = [
    "file",
    "subsystem",
    "format",
    "rank",
    "lines",
    "bytes",
    "records",
    "continuation_lines",
    "first",
    "last",
    "span_s",
    "processes",
    "loggers",
    "levels",
    "foreign",
    "other_rank",
    "unparsable",
    "torn",
    "too_long",
    "too_long_lines",
    "host",
    "node",
    "parts",
    "disk_bytes",
    "too_long_places",
    "removed_files",
    "removed_bytes",
    "removed_disk_bytes",
]
T0 = calendar.timegm((2026, 11, 26, 9, 0, 0))
TRACEBACK_LINES = 4  # "Traceback ...", "  File ...", "    raise ...", "RuntimeError: step 40 blew up"


def _summary(directory, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(logconf_cli("summary", str(directory), *extra), cwd=REPO, capture_output=True, text=True, timeout=60)


def _by_name(processes: dict[str, int]) -> dict[str, int]:
    return {key.rsplit(":", 1)[0]: count for key, count in processes.items()}


def _write_run(logdir) -> None:
    run(engine_rank, "0", "text", 5, name="EngineActor-0")
    run(engine_rank, "1", "json", 5, name="EngineActor-1")
    run(trainer, "0", "text", 4, name="MainProcess")


def test_summary_json_counts_every_record_process_logger_and_level_exactly(logdir):
    """Two engine ranks (text, JSON) of two processes each and a trainer: every count in --json is exact."""
    _write_run(logdir)
    result = _summary(logdir, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["schema"] == SCHEMA
    assert document["ok"] is True
    assert document["directory"] == str(logdir)
    files = {f["file"]: f for f in document["files"]}
    assert list(files) == ["skyrl_rank_0.log", "vllm_rank_0.log", "vllm_rank_1.jsonl"]
    assert list(document) == ["schema", "directory", "ok", "totals", "files", "nodes", "ranks"]
    assert list(files["vllm_rank_0.log"]) == ROW_KEYS  # the documented schema; keys are only ever added

    text = files["vllm_rank_0.log"]
    assert (text["subsystem"], text["format"], text["rank"]) == ("vllm", "text", "0")
    assert text["records"] == 12
    assert text["continuation_lines"] == TRACEBACK_LINES
    assert text["lines"] == 12 + TRACEBACK_LINES
    assert text["bytes"] == os.path.getsize(logdir / "vllm_rank_0.log")
    assert _by_name(text["processes"]) == {"EngineActor-0": 5, "EngineCore_DP0": 7}
    assert text["loggers"] == {"vllm.v1.engine.core": 7, "vllm.entrypoints.llm": 5}
    assert text["levels"] == {"ERROR": 1, "INFO": 10, "WARNING": 1}
    assert (text["foreign"], text["other_rank"], text["unparsable"], text["torn"]) == (0, 0, 0, 0)
    assert text["first"] <= text["last"] and text["span_s"] >= 0

    js = files["vllm_rank_1.jsonl"]
    assert (js["format"], js["rank"], js["records"], js["lines"], js["continuation_lines"]) == ("json", "1", 12, 12, 0)
    assert _by_name(js["processes"]) == {"EngineActor-1": 5, "EngineCore_DP0": 7}
    assert js["levels"] == {"ERROR": 1, "INFO": 10, "WARNING": 1}

    skyrl = files["skyrl_rank_0.log"]
    assert (skyrl["subsystem"], skyrl["records"], skyrl["lines"]) == ("skyrl", 4, 4)
    assert skyrl["loggers"] == {"skyrl_train.trainer": 4}

    assert document["totals"] == {
        "files": 3,
        "parts": 3,
        "lines": 12 + TRACEBACK_LINES + 12 + 4,
        "bytes": sum(f["bytes"] for f in files.values()),
        "records": 28,
        "foreign": 0,
        "other_rank": 0,
        "unparsable": 0,
        "torn": 0,
        "too_long": 0,
        "disk_bytes": sum(f["bytes"] for f in files.values()),
        "removed_files": 0,
        "removed_bytes": 0,
    }


def test_summary_table_has_one_row_per_file_and_exits_zero_when_clean(logdir):
    """The text form prints a Markdown row per rank file and an 'ok' verdict; exit status 0."""
    _write_run(logdir)
    result = _summary(logdir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(" | ")[0] for line in lines[2:5]] == ["| skyrl_rank_0.log", "| vllm_rank_0.log", "| vllm_rank_1.jsonl"]
    assert lines[-1] == f"3 files, 28 records, {12 + TRACEBACK_LINES + 12 + 4} lines: ok"
    assert summary_table(summarise(str(logdir))).splitlines()[0].startswith("| file | lines | bytes | span |")


def test_summary_counts_foreign_other_rank_unparsable_and_torn_lines_and_exits_one(logdir):
    """Leaked vLLM records, a file of another rank, a stray line and a torn last line: counted, exit 1."""
    run(engine_rank, "0", "text", 2, name="EngineActor-0")
    run(engine_rank, "1", "json", 2, name="EngineActor-1")
    run(trainer, "0", "text", 3, 2, name="MainProcess")
    os.rename(logdir / "vllm_rank_1.jsonl", logdir / "vllm_rank_2.jsonl")  # an operator moved rank 1's file
    with open(logdir / "vllm_rank_2.jsonl", "a", encoding="utf-8") as file:
        file.write("print() output that is not a record\n")
        file.write('{"time": "2026-11-26T08:00:00.000Z", "level": "INF')  # a writer died mid-line
    result = _summary(logdir, "--json")
    assert result.returncode == 1
    files = {f["file"]: f for f in json.loads(result.stdout)["files"]}
    assert (files["skyrl_rank_0.log"]["foreign"], files["skyrl_rank_0.log"]["records"]) == (2, 5)
    moved = files["vllm_rank_2.jsonl"]
    assert (moved["other_rank"], moved["records"], moved["unparsable"], moved["torn"]) == (6, 6, 1, 1)
    assert moved["lines"] == 8
    assert files["vllm_rank_0.log"]["foreign"] == 0
    text = _summary(logdir)
    assert text.returncode == 1
    assert (
        text.stdout.splitlines()[-1] == "3 files, 17 records, 23 lines: PROBLEMS: 2 foreign, 6 other_rank, 1 unparsable, 1 torn"
    )


def test_summary_orders_ranks_naturally(logdir):
    """Rank 2 comes before rank 10 in the rows, as in merge's tie order."""
    run(engine_rank, "10", "text", 1, name="EngineActor-10")
    run(engine_rank, "2", "text", 1, name="EngineActor-2")
    assert [s.file for s in summarise(str(logdir))] == ["vllm_rank_2.log", "vllm_rank_10.log"]


def _append(path, data: str) -> None:
    with open(path, "a", encoding="utf-8") as file:
        file.write(data)


def _row(result: subprocess.CompletedProcess[str], name: str, *keys: str) -> tuple:
    row = next(f for f in json.loads(result.stdout)["files"] if f["file"] == name)
    return tuple(row[k] for k in keys)


def _table_cells(result: subprocess.CompletedProcess[str], name: str, *columns: str) -> tuple[str, ...]:
    """The cells of ``name``'s row under the named columns of the Markdown table."""
    lines = result.stdout.splitlines()
    header = [cell.strip() for cell in lines[0].split("|")]
    row = next([cell.strip() for cell in line.split("|")] for line in lines[2:] if line.startswith(f"| {name} "))
    return tuple(row[header.index(column)] for column in columns)


def test_one_torn_line_is_a_problem_on_its_own_mid_file_or_last(logdir):
    """A record's head cut short mid-file (ended by the next writer's newline) or a last line with no newline: torn 1, exit 1."""
    run(at_fixed_time, "0", "text", T0, 2, name="EngineActor-0")
    head = "2026-11-26T09:00:00.500Z INFO rank=0 EngineCore_DP0[4"
    _append(logdir / "vllm_rank_0.log", head)  # the writer was killed here
    run(at_fixed_time, "0", "text", T0 + 1, 1, name="EngineActor-0")  # ends the torn line, then writes its record
    assert (logdir / "vllm_rank_0.log").read_text().splitlines()[2] == head[:-1]  # the byte before is now a newline
    run(at_fixed_time, "1", "text", T0, 2, name="EngineActor-1")
    _append(logdir / "vllm_rank_1.log", head.replace("rank=0", "rank=1"))
    for name, lines in (("vllm_rank_0.log", 4), ("vllm_rank_1.log", 3)):
        result = _summary(logdir / name, "--json")
        assert result.returncode == 1, result.stdout
        assert json.loads(result.stdout)["ok"] is False
        keys = ("records", "lines", "continuation_lines", "unparsable", "torn", "foreign", "other_rank", "too_long")
        assert _row(result, name, *keys) == (3 if lines == 4 else 2, lines, 0, 0, 1, 0, 0, 0)
        text = _summary(logdir / name)
        assert text.returncode == 1
        assert text.stdout.splitlines()[-1] == f"1 files, {3 if lines == 4 else 2} records, {lines} lines: PROBLEMS: 1 torn"


def test_torn_and_unparsable_lines_are_counted_apart(logdir):
    """Text: 1 unparsable, 2 torn; JSON: 3 unparsable, 1 torn. Each count lands in its own key and its own column."""
    (logdir).mkdir()
    _append(logdir / "vllm_rank_0.log", "engine starting\n")  # before the first record: unparsable
    run(at_fixed_time, "0", "text", T0, 1, name="EngineActor-0")
    _append(logdir / "vllm_rank_0.log", "2026-11-26T09:00:00.200Z WARN")  # killed mid-head
    run(at_fixed_time, "0", "text", T0 + 1, 1, name="EngineActor-0")
    _append(logdir / "vllm_rank_0.log", "2026-11-26T09:00:01.200Z INFO rank=0 Eng")  # killed, last line
    run(at_fixed_time, "1", "json", T0, 1, name="EngineActor-1")
    _append(logdir / "vllm_rank_1.jsonl", "print one\nprint two\n")
    _append(logdir / "vllm_rank_1.jsonl", '{"time": "2026-11-26T09:00:00.200Z", "level": "IN')  # killed mid-record
    run(at_fixed_time, "1", "json", T0 + 1, 1, name="EngineActor-1")
    _append(logdir / "vllm_rank_1.jsonl", "print three\n")
    result = _summary(logdir, "--json")
    assert result.returncode == 1
    assert _row(result, "vllm_rank_0.log", "records", "lines", "unparsable", "torn") == (2, 5, 1, 2)
    assert _row(result, "vllm_rank_1.jsonl", "records", "lines", "unparsable", "torn") == (2, 6, 3, 1)
    totals = json.loads(result.stdout)["totals"]
    assert (totals["unparsable"], totals["torn"]) == (4, 3)
    table = _summary(logdir)
    assert _table_cells(table, "vllm_rank_0.log", "unparsable", "torn") == ("1", "2")
    assert _table_cells(table, "vllm_rank_1.jsonl", "unparsable", "torn") == ("3", "1")
    assert table.stdout.splitlines()[-1] == "2 files, 4 records, 11 lines: PROBLEMS: 4 unparsable, 3 torn"


def test_foreign_counts_the_other_subsystems_exact_logger_names_and_their_children(logdir):
    """py.warnings, vllm and uvicorn.error in a trainer file, skyrl, skyrl_train.x, harbor and examples.x in a vLLM one."""
    run(leaky, "skyrl", "0", ("py.warnings", "vllm", "uvicorn.error", "vllmx", "skyrl_train.ok"), name="MainProcess")
    run(leaky, "vllm", "0", ("skyrl", "skyrl_train.x", "harbor", "examples.x", "skyrl_trainer", "vllm.ok"), name="EngineActor")
    result = _summary(logdir, "--json")
    assert result.returncode == 1
    assert _row(result, "skyrl_rank_0.log", "records", "foreign") == (5, 3)
    assert _row(result, "vllm_rank_0.log", "records", "foreign") == (6, 4)
    assert _summary(logdir).stdout.splitlines()[-1] == "2 files, 11 records, 11 lines: PROBLEMS: 7 foreign"


def _line(second: int, rank: str = "0", message: str = "m", logger: str = "vllm.engine") -> str:
    return f"2026-11-26T09:00:{second:02d}.000Z INFO rank={rank} EngineCore_DP0[7] {logger}: {message}\n"


def test_first_and_last_are_the_earliest_and_latest_times_whatever_the_line_order(tmp_path):
    """Two processes append to one file with clocks a little apart: the span is earliest to latest, not first to last line."""
    (tmp_path / "vllm_rank_0.log").write_text(_line(5) + _line(9) + _line(7) + _line(3))
    (row,) = summary_json(str(tmp_path), summarise(str(tmp_path)))["files"]
    assert (row["first"], row["last"], row["span_s"]) == ("2026-11-26T09:00:03.000Z", "2026-11-26T09:00:09.000Z", 6.0)


def test_one_bad_file_among_clean_ones_makes_the_run_not_ok(tmp_path):
    """ok is false when any file has a problem, not only when all do; stdio copies are not rank files."""
    (tmp_path / "vllm_rank_0.log").write_text(_line(1))
    (tmp_path / "vllm_rank_1.log").write_text(_line(1, rank="0"))  # another rank's record
    (tmp_path / "vllm_rank_0.stdio.log").write_text("print output\n")
    document = summary_json(str(tmp_path), summarise(str(tmp_path)))
    assert [row["file"] for row in document["files"]] == ["vllm_rank_0.log", "vllm_rank_1.log"]
    assert document["ok"] is False
    assert document["totals"] == {
        "files": 2, "parts": 2, "lines": 2, "bytes": 2 * len(_line(1)), "records": 2,
        "foreign": 0, "other_rank": 1, "unparsable": 0, "torn": 0, "too_long": 0,
        "disk_bytes": 2 * len(_line(1)), "removed_files": 0, "removed_bytes": 0,
    }


def test_a_json_object_that_is_not_a_record_is_a_problem_line_not_a_record(tmp_path):
    """A metrics dict printed raw into a JSON lines file ({"step": 3, ...}) lacks time, level, logger and message."""
    record = json.dumps({"time": "2026-11-26T09:00:01.000Z", "level": "INFO", "rank": "0", "logger": "vllm.engine",
                         "message": "m", "process_name": "EngineCore_DP0", "pid": 7})
    (tmp_path / "vllm_rank_0.jsonl").write_text(record + "\n" + '{"step": 3, "loss": 0.25}\n' + record + "\n")
    (row,) = summary_json(str(tmp_path), summarise(str(tmp_path)))["files"]
    assert (row["records"], row["lines"], row["loggers"]) == (2, 3, {"vllm.engine": 2})
    assert row["unparsable"] + row["torn"] == 1  # a problem line, never a record

def test_the_shortest_torn_head_is_a_date_and_t(tmp_path):
    """A writer killed eleven characters into its record left '2026-11-26T': torn; ten characters are not a head."""
    (tmp_path / "vllm_rank_0.log").write_text(_line(1) + "2026-11-26T\n" + _line(2) + "2026-11-26\n")
    (row,) = summary_json(str(tmp_path), summarise(str(tmp_path)))["files"]
    assert (row["records"], row["torn"], row["unparsable"], row["continuation_lines"]) == (2, 1, 0, 1)


def test_too_long_lines_keep_the_first_twenty_line_numbers_and_the_count(tmp_path):
    """21 lines over the limit: all counted, the first 20 numbered, the note says how many in all."""
    long = "x" * (LINE_LIMIT + 1) + "\n"
    (tmp_path / "vllm_rank_0.log").write_text(_line(0) + long * 21)
    summaries = summarise(str(tmp_path))
    (row,) = summary_json(str(tmp_path), summaries)["files"]
    assert (row["too_long"], row["too_long_lines"]) == (21, list(range(2, 22)))
    assert too_long_notes(summaries) == [
        f"vllm_rank_0.log: lines {', '.join(map(str, range(2, 22)))}, ... (21 in all) are over {LINE_LIMIT} bytes (not read)"
    ]
