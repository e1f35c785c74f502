"""python -m logconf path|check, run as a user would."""

from __future__ import annotations

import subprocess
import sys

import logconf


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "logconf", *args], capture_output=True, text=True, env=env)


def test_path_prints_the_shipped_files():
    assert run("path", "vllm").stdout.strip() == logconf.vllm_config_path()
    assert run("path", "skyrl").stdout.strip() == logconf.skyrl_config_path()


def test_check_prints_the_files_for_this_environment(tmp_path):
    env = {"LOGCONF_DIR": str(tmp_path), "LOGCONF_RANK": "7", "LOGCONF_FORMAT": "json", "PATH": "/usr/bin"}
    done = run("check", logconf.vllm_config_path(), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"{logconf.vllm_config_path()}: ok", f"  writes {tmp_path}/vllm_rank_7.jsonl"]
    assert not (tmp_path / "vllm_rank_7.jsonl").exists()  # check creates nothing


def test_check_reports_one_clear_line_for_bad_input(tmp_path):
    done = run("check", logconf.skyrl_config_path(), env={"LOGCONF_RANK": "", "PATH": "/usr/bin"})
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"logconf check: {logconf.skyrl_config_path()}: formatters.logconf_file.rank: environment variable LOGCONF_RANK "
        "is set but empty (got '${LOGCONF_RANK:-${RANK:-0}}'); give it a value, or unset it to use the default"
    )
    assert "Traceback" not in done.stderr
