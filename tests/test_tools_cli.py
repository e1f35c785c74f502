"""The operator tools' command line: --help with examples that run as shown, and one clear line for each mistake."""

from __future__ import annotations

import calendar
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from helpers import OutputReader
from logwriters import REPO, logconf_cli, run, scripted

import logconf.cli

COMMANDS = ["summary", "merge", "tail", "check", "path", "gather", "report"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(logconf_cli(*args), cwd=REPO, capture_output=True, text=True, timeout=60)


EXAMPLES = {
    "summary": [
        "logconf summary /tmp/logconf",
        "logconf summary demo-logs --json | jq .totals",
        "logconf summary demo-logs --top 5",
    ],
    "merge": [
        "logconf merge /tmp/logconf --level WARNING",
        "logconf merge demo-logs --logger vllm.v1.engine --since 2026-11-26T09:10:00Z --until 2026-11-26T09:11:00Z",
        "logconf merge demo-logs --grep 'step 40|Traceback'",
    ],
    "tail": ["logconf tail /tmp/logconf -n 20", "logconf tail -f /tmp/logconf --level WARNING"],
    "check": ["LOGCONF_RANK=3 python -m logconf check $(python -m logconf path vllm)"],
    # The lnav example runs in tests/test_lnav.py (it needs lnav).
    "path": ["export VLLM_LOGGING_CONFIG_PATH=$(python -m logconf path vllm)", 'lnav -i "$(logconf path lnav)"'],
    # Run on a real two-node Ray cluster by tests/real/test_real_multinode.py.
    "gather": [
        "logconf gather run42-logs && logconf summary run42-logs",
        "logconf gather run42-logs --address 10.0.0.5:6379 --dir /scratch/run42/logs",
    ],
    # The second, on gather's DEST, runs on the real two-node cluster (tests/real/test_real_multinode.py).
    "report": [
        "logconf report demo-logs -o run.html",
        "logconf gather run42-logs -q && logconf report run42-logs -o run42.html --quiet-s 300",
    ],
}
T0 = calendar.timegm((2026, 11, 26, 9, 0, 0))
# A run the examples can be pointed at: (second, logger, level, message), written by ranks 0 (text) and 1 (JSON).
SCRIPT = (
    (T0 + 570, "vllm.entrypoints.llm", "INFO", "engine ready"),
    (T0 + 615, "vllm.v1.engine.core", "INFO", "step 39 done"),
    (T0 + 630, "vllm.v1.engine.core", "WARNING", "step 40 slow"),
    (T0 + 645, "vllm.v1.engine.core", "ERROR", "step 40 failed"),
    (T0 + 690, "vllm.v1.engine.core", "INFO", "step 41 done"),
)
HEAD = re.compile(r"^\S+Z (\S+) [A-Z]+ rank=\S+ \S+\[\d+\] \S+: (.*)$")
FILES = ("vllm_rank_0.log", "vllm_rank_1.jsonl")


def _examples(help_text: str) -> list[str]:
    """The command lines after ``example:`` (one, on its line) or ``examples:`` (one per line below)."""
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(("example:", "examples:")))
    first = lines[start].split(":", 1)[1].strip()
    return ([first] if first else []) + [line.strip() for line in lines[start + 1 :] if line.strip()]


def _heads(lines: list[str]) -> list[tuple[str, str]]:
    return [m.group(1, 2) for m in map(HEAD.match, lines) if m]


def _both(*messages: str) -> list[tuple[str, str]]:
    """Each message from rank 0's file, then rank 1's: merge order for records of equal time."""
    return [(file, message) for message in messages for file in FILES]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_help_shows_its_example_command_lines(command):
    """`python -m logconf CMD --help` exits 0 and ends with exactly these example command lines (run below)."""
    wide = {**os.environ, "COLUMNS": "200"}  # argparse wraps at the terminal's width: keep each example on its line
    result = subprocess.run(logconf_cli(command, "--help"), cwd=REPO, capture_output=True, text=True, timeout=60, env=wide)
    assert result.returncode == 0
    assert _examples(result.stdout) == EXAMPLES[command]


@pytest.fixture
def example_shell(tmp_path, monkeypatch):
    """Run a help example as a user would: in bash, with the installed ``logconf`` and ``python`` first on PATH.

    ``demo-logs`` is a real run in tmp_path; ``/tmp/logconf``, which some examples name, is read as
    ``demo-logs``. ``jq`` (summary's example) must be installed.
    """
    monkeypatch.setenv("LOGCONF_DIR", str(tmp_path / "demo-logs"))
    run(scripted, "0", "text", SCRIPT, name="EngineActor-0")
    run(scripted, "1", "json", SCRIPT, name="EngineActor-1")
    bin_dir = os.path.dirname(sys.executable)
    assert os.access(os.path.join(bin_dir, "logconf"), os.X_OK), "the logconf script is not installed beside python"
    assert shutil.which("jq"), "summary's --help example pipes into jq: install jq"
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"], "PYTHONPATH": str(REPO)}
    env["LOGCONF_DIR"] = str(tmp_path / "check-dir")

    def shell(command: str, *, follow: int = 0) -> tuple[int, list[str]]:
        command = command.replace("/tmp/logconf", "demo-logs")
        if not follow:
            result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
            assert result.stderr == "", result.stderr
            return result.returncode, result.stdout.splitlines()
        with subprocess.Popen(
            ["bash", "-c", f"exec {command}"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
        ) as child:
            reader = OutputReader(child.stdout)
            reader.start()
            try:
                lines = reader.until(lambda seen: len(seen) >= follow)
            finally:
                child.terminate()
                child.wait(30)
                reader.join(30)
            return 0, lines + reader.rest()

    return shell


def test_every_help_example_runs_and_does_what_it_says(example_shell, tmp_path):
    """Each example, run in bash on a real run, prints what it promises."""
    [summary, summary_jq, top], [warnings, window, grep], [last, follow] = (EXAMPLES[c] for c in ("summary", "merge", "tail"))
    code, lines = example_shell(summary)
    assert (code, lines[0].split(" | ")[0], lines[-1]) == (0, "| file", "2 files, 10 records, 14 lines: ok")
    code, lines = example_shell(top)
    head = lines.index("| file | count | first | last | level | logger | message |")
    rows = [line.split(" | ")[1:] for line in lines[head + 2 : head + 2 + 8]]
    assert code == 0 and [row[0] for row in rows] == ["2", "1", "1", "1"] * 2
    assert [row[-1] for row in rows[:4]] == ["step <n> done |", "engine ready |", "step <n> slow |", "step <n> failed |"]
    code, lines = example_shell(EXAMPLES["report"][0])
    assert (code, lines[0].startswith("run.html: 2 lanes from 2 files, 10 records, 2 errors, 4 records kept; ")) == (0, True)
    assert (tmp_path / "run.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    code, lines = example_shell(summary_jq)
    totals = json.loads("\n".join(lines))
    assert (code, {k: v for k, v in totals.items() if k not in ("bytes", "disk_bytes")}) == (
        0,
        {"files": 2, "parts": 2, "lines": 14, "records": 10, "foreign": 0, "other_rank": 0, "unparsable": 0, "torn": 0,
         "too_long": 0, "removed_files": 0, "removed_bytes": 0},
    )
    assert totals["disk_bytes"] == totals["bytes"]
    problems = _both("step 40 slow", "step 40 failed")
    code, lines = example_shell(warnings)
    assert (code, _heads(lines), len(lines)) == (0, problems, 4 + 2 * 4)  # each ERROR with its 4 traceback lines
    assert lines[-1] == "RuntimeError: step 40 failed blew up"
    code, lines = example_shell(window)
    assert (code, _heads(lines)) == (0, _both("step 39 done", "step 40 slow", "step 40 failed"))
    code, lines = example_shell(grep)
    assert (code, _heads(lines)) == (0, problems)
    code, lines = example_shell(last)
    assert (code, _heads(lines)) == (0, _both(*(message for *_, message in SCRIPT)))
    code, lines = example_shell(follow, follow=4 + 2 * 4)
    assert (_heads(lines), len(lines)) == (problems, 4 + 2 * 4)

    code, lines = example_shell(EXAMPLES["path"][0] + '\necho "$VLLM_LOGGING_CONFIG_PATH"')
    assert (code, lines) == (0, [str(REPO / "vllm_logging.json")])
    code, lines = example_shell(EXAMPLES["check"][0])
    assert (code, lines) == (0, [f"{REPO / 'vllm_logging.json'}: ok", f"  writes {tmp_path / 'check-dir' / 'vllm_rank_3.log'}"])


def _one_line_error(result: subprocess.CompletedProcess[str], command: str, text: str) -> None:
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"logconf {command}: ")
    assert text in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["summary", "merge", "tail"])
def test_a_missing_directory_is_one_line(tmp_path, command):
    _one_line_error(_run(command, str(tmp_path / "nowhere")), command, "no such file or directory")


@pytest.mark.parametrize("command", ["summary", "merge", "tail"])
def test_an_empty_directory_is_one_line(tmp_path, command):
    _one_line_error(_run(command, str(tmp_path)), command, "empty directory")


@pytest.mark.parametrize("command", ["summary", "merge"])
def test_a_directory_without_rank_files_is_one_line(tmp_path, command):
    (tmp_path / "notes.txt").write_text("hello\n")
    _one_line_error(_run(command, str(tmp_path)), command, "no logconf rank files among its 1 entries")


@pytest.mark.parametrize("command", ["summary", "merge", "tail"])
def test_a_file_that_is_not_a_logconf_log_is_one_line(tmp_path, command):
    path = tmp_path / "demo-run.json"
    path.write_text('{"steps": 3}\n')
    _one_line_error(_run(command, str(path)), command, "not a logconf log")


def test_bad_filter_values_are_one_line(tmp_path):
    (tmp_path / "vllm_rank_0.log").write_text("")
    _one_line_error(_run("merge", str(tmp_path), "--level", "LOUD"), "merge", "unknown level 'LOUD'")
    _one_line_error(_run("merge", str(tmp_path), "--since", "noon"), "merge", "not an ISO 8601 time")
    _one_line_error(_run("merge", str(tmp_path), "--grep", "("), "merge", "not a regular expression")


def _project_scripts() -> dict[str, str]:
    """``[project.scripts]`` of pyproject.toml, read by hand (Python 3.10 has no tomllib)."""
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    table = text.split("\n[project.scripts]\n", 1)[1].split("\n[", 1)[0]
    pairs = (line.split("=", 1) for line in table.splitlines() if line.strip() and not line.lstrip().startswith("#"))
    return {key.strip(): value.strip().strip('"') for key, value in pairs}


def test_the_console_script_runs_the_same_main():
    """pyproject declares `logconf = logconf.cli:main`, the installed script is that entry point, and it prints what
    `python -m logconf` prints."""
    scripts = _project_scripts()
    assert scripts == {"logconf": "logconf.cli:main"}
    if sys.version_info >= (3, 11):  # where tomllib exists, it must read the table as the hand parser does
        import tomllib

        assert tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"] == scripts
    declared = importlib.metadata.EntryPoint("logconf", scripts["logconf"], "console_scripts")
    assert declared.load() is logconf.cli.main
    installed = [e.value for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "logconf"]
    assert installed == ["logconf.cli:main"]
    script = os.path.join(os.path.dirname(sys.executable), "logconf")
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # the script, like -m from the repository, runs this checkout
    for args in (["path", "vllm"], ["merge", "--help"]):
        by_script = subprocess.run([script, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        by_module = subprocess.run(logconf_cli(*args), cwd=REPO, capture_output=True, text=True, timeout=60)
        assert (by_script.returncode, by_script.stdout, by_script.stderr) == (by_module.returncode, by_module.stdout, "")
    assert by_script.stdout.startswith("usage: logconf merge ")


def test_check_of_a_bad_config_is_one_line_on_stderr_and_exit_status_two(tmp_path):
    """A ConfigError is the operator's input to fix: one line naming file and key, no traceback, status 2."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 2}')
    done = subprocess.run(logconf_cli("check", str(bad)), cwd=REPO, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"logconf check: {bad}: version: ") and done.stderr.count("\n") == 1, done.stderr
