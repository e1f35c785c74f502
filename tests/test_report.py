"""`logconf report`: the page's data from runs that real handlers wrote, checked against `logconf summary`.

The browser's view of the same pages is in tests/test_report_browser.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from logwriters import REPO, logconf_cli, raw_errors, run, scripted
from report_runs import MARKUP, T0, log_dir, write_timeline

from logconf import report
from logconf import timeline as layout
from logconf.report import build, render, write_report

DATA = re.compile(r'<script type="application/json" id="run-data">(.*?)</script>', re.S)


def _summary(directory: Path) -> dict:
    done = subprocess.run(logconf_cli("summary", str(directory), "--json"), cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def page_data(page: str) -> dict:
    """The data a written page carries (what its script draws)."""
    match = DATA.search(page)
    assert match, "the page holds no run data"
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def timeline(tmp_path_factory) -> Path:
    return write_timeline(tmp_path_factory.mktemp("timeline") / "logs")


@pytest.fixture(scope="module")
def timeline_data(timeline) -> dict:
    return build(str(timeline)).page_data()


def _ms(second: int) -> int:
    return second * 1000


def test_one_lane_per_rank_file_and_process_with_marks_and_records_equal_to_summary(timeline, timeline_data):
    """Lanes are summary's processes, file by file; each lane's marks and records are that process's levels."""
    summary = _summary(timeline)
    lanes = timeline_data["lanes"]
    assert [(lane["file"], f"{lane['process']}:{lane['pid']}") for lane in lanes] == [
        (row["file"], process) for row in summary["files"] for process in row["processes"]
    ]
    for row in summary["files"]:
        (lane,) = [lane for lane in lanes if lane["file"] == row["file"]]
        assert lane["records"] == row["records"]
        assert lane["levels"] == row["levels"]
        marks = {"warning": row["levels"].get("WARNING", 0), "error": row["levels"].get("ERROR", 0), "critical": 0}
        assert lane["marks"] == marks
        assert sum(b[1] for b in lane["bins"]) == row["records"]
        assert [sum(b[k] for b in lane["bins"]) for k in (2, 3, 4)] == [marks["warning"], marks["error"], 0]
        assert (lane["first"], lane["last"]) == (row["first"], row["last"])
        assert lane["subsystem"] == {"vllm": "vllm", "skyrl": "trainer"}[row["subsystem"]]
    head = timeline_data["summary"]
    assert {k: head[k] for k in ("files", "records", "lines", "bytes", "first", "last", "span_s")} == {
        "files": 3,
        "records": summary["totals"]["records"],
        "lines": summary["totals"]["lines"],
        "bytes": summary["totals"]["bytes"],
        "first": "2026-11-26T09:00:00.000Z",
        "last": "2026-11-26T09:04:00.000Z",
        "span_s": 240.0,
    }
    assert head["marks"] == {"warning": 2, "error": 2, "critical": 0}
    assert (head["processes"], head["torn"], head["foreign"], head["nodes"]) == (3, 0, 0, [])
    levels: dict[str, int] = {}
    for row in summary["files"]:
        for level, count in row["levels"].items():
            levels[level] = levels.get(level, 0) + count
    assert head["levels"] == levels and len(summary["files"]) > 1  # the run's, every file's summed


def test_the_runs_first_and_last_are_the_earliest_and_latest_of_any_file(tmp_path):
    """Rank 1 starts later and ends earlier than rank 0: the page's span is rank 0's first to rank 0's last."""
    def line(second: int, rank: int) -> str:
        return f"2026-11-26T09:00:{second:02d}.000Z INFO rank={rank} EngineCore_DP0[7] vllm.engine: m\n"

    (tmp_path / "vllm_rank_0.log").write_text(line(1, 0) + line(9, 0))
    (tmp_path / "vllm_rank_1.log").write_text(line(3, 1) + line(5, 1))
    head = build(str(tmp_path)).page_data()["summary"]
    assert (head["first"], head["last"], head["span_s"]) == ("2026-11-26T09:00:01.000Z", "2026-11-26T09:00:09.000Z", 8.0)


def test_the_first_error_is_the_earliest_error_record_kept_whole_with_the_entries_around_it(timeline_data):
    kept = {k["id"]: k for k in timeline_data["kept"]}
    first = kept[timeline_data["first_error"]]
    assert (first["file"], first["time"], first["level"], first["ms"]) == (
        "vllm_rank_1.jsonl",
        "2026-11-26T09:00:30.000Z",
        "ERROR",
        _ms(T0 + 30),
    )
    # A JSON record is shown as a text line, its traceback whole below it, its other fields last.
    head = r"2026-11-26T09:00:30.000Z ERROR rank=1 EngineActor-1\[\d+\] vllm.v1.engine.core: step 7 failed"
    assert re.fullmatch(head, first["lines"][0]), first["lines"][0]
    assert first["lines"][1] == "Traceback (most recent call last):"
    assert first["lines"][-2:] == ["RuntimeError: step 7 failed blew up", '  fields: {"host": "' + os.uname().nodename + '"}']
    assert first["cut"] == 0
    # The three entries before and after it in its file, JSON lines as text lines too.
    assert [line.split(": ")[-1] for line in first["before"]] == ["step 5 done", "step 6 done", "step 7 done"]
    assert [line.split(": ")[-1] for line in first["after"]] == ["step 8 done", "step 9 done", "step 10 done"]


def test_at_equal_times_the_first_error_is_the_one_in_the_file_listed_first(logdir):
    """Two ERRORs in the same millisecond: vllm_rank_2 comes before vllm_rank_10, as in `logconf merge`, though
    rank 10's ERROR is on an earlier line of its file."""
    script = ((T0, "vllm.v1.engine.core", "INFO", "ready"), (T0 + 5, "vllm.v1.engine.core", "ERROR", "both failed"))
    run(scripted, "10", "text", script, name="EngineActor-10")
    run(scripted, "2", "json", ((T0 + 1, "vllm.v1.engine.core", "INFO", "warming up"), *script), name="EngineActor-2")
    data = build(str(logdir)).page_data()
    first = {k["id"]: k for k in data["kept"]}[data["first_error"]]
    assert (first["file"], first["time"]) == ("vllm_rank_2.jsonl", "2026-11-26T09:00:05.000Z")


def test_a_process_that_went_quiet_while_others_logged_is_a_gap_and_busy_ones_have_none(timeline_data):
    gaps = {lane["file"]: lane["gaps"] for lane in timeline_data["lanes"]}
    assert gaps == {
        "vllm_rank_0.log": [],
        "vllm_rank_1.jsonl": [[_ms(T0 + 80), _ms(T0 + 240)]],  # quiet from its last record to the run's end
        "skyrl_rank_0.log": [],
    }
    assert build(str_timeline := str(Path(timeline_data["directory"])), quiet_s=200).page_data()["lanes"][1]["gaps"] == []
    assert str_timeline


def test_a_silence_inside_a_lane_is_a_gap_only_when_others_logged_meanwhile(logdir):
    """Rank 0 stops for 100 s while rank 1 logs: a gap. Both stop for 100 s together: no gap."""
    busy = tuple((T0 + s, "vllm.x", "INFO", "tick") for s in range(0, 301, 5))
    paused = tuple((T0 + s, "vllm.x", "INFO", "tick") for s in [*range(0, 101, 5), *range(200, 301, 5)])
    run(scripted, "0", "text", paused, name="EngineActor-0")
    run(scripted, "1", "text", busy, name="EngineActor-1")
    lanes = build(str(logdir)).page_data()["lanes"]
    assert [lane["gaps"] for lane in lanes] == [[[_ms(T0 + 100), _ms(T0 + 200)]], []]
    (logdir / "vllm_rank_1.log").unlink()
    run(scripted, "1", "text", paused, name="EngineActor-1")
    assert [lane["gaps"] for lane in build(str(logdir)).page_data()["lanes"]] == [[], []]


def test_bins_stay_within_the_limit_and_keep_every_count_however_long_the_run(logdir):
    """Records over 30 days, several per final bin: the bin width doubles until the run fits in MAX_BINS bins,
    merging bins two by two; no record is lost."""
    day = 86400
    script = tuple((T0 + s, "vllm.x", "WARNING" if s % 7 == 0 else "INFO", "tick") for s in range(0, 30 * day, 1200))
    run(scripted, "0", "text", script, name="EngineActor-0")
    data = build(str(logdir)).page_data()
    grid, (lane,) = data["grid"], data["lanes"]
    assert grid["bins"] <= layout.MAX_BINS
    assert grid["width"] * grid["bins"] >= 30 * day * 1000 - 1200 * 1000
    assert max(b[1] for b in lane["bins"]) >= 2
    assert grid["width"] & (grid["width"] - 1) == 0  # a power of two: every widening halves the bins exactly
    assert sum(b[1] for b in lane["bins"]) == len(script)
    assert sum(b[2] for b in lane["bins"]) == sum(1 for _, _, level, _ in script if level == "WARNING")
    for index, *_ in lane["bins"]:
        assert 0 <= index < grid["bins"]
    # Each record lies in the bin it is counted in.
    for second, _, _, _ in script[:20]:
        index = (second * 1000 - grid["start"]) // grid["width"]
        assert any(b[0] == index for b in lane["bins"])


def test_kept_records_are_bounded_per_process_and_level_and_the_page_says_what_it_left_out(logdir):
    script = tuple((T0 + s, "vllm.x", "WARNING", f"warning {s}") for s in range(60))
    run(scripted, "0", "text", script, name="EngineActor-0")
    data = build(str(logdir)).page_data()
    kept = [k["lines"][0].rsplit(" ", 1)[1] for k in data["kept"]]
    expected = [str(s) for s in [*range(layout.FIRST_KEPT), *range(60 - layout.LAST_KEPT, 60)]]
    assert kept == expected
    assert data["left_out"][0].startswith(f"{len(expected)} of the 60 WARNING, ERROR and CRITICAL records are kept")
    assert any("below WARNING are counted in the time bins only" in note for note in data["left_out"])


def test_the_page_text_budget_keeps_the_first_error_and_says_how_many_more_it_left_out(logdir, monkeypatch):
    script = tuple((T0 + s, "vllm.x", "ERROR" if s == 59 else "WARNING", f"record {s}") for s in range(60))
    run(scripted, "0", "text", script, name="EngineActor-0")
    monkeypatch.setattr(report, "PAGE_TEXT_BYTES", 1500)
    data = build(str(logdir)).page_data()
    first = {k["id"]: k for k in data["kept"]}[data["first_error"]]
    assert first["lines"][0].endswith("record 59")
    assert 1 <= len(data["kept"]) < layout.FIRST_KEPT + layout.LAST_KEPT
    candidates = layout.FIRST_KEPT + layout.LAST_KEPT + 1  # the first and last WARNINGs, and the ERROR
    left = candidates - len(data["kept"])
    assert f"; {left} more were left out to keep the page small." in data["left_out"][0]


def test_a_record_longer_than_the_limit_is_cut_and_says_how_many_lines_it_lost(logdir, monkeypatch):
    run(scripted, "0", "text", ((T0, "vllm.x", "ERROR", "failed"),), name="EngineActor-0")
    monkeypatch.setattr(layout, "RECORD_LINES", 2)
    (kept,) = build(str(logdir)).page_data()["kept"]
    assert (len(kept["lines"]), kept["cut"]) == (2, 3)  # the record's line and 4 traceback lines: 3 left out


def test_the_page_is_one_file_that_fetches_nothing_and_markup_in_a_record_stays_text(timeline, tmp_path):
    out = tmp_path / "run.html"
    data = write_report(str(timeline), str(out))
    page = out.read_text(encoding="utf-8")
    for outside in ("http://", "https://", "<link", "@import", "url(", " src=", "//cdn"):
        assert outside not in page.replace('"$schema"', ""), outside
    # The message's </script> cannot close the data's script element: the page has exactly its own two.
    assert page.count("</script>") == 2
    assert page_data(page) == data
    assert any(MARKUP in line for k in data["kept"] for line in k["lines"])
    assert render(data) == page


def test_a_gathered_directory_gives_lanes_named_by_node_and_file(tmp_path):
    script = ((T0, "vllm.x", "INFO", "ready"), (T0 + 1, "vllm.x", "WARNING", "slow"))
    for node, rank in (("node-a", "0"), ("node-b", "1")):
        with log_dir(tmp_path / "gathered" / node):
            run(scripted, rank, "text", script, name=f"EngineActor-{rank}")
            run(scripted, "0", "text", ((T0 + 2, "skyrl_train.x", "INFO", "step"),), True, name="TrainerActor")
    data = build(str(tmp_path / "gathered")).page_data()
    assert [(lane["file"], lane["node"]) for lane in data["lanes"]] == [
        ("node-a/skyrl_rank_0.log", "node-a"),
        ("node-a/vllm_rank_0.log", "node-a"),
        ("node-b/skyrl_rank_0.log", "node-b"),
        ("node-b/vllm_rank_1.log", "node-b"),
    ]
    assert data["summary"]["nodes"] == ["node-a", "node-b"]
    summary = _summary(tmp_path / "gathered")
    assert [lane["records"] for lane in data["lanes"]] == [row["records"] for row in summary["files"]]


def test_a_stdio_copy_is_a_row_of_its_own_with_its_raw_errors_and_not_the_logged_ones(logdir):
    """A captured process logs an ERROR (its console copy and traceback reach the .stdio.log) and prints a raw
    traceback and a fatal line: the row counts the two raw ones and keeps the raw traceback whole."""
    run(raw_errors, "0", name="EngineCore_DP0")
    data = build(str(logdir)).page_data()
    (copy,) = data["stdio"]
    assert (copy["file"], copy["subsystem"], copy["rank"], copy["errors"]) == ("vllm_rank_0.stdio.log", "stdio", "0", 2)
    lines = (logdir / "vllm_rank_0.stdio.log").read_text().splitlines()
    assert copy["lines"] == len(lines)
    assert list(copy["processes"]) == [lines[0].split("] ")[0].replace("[", ":")]
    traceback, fatal = copy["kept"]
    texts = [line.split("] ", 1)[1] for line in traceback["lines"]]
    assert texts[0] == "Traceback (most recent call last):"
    assert texts[-1] == "ValueError: raw failure outside logging"
    assert fatal["lines"][0].endswith("] terminate called after throwing an instance of 'c10::Error'")
    assert any(line.endswith("] after the failures") for line in fatal["after"])
    assert data["summary"]["stdio_files"] == 1


def test_a_stdio_copy_counts_every_raw_error_and_keeps_the_first_twenty(tmp_path):
    """A bare exception line (no traceback before it) is a raw error; 25 of them: 25 counted, the first 20 kept."""
    from logconf.stdiocopies import STDIO_KEPT

    lines = [f"EngineCore_DP0[7] step {n}\nEngineCore_DP0[7] RuntimeError: CUDA error {n}\n" for n in range(25)]
    (tmp_path / "vllm_rank_0.stdio.log").write_text("".join(lines))
    (tmp_path / "vllm_rank_0.log").write_text("2026-11-26T09:00:01.000Z INFO rank=0 EngineCore_DP0[7] vllm.engine: m\n")
    (copy,) = build(str(tmp_path)).page_data()["stdio"]
    assert (copy["errors"], len(copy["kept"]), STDIO_KEPT) == (25, 20, 20)
    assert [k["lines"] for k in copy["kept"][:2]] == [
        ["EngineCore_DP0[7] RuntimeError: CUDA error 0"], ["EngineCore_DP0[7] RuntimeError: CUDA error 1"]
    ]

def test_the_command_writes_the_page_and_prints_one_line(timeline, tmp_path):
    out = tmp_path / "run.html"
    command = logconf_cli("report", str(timeline), "-o", str(out))
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{out}: 3 lanes from 3 files, 111 records, 2 errors, 4 records kept; {out.stat().st_size} bytes\n"
    here = subprocess.run(logconf_cli("report", str(timeline)), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert here.returncode == 0, here.stderr
    assert here.stdout.startswith("report.html: 3 lanes") and (tmp_path / "report.html").is_file()


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["nowhere"], "nowhere: no such file or directory"),
        ([".", "--quiet-s", "0"], "--quiet-s: 0.0 is not a duration"),
    ],
)
def test_bad_input_is_one_line(tmp_path, args, text):
    done = subprocess.run(logconf_cli("report", *args), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("logconf report: ") and text in done.stderr and done.stderr.count("\n") == 1
