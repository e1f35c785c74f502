"""The operator tools' command line: --help with examples, and one clear line for each mistake."""

from __future__ import annotations

import subprocess
import sys

import pytest
from logwriters import REPO, logconf_cli

COMMANDS = ["summary", "merge", "tail", "check", "path"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(logconf_cli(*args), cwd=REPO, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_help_shows_an_example(command):
    """`python -m logconf CMD --help` exits 0 and shows at least one example command line."""
    result = _run(command, "--help")
    assert result.returncode == 0
    assert "example" in result.stdout
    assert f"logconf {command}" in result.stdout or "python -m logconf" in result.stdout


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


def test_the_console_script_runs_the_same_main():
    """pyproject installs `logconf` as logconf.cli:main, the function behind `python -m logconf`."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    with open(REPO / "pyproject.toml", "rb") as file:
        assert tomllib.load(file)["project"]["scripts"] == {"logconf": "logconf.cli:main"}
