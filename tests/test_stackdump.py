"""Each process that logs through logconf registers once for stack dumps: privately, chained, after fork too."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys

import pytest
from failure_helpers import child_env, logconf_cli

import logconf
from logconf import stackdump
from logconf.errors import ConfigError


def test_the_signal_is_named_or_numbered_and_off_turns_it_off():
    assert stackdump.parse_signal("SIGRTMIN+5") == signal.SIGRTMIN + 5
    assert stackdump.parse_signal("rtmax-2") == signal.SIGRTMAX - 2
    assert stackdump.parse_signal("USR2") == signal.SIGUSR2
    assert stackdump.parse_signal(str(int(signal.SIGUSR1))) == signal.SIGUSR1
    assert stackdump.parse_signal("off") is None and stackdump.parse_signal("0") is None
    assert stackdump.signal_name(signal.SIGRTMIN + 5) == "SIGRTMIN+5"
    assert stackdump.signal_name(signal.SIGUSR2) == "SIGUSR2"


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("LOGCONF_STACKS_SIGNAL", "SIGKILL", "cannot carry stack dumps"),
        ("LOGCONF_STACKS_SIGNAL", "SIGRTMIN*5", "is not a signal"),
        ("LOGCONF_STACKS_SIGNAL", "SIG_IGN", "is not a signal"),
        ("LOGCONF_STACKS_SIGNAL", "SIGSEGV", "cannot carry stack dumps"),
        ("LOGCONF_STACKS_SIGNAL", "SIGNOPE", "is not a signal"),
        ("LOGCONF_STACKS_SIGNAL", "999", "is not a signal that can carry stack dumps here"),
        ("LOGCONF_STACKS_SIGNAL", "", "is empty"),
        ("LOGCONF_STALL_S", "soon", "is not a number of seconds"),
        ("LOGCONF_STALL_S", "-5", "is not a number of seconds"),
        ("LOGCONF_STACKS_DIR", "", "is empty"),
    ],
)
def test_a_bad_variable_fails_apply_naming_it_and_the_value(logdir, monkeypatch, name, value, problem):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        logconf.apply()
    assert (caught.value.key, caught.value.value, caught.value.problem) == (name, value, problem)
    assert not (logdir / "skyrl_rank_0.log").exists()  # refused before any handler was built


def _child(tmp_path, code: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env=child_env(tmp_path / "logs", tmp_path / "registry", **env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


REGISTERED = """
import logging, os, sys, threading, logconf
logconf.apply()
print(threading.main_thread().ident, flush=True)
sys.stdin.readline()
logconf.set_rank(5)
print("moved", flush=True)
sys.stdin.readline()
"""


def test_a_process_records_itself_privately_follows_its_rank_and_removes_its_files_at_exit(tmp_path):
    child = _child(tmp_path, REGISTERED, LOGCONF_RANK="2")
    assert child.stdout is not None and child.stdin is not None
    main_thread = int(child.stdout.readline())
    registry = tmp_path / "registry"
    stem = registry / f"{socket.gethostname()}-{child.pid}"
    record = json.loads(stem.with_suffix(".json").read_text())
    assert stat.S_IMODE(registry.stat().st_mode) == 0o700
    assert (
        stat.S_IMODE(stem.with_suffix(".json").stat().st_mode)
        == stat.S_IMODE(stem.with_suffix(".stacks").stat().st_mode)
        == 0o600
    )
    assert record == {
        "schema": "logconf.stackdump/1",
        "pid": child.pid,
        "start": stackdump.process_start(child.pid),
        "host": socket.gethostname(),
        "boot_id": stackdump.host_key()[1],
        "rank": "2",
        "process_name": "MainProcess",
        "main_thread": main_thread,
        "signal": signal.SIGRTMIN + 5,
        "chained": False,
        "dump": str(stem.with_suffix(".stacks")),
        "dirs": [str(tmp_path / "logs")],
    }
    child.stdin.write("\n")
    child.stdin.flush()
    assert child.stdout.readline() == "moved\n"
    assert json.loads(stem.with_suffix(".json").read_text())["rank"] == "5"
    child.stdin.write("\n")
    child.stdin.close()
    assert child.wait(30) == 0, child.stderr.read() if child.stderr else ""
    assert sorted(p.name for p in registry.iterdir()) == []
    child.stdout.close()
    child.stderr.close()  # type: ignore[union-attr]


CHAINED = """
import os, signal, sys, threading, time
ran = threading.Event()
signal.signal(signal.SIGRTMIN + 5, lambda *_: ran.set())
import logconf
logconf.apply()
print("ready", flush=True)
print("own handler ran" if ran.wait(30) else "own handler never ran", flush=True)
"""


def test_a_handler_the_process_had_for_the_signal_still_runs_after_the_dump(tmp_path):
    child = _child(tmp_path, CHAINED)
    assert child.stdout is not None
    assert child.stdout.readline() == "ready\n"
    record = json.loads((tmp_path / "registry" / f"{socket.gethostname()}-{child.pid}.json").read_text())
    done = logconf_cli("stacks", "--dir", str(tmp_path / "logs"), env=child_env(tmp_path / "logs", tmp_path / "registry"))
    assert done.returncode == 0, done.stderr
    assert record["chained"] is True
    assert child.stdout.readline() == "own handler ran\n"
    assert child.wait(30) == 0
    assert f"rank 0's MainProcess[{child.pid}] waits in `<module>` (<string>:8)" in done.stdout  # Event.wait is stdlib
    for stream in (child.stdout, child.stdin, child.stderr):
        stream.close()  # type: ignore[union-attr]


FAMILY = """
import logging, multiprocessing, sys, threading, logconf
logconf.apply()

def forked(ready):
    logging.getLogger("skyrl.train").info("fork child up")
    ready.set()
    threading.Event().wait()

if __name__ == "__main__":
    ready = multiprocessing.get_context("fork").Event()
    child = multiprocessing.get_context("fork").Process(target=forked, args=(ready,), name="ForkWorker-1", daemon=True)
    child.start()
    ready.wait(30)
    print(child.pid, flush=True)
    sys.stdin.readline()
"""


def test_a_multiprocessing_fork_child_registers_itself_and_dumps_into_its_own_file(tmp_path):
    parent = _child(tmp_path, FAMILY)
    assert parent.stdout is not None and parent.stdin is not None
    child_pid = int(parent.stdout.readline())
    done = logconf_cli(
        "stacks", str(tmp_path / "dest"), "--dir", str(tmp_path / "logs"), env=child_env(tmp_path / "logs", tmp_path / "registry")
    )
    parent.stdin.close()
    assert parent.wait(30) == 0
    assert done.returncode == 0, done.stderr
    document = json.loads((tmp_path / "dest" / "stacks.json").read_text())
    assert sorted((p["process_name"], p["pid"]) for p in document["processes"]) == [
        ("ForkWorker-1", child_pid),
        ("MainProcess", parent.pid),
    ]
    dumps = {p["pid"]: p for p in document["processes"]}
    assert [f["function"] for f in dumps[child_pid]["threads"][-1]["frames"]][2] == "forked"
    assert "forked" not in json.dumps(dumps[parent.pid])  # each dump from its own process, each once
    parent.stdout.close()
    parent.stderr.close()  # type: ignore[union-attr]


def test_a_registry_others_may_write_is_refused_in_one_line_and_logging_goes_on(tmp_path):
    registry = tmp_path / "registry"
    registry.mkdir(mode=0o777)
    registry.chmod(0o777)
    code = "import logging, logconf; logconf.apply(); logging.getLogger('skyrl.train').warning('still logging')"
    done = subprocess.run(
        [sys.executable, "-c", code], env=child_env(tmp_path / "logs", registry), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    lines = done.stderr.splitlines()
    assert lines[0].startswith("logconf: `logconf stacks` cannot reach this process (pid ")
    assert f"{registry} is not a private directory of this user" in lines[0]
    assert "still logging" in (tmp_path / "logs" / "skyrl_rank_0.log").read_text()
    assert list(registry.iterdir()) == []


def test_off_registers_nothing_and_the_stdio_tee_never_registers(tmp_path):
    off = "import logconf; logconf.apply()"
    subprocess.run(
        [sys.executable, "-c", off],
        env=child_env(tmp_path / "logs", tmp_path / "off", LOGCONF_STACKS_SIGNAL="off"),
        check=True,
        timeout=60,
    )
    assert not (tmp_path / "off").exists()
    captured = (
        "import os, sys, time; sys.path.insert(0, os.environ['HELPERS']); from helpers import load_like_vllm; load_like_vllm(); "
        "print('copied', flush=True); copy = os.path.join(os.environ['LOGCONF_DIR'], 'vllm_rank_0.stdio.log'); "
        "[time.sleep(0.02) for _ in range(1000) if 'copied' not in (open(copy).read() if os.path.exists(copy) else '')]; "
        "print(len(os.listdir(os.environ['LOGCONF_STACKS_DIR'])), file=sys.stderr, flush=True)"
    )
    env = child_env(tmp_path / "logs", tmp_path / "registry", LOGCONF_CAPTURE_STDIO="1", HELPERS=os.path.dirname(__file__))
    done = subprocess.run([sys.executable, "-c", captured], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "2\n"  # this process's record and dump file, none of its tee's (which copied a line)


LATE_NAME = """
import multiprocessing, os, sys
import logconf
logconf.apply()  # as LOGCONF_AUTO does at interpreter start, before the process knows its name
multiprocessing.current_process().name = "EngineCore_DP0"  # as a spawn child's bootstrap names it
sys.path.insert(0, os.environ["HELPERS"])
from helpers import load_like_vllm
load_like_vllm()  # then vLLM applies its config in it
print("ready", flush=True)
sys.stdin.readline()
"""


def test_the_record_takes_the_name_a_process_learns_after_it_registered(tmp_path):
    child = _child(tmp_path, LATE_NAME, HELPERS=os.path.dirname(__file__))
    assert child.stdout is not None and child.stdin is not None
    assert child.stdout.readline() == "ready\n"
    record = json.loads((tmp_path / "registry" / f"{socket.gethostname()}-{child.pid}.json").read_text())
    child.stdin.close()
    assert child.wait(30) == 0
    assert record["process_name"] == "EngineCore_DP0"
    for stream in (child.stdout, child.stderr):
        stream.close()  # type: ignore[union-attr]
