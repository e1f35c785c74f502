"""Real processes for the failure tests: workers stuck in known places, jobs that stall or fail."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# A worker that applies logconf, logs one record, then waits where argv[1] says: in a Python
# wait (an Event), blocked in a C call without the GIL (a socket), or in a C call that holds the
# GIL (libc's sleep through ctypes.PyDLL, which never releases it).
WORKER = r"""
import ctypes, logging, multiprocessing, os, socket, sys, threading, time
multiprocessing.current_process().name = sys.argv[2]
import logconf
logconf.apply()
logging.getLogger("skyrl.train").info("worker %s ready", sys.argv[1])

def wait_for_peers():
    threading.Event().wait()

def recv_weights():
    left, right = socket.socketpair()
    left.recv(1)

def hold_gil():
    libc = ctypes.PyDLL(None)
    while True:
        libc.sleep(3600)

print("ready", flush=True)
{"wait": wait_for_peers, "recv": recv_weights, "gil": hold_gil}[sys.argv[1]]()
"""


def child_env(logdir: Path, registry: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "VLLM_", "RANK"))}
    env.update(LOGCONF_DIR=str(logdir), LOGCONF_STACKS_DIR=str(registry), PYTHONPATH=str(REPO), **extra)
    return env


def state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            return file.read().rsplit(b")", 1)[1].split()[0].decode()
    except OSError:
        return "gone"


def wait_asleep(pids: Sequence[int], timeout: float = 20.0) -> None:
    """Wait until every process sleeps (it reached its blocking call), twice in a row."""
    deadline = time.monotonic() + timeout
    streak = 0
    while streak < 3:
        assert time.monotonic() < deadline, {pid: state(pid) for pid in pids}
        streak = streak + 1 if all(state(pid) == "S" for pid in pids) else 0
        time.sleep(0.05)


@contextlib.contextmanager
def workers(logdir: Path, registry: Path, plan: Sequence[tuple[str, str, str]]) -> Iterator[list[subprocess.Popen]]:
    """Start one WORKER per (rank, process name, where it waits); yield them once all wait; kill them after."""
    started = []
    try:
        for rank, name, where in plan:
            env = child_env(logdir, registry, LOGCONF_RANK=rank)
            started.append(
                subprocess.Popen([sys.executable, "-c", WORKER, where, name], env=env, stdout=subprocess.PIPE, text=True)
            )
        for child in started:
            assert child.stdout is not None and child.stdout.readline() == "ready\n"
        wait_asleep([c.pid for c in started])
        yield started
    finally:
        for child in started:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGKILL)
            child.wait(10)
            if child.stdout is not None:
                child.stdout.close()


def logconf_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m logconf ARGS`` in a child, as an operator would."""
    return subprocess.run(
        [sys.executable, "-m", "logconf", *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def stacks_json(*args: str, env: dict[str, str]) -> dict:
    done = logconf_cli("stacks", *args, "--json", env=env)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)
