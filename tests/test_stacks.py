"""`logconf stacks` on real processes of this machine: each dumps once, from C, and the odd ones out are named."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

from failure_helpers import child_env, logconf_cli, stacks_json, state, workers

PLAN = [("0", "TrainerWorker", "wait"), ("1", "TrainerWorker", "wait"), ("2", "TrainerWorker", "wait")]


def test_stacks_names_the_worker_blocked_in_a_c_call_and_the_one_holding_the_gil(tmp_path):
    """Three workers wait in one function; rank 3 is blocked in a socket's recv, rank 4 holds the GIL in libc's sleep."""
    logdir, registry = tmp_path / "logs", tmp_path / "registry"
    plan = [*PLAN, ("3", "TrainerWorker", "recv"), ("4", "TrainerWorker", "gil")]
    with workers(logdir, registry, plan) as children:
        pids = [c.pid for c in children]
        done = logconf_cli("stacks", str(tmp_path / "dest"), "--dir", str(logdir), env=child_env(logdir, registry))
        time.sleep(0.1)
        assert [state(pid) for pid in pids] == ["S"] * 5  # every worker goes on where it was
    assert done.returncode == 0, done.stderr
    document = json.loads((tmp_path / "dest" / "stacks.json").read_text())
    lines = done.stdout.splitlines()
    assert lines[0] == f"5 processes on 1 node ({socket.gethostname()}), signalled with SIGRTMIN+5: 5 dumps"
    assert lines[1] == "- 3 TrainerWorker processes (ranks 0 to 2) wait in `wait_for_peers` (<string>:9)"
    assert lines[2] == (
        f"- odd one out: rank 3's TrainerWorker[{pids[3]}] waits in `recv_weights` (<string>:13), "
        "while 3 other TrainerWorker processes wait in `wait_for_peers` (<string>:9)"
    )
    assert lines[3] == (
        f"- odd one out: rank 4's TrainerWorker[{pids[4]}] waits in `hold_gil` (<string>:18), "
        "while 3 other TrainerWorker processes wait in `wait_for_peers` (<string>:9)"
    )
    assert document["schema"] == "logconf.stacks/1"
    assert document["summary"] == [line[2:] for line in lines[1:4]]
    assert [(g["size"], g["odd"], g["where"]["function"]) for g in document["groups"]] == [
        (3, False, "wait_for_peers"),
        (1, True, "recv_weights"),
        (1, True, "hold_gil"),
    ]
    by_pid = {p["pid"]: p for p in document["processes"]}
    assert sorted(by_pid) == sorted(pids)
    for rank, pid in enumerate(pids):
        process = by_pid[pid]
        assert (process["rank"], process["process_name"], process["state"], process["problem"]) == (
            str(rank),
            "TrainerWorker",
            "S",
            None,
        )
        main = [t for t in process["threads"] if t["id"] == process["main_thread"]]
        assert len(main) == 1 and main[0]["frames"][-1]["function"] == "<module>"


def test_dest_gets_each_dump_whole_under_a_header_naming_rank_process_pid_host_and_time(tmp_path):
    logdir, registry, dest = tmp_path / "logs", tmp_path / "registry", tmp_path / "dest"
    with workers(logdir, registry, [("7", "EngineCore_DP0", "recv"), ("driver", "MainProcess", "wait")]) as children:
        done = logconf_cli("stacks", str(dest), "--dir", str(logdir), env=child_env(logdir, registry))
    assert done.returncode == 0, done.stderr
    host = socket.gethostname()
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.txt"))
    assert files == sorted(
        [f"{host}/rank7-EngineCore_DP0-{children[0].pid}.txt", f"{host}/rankdriver-MainProcess-{children[1].pid}.txt"]
    )
    text = (dest / host / f"rank7-EngineCore_DP0-{children[0].pid}.txt").read_text()
    header, *dump = text.splitlines()
    assert re.fullmatch(
        rf"# logconf stacks: rank 7, EngineCore_DP0, pid {children[0].pid}, host {host}, node {host}, "
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z, state S \(sleeping\)",
        header,
    )
    assert dump[0].startswith("Current thread 0x") and dump[0].endswith("(most recent call first):")
    assert dump[1:] == ['  File "<string>", line 13 in recv_weights', '  File "<string>", line 21 in <module>']
    document = json.loads((dest / "stacks.json").read_text())
    assert {p["pid"] for p in document["processes"]} == {c.pid for c in children}


def test_only_the_runs_processes_are_signalled_and_the_command_never_signals_itself(tmp_path):
    """--dir picks the run: a process of another log directory in the same registry is left alone."""
    registry = tmp_path / "registry"
    with (
        workers(tmp_path / "run-a", registry, [("0", "A", "wait")]) as a,
        workers(tmp_path / "run-b", registry, [("0", "B", "wait")]) as b,
    ):
        document = stacks_json("--dir", str(tmp_path / "run-a"), env=child_env(tmp_path / "run-a", registry))
        both = stacks_json(env=child_env(tmp_path / "run-a", registry))
        dump_b = (registry / f"{socket.gethostname()}-{b[0].pid}.stacks").read_text()
    assert [p["pid"] for p in document["processes"]] == [a[0].pid]
    assert sorted(p["pid"] for p in both["processes"]) == sorted([a[0].pid, b[0].pid])
    assert dump_b.count("(most recent call first)") == 1  # signalled by the second command only


def test_a_process_that_cannot_dump_is_named_with_its_state_and_the_command_exits_1(tmp_path):
    logdir, registry = tmp_path / "logs", tmp_path / "registry"
    with workers(logdir, registry, [("0", "TrainerWorker", "wait"), ("1", "TrainerWorker", "wait")]) as children:
        os.kill(children[1].pid, signal.SIGSTOP)
        try:
            done = logconf_cli("stacks", "--dir", str(logdir), "--timeout", "0.5", env=child_env(logdir, registry))
        finally:
            os.kill(children[1].pid, signal.SIGCONT)
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[0].endswith("signalled with SIGRTMIN+5: 1 dump")
    missing = f"- no dump from rank 1's TrainerWorker[{children[1].pid}] on {socket.gethostname()}: "
    assert missing + "no dump within 0.5 s (state T: stopped)" in done.stdout
    assert done.stdout.splitlines()[1] == f"- rank 0's TrainerWorker[{children[0].pid}] waits in `wait_for_peers` (<string>:9)"


def test_no_process_found_is_said_in_one_line_with_exit_2(tmp_path):
    done = logconf_cli("stacks", "--dir", str(tmp_path / "nothing"), env=child_env(tmp_path / "nothing", tmp_path / "registry"))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(
        f"logconf stacks: no live process writing into {tmp_path / 'nothing'} registered for stack dumps"
    )


def test_a_process_that_exec_ed_is_not_signalled_and_a_reused_pid_is_not_either(tmp_path):
    """exec resets signal handlers: the signal's default action would end the process, so it is left alone;
    a record whose pid now belongs to another process (another start time) is removed, not signalled."""
    logdir, registry = tmp_path / "logs", tmp_path / "registry"
    code = (
        "import os, sys, logconf; logconf.apply(); print('ready', flush=True); "
        "os.execv(sys.executable, [sys.executable, '-c', 'import time; print(\"exec-ed\", flush=True); time.sleep(60)'])"
    )
    child = subprocess.Popen([sys.executable, "-c", code], env=child_env(logdir, registry), stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        assert child.stdout.readline() == "exec-ed\n"
        own = registry / f"{socket.gethostname()}-{child.pid}.json"
        record = json.loads(own.read_text())
        stranger = dict(record, pid=os.getppid(), start=record["start"])  # a live pid, but not the process recorded
        (registry / "stranger.json").write_text(json.dumps(stranger))
        done = logconf_cli("stacks", "--dir", str(logdir), "--json", env=child_env(logdir, registry))
        time.sleep(0.2)
        assert child.poll() is None  # still running: never sent a signal it no longer catches
    finally:
        child.kill()
        child.wait(10)
        child.stdout.close()
    document = json.loads(done.stdout)
    assert done.returncode == 1
    assert [(p["pid"], p["problem"]) for p in document["processes"]] == [
        (child.pid, "no longer catches SIGRTMIN+5 (an exec resets handlers): not signalled")
    ]
    assert not (registry / "stranger.json").exists()
