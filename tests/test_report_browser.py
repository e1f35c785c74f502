"""`logconf report` in a real browser: Debian's headless Chromium loads the page, runs its script and clicks.

The lanes, marks and first error it draws are checked against `logconf summary`; a click on a mark
shows that record with the entries around it; a click on a bin whose records the page did not keep
gives the `logconf merge` command that prints them; the filters hide what they say.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from headless import dom, screenshot
from logwriters import REPO, logconf_cli, raw_errors, run
from report_runs import MARKUP, write_timeline

from logconf.report import write_report

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple[Path, Path, dict]:
    """The timeline run (tests/report_runs.py), its page, and its summary."""
    logs = write_timeline(tmp_path_factory.mktemp("timeline") / "logs")
    out = logs.parent / "run.html"
    write_report(str(logs), str(out))
    done = subprocess.run(logconf_cli("summary", str(logs), "--json"), cwd=REPO, capture_output=True, text=True, timeout=60)
    return logs, out, json.loads(done.stdout)


def _count(node, cls: str) -> int:
    return sum(int(n.attrs["data-count"]) for n in node.select(cls=cls))


def test_the_page_draws_a_lane_per_file_and_process_with_summarys_marks_and_the_first_error(page):
    _, out, summary = page
    shown = dom(out)
    body = shown.select("body")[0]
    assert body.attrs["data-ready"] == "1"
    lanes = shown.select(cls="row lane")
    assert [(n.attrs["data-file"], f"{n.attrs['data-process']}:{n.attrs['data-pid']}") for n in lanes] == [
        (row["file"], process) for row in summary["files"] for process in row["processes"]
    ]
    for lane, row in zip(lanes, summary["files"], strict=True):
        assert _count(lane, "mark warning") == row["levels"].get("WARNING", 0)
        assert _count(lane, "mark error") == row["levels"].get("ERROR", 0)
        assert _count(lane, "mark critical") == 0
        assert _count(lane, "bin") == row["records"]
        assert lane.attrs["data-rank"] == row["rank"]
    assert shown.find("stat-records").text() == f"records {summary['totals']['records']}"
    assert shown.find("stat-files").text() == "files 3"
    assert shown.find("stat-errors").text() == "errors 2"
    assert shown.find("stat-torn").text() == "torn 0"
    # The first error: marked on its lane, named in the header, shown whole below on load.
    marker = shown.find("first-error")
    assert marker in lanes[2].walk() and lanes[2].attrs["data-file"] == "vllm_rank_1.jsonl"
    assert "vllm_rank_1.jsonl:" in shown.find("first-error-text").text()
    assert shown.find("first-error-text").text().endswith("vllm.v1.engine.core: step 7 failed")
    record = shown.select("pre", cls="record")[0].text().splitlines()
    assert record[1:4:2] == ["Traceback (most recent call last):", "    raise RuntimeError(f\"{message} blew up\")"]
    assert record[4] == "RuntimeError: step 7 failed blew up"
    assert [n.text() for n in shown.find("left-out").select("li")][1].startswith("Records below WARNING")


def test_a_click_on_a_mark_shows_its_record_as_text_with_the_entries_around_it(page):
    _, out, _ = page
    (mark,) = dom(out).select(cls="mark warning", data_lane="lane-1")  # rank 0's one WARNING
    shown = dom(out, f"test=click:{mark.id}")
    assert shown.select("body")[0].attrs["data-test"] == "done"
    details = shown.find("details")
    assert shown.find("details-count").text().startswith("1 WARNING records of vllm_rank_0.log EngineActor-0[")
    (article,) = details.select("article")
    (record,) = article.select("pre", cls="record")
    assert record.text().endswith(f"vllm.v1.engine.core: {MARKUP}")  # markup in a message stays text
    assert len(shown.select("script")) == 2 and not any(b.text() == "bold" for b in shown.select("b"))
    before, after = article.select("pre", cls="context")
    assert [line.rsplit(": ", 1)[1] for line in before.text().splitlines()] == ["step 10 done", "step 11 done", "step 12 done"]
    assert [line.rsplit(": ", 1)[1] for line in after.text().splitlines()] == ["step 13 done", "step 14 done", "step 15 done"]


def test_a_click_on_a_bin_without_kept_records_gives_the_merge_command_that_prints_them(page):
    logs, out, _ = page
    shown = dom(out)
    bins = shown.select(cls="bin", data_lane="lane-0")  # the trainer: INFO, one WARNING
    marked = {n.attrs["data-bin"] for n in shown.select(cls="mark", data_lane="lane-0")}
    plain = next(n for n in bins if n.attrs["data-bin"] not in marked)
    clicked = dom(out, f"test=click:{plain.id}")
    count = int(plain.attrs["data-count"])
    assert clicked.find("details-count").text().startswith(f"{count} records of skyrl_rank_0.log TrainerActor[")
    assert "; 0 kept in this page. All of them (this file and the others):" in clicked.find("details-count").text()
    (command,) = clicked.find("details").select("code", cls="command")
    argv = shlex.split(command.text())
    assert argv[:3] == ["logconf", "merge", str(logs)]
    merge = [sys.executable, "-m", "logconf", *argv[1:], "--json"]
    done = subprocess.run(merge, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    assert sum(1 for r in printed if r["file"] == "skyrl_rank_0.log") == count


def test_the_filters_hide_marks_below_the_level_and_lanes_of_other_subsystems_and_ranks(page):
    _, out, _ = page
    shown = dom(out, "test=level:error&hide:trainer&rank:1")
    assert "min-error" in shown.select("body")[0].classes
    hidden = {n.attrs["data-file"]: "hidden" in n.classes for n in shown.select(cls="row lane")}
    assert hidden == {"vllm_rank_0.log": True, "vllm_rank_1.jsonl": False, "skyrl_rank_0.log": True}


def test_a_click_on_a_gap_says_who_went_quiet_and_for_how_long(page):
    _, out, _ = page
    (gap,) = dom(out).select(cls="gap")
    shown = dom(out, f"test=click:{gap.id}")
    assert gap.attrs["data-lane"] == "lane-2"
    assert shown.find("details-count").text().startswith("EngineActor-1[")
    quiet = "wrote nothing from 2026-11-26T09:01:20.000Z to 2026-11-26T09:04:00.000Z (160.0 s)"
    assert quiet in shown.find("details-count").text()


def test_a_stdio_copys_row_shows_its_raw_errors(tmp_path, monkeypatch):
    logs = tmp_path / "logs"
    monkeypatch.setenv("LOGCONF_DIR", str(logs))
    run(raw_errors, "0", name="EngineCore_DP0")
    out = tmp_path / "run.html"
    write_report(str(logs), str(out))
    shown = dom(out, "test=click:stdio-0")
    assert shown.find("details-count").text().startswith("2 raw errors")
    records = [n.text() for n in shown.find("details").select("pre", cls="record")]
    assert records[0].splitlines()[-1].endswith("] ValueError: raw failure outside logging")
    assert records[1].endswith("] terminate called after throwing an instance of 'c10::Error'")


def test_a_screenshot_of_the_page_is_a_png_of_the_window(page, tmp_path):
    _, out, _ = page
    assert screenshot(out, tmp_path / "run.png") == (1400, 900)
