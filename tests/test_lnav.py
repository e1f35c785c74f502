"""The shipped lnav format, read by the real lnav headless: its SQL view counts what `logconf summary` counts.

Text and JSON rank files written by real handlers (tests/report_runs.py): per file the records
(a traceback is part of its record), levels, ranks and first and last times equal summary's; the
JSON format's fields include the host and Ray's context columns.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from lnavrun import INSTALL, assert_same_as_summary, counts, install_format, query
from logwriters import REPO, logconf_cli, run, scripted
from report_runs import T0, log_dir, write_timeline

pytestmark = pytest.mark.lnav


@pytest.fixture(scope="module")
def timeline(tmp_path_factory):
    return write_timeline(tmp_path_factory.mktemp("timeline") / "logs")


def test_lnav_counts_per_file_level_and_rank_what_summary_counts(timeline, tmp_path):
    """The format installs with the command `logconf path --help` shows; lnav then counts as summary does."""
    shown = subprocess.run(logconf_cli("path", "--help"), cwd=REPO, capture_output=True, text=True, timeout=60)
    assert f"  {INSTALL}" in shown.stdout.splitlines()
    said = install_format(tmp_path / "home")
    assert "installed" in said and (tmp_path / "home" / ".lnav" / "formats" / "installed").is_dir()
    done = subprocess.run(logconf_cli("summary", str(timeline), "--json"), cwd=REPO, capture_output=True, text=True, timeout=60)
    summary = json.loads(done.stdout)
    files = sorted(timeline.iterdir())
    assert_same_as_summary(counts(tmp_path / "home", files, timeline), summary)


def test_lnav_reads_each_records_fields_and_keeps_a_traceback_in_its_record(timeline, tmp_path):
    home = tmp_path / "home"
    install_format(home)
    errors = "FROM logconf_log WHERE log_level = 'error'"
    (text,) = query(home, f"SELECT log_level, rank, process_name, logger, log_body {errors}", [timeline / "vllm_rank_0.log"])
    assert {k: text[k] for k in ("log_level", "rank", "process_name", "logger")} == {
        "log_level": "error",
        "rank": "0",
        "process_name": "EngineActor-0",
        "logger": "vllm.v1.engine.core",
    }
    assert text["log_body"].startswith("step 25 failed")
    (raw,) = query(home, f"SELECT log_raw_text {errors}", [timeline / "vllm_rank_0.log"])
    assert raw["log_raw_text"].splitlines()[-1] == "RuntimeError: step 25 failed blew up"  # the traceback is the record's
    fields = "SELECT log_level, rank, process_name, pid, logger, host, exc_info FROM logconf_json WHERE log_level = 'error'"
    (row,) = query(home, fields, [timeline / "vllm_rank_1.jsonl"])
    assert (row["rank"], row["process_name"], row["logger"]) == ("1", "EngineActor-1", "vllm.v1.engine.core")
    assert row["host"] and row["exc_info"].splitlines()[-1] == "RuntimeError: step 7 failed blew up"


def test_lnav_counts_records_older_than_the_line_above_them_as_summary_does(tmp_path):
    """Several processes append to one rank file, so a record can be older than the line above it, and a file's
    earliest record need not be its first line: counts and first and last times still equal summary's, in text and
    in JSON (where lnav 0.11's log_actual_time reads garbage for such a record)."""
    out = tmp_path / "logs"
    shuffled = (
        (T0 + 10, "vllm.v1.engine.core", "INFO", "second in time, first line"),
        (T0 + 20, "vllm.v1.engine.core", "WARNING", "last in time"),
        (T0 + 5, "vllm.v1.engine.core", "INFO", "earliest, written by another process later"),
        (T0 + 15, "vllm.v1.engine.core", "INFO", "the last line"),
    )
    with log_dir(out):
        run(scripted, "2", "text", shuffled, name="EngineCore_DP0")
        run(scripted, "3", "json", shuffled, name="EngineCore_DP0")
    home = tmp_path / "home"
    install_format(home)
    done = subprocess.run(logconf_cli("summary", str(out), "--json"), cwd=REPO, capture_output=True, text=True, timeout=60)
    summary = json.loads(done.stdout)
    assert {row["first"] for row in summary["files"]} == {"2026-11-26T09:00:05.000Z"}
    assert {row["last"] for row in summary["files"]} == {"2026-11-26T09:00:20.000Z"}
    assert_same_as_summary(counts(home, sorted(out.iterdir()), out), summary)
