"""Warnings and raw stdout/stderr of vLLM's processes, captured per rank (logconf.capture).

Every test runs the capture in a real child interpreter (pytest's own fds stay untouched),
applies the shipped JSON exactly as vLLM does, and reads both the child's real stdout and
stderr (pipes, as Ray's log files are) and the files it left behind.
"""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import read_records

REPO = Path(__file__).resolve().parents[1]
PREFIX = re.compile(r"^(?P<name>[\w.-]+)\[(?P<pid>\d+)\] (?P<text>.*)$")


def child_command(code: str, logdir: Path, capture: str | None = "1", **env: str) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run ``code`` in a fresh interpreter with LOGCONF_DIR=logdir."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "VLLM_", "RANK"))}
    environ.update(LOGCONF_DIR=str(logdir), PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'tests'}", **env)
    if capture is not None:
        environ["LOGCONF_CAPTURE_STDIO"] = capture
    script = "import sys\nfrom helpers import load_like_vllm\n" + textwrap.dedent(code)
    return [sys.executable, "-c", script], environ


def run_child(
    code: str, logdir: Path, *, capture: str | None = "1", timeout: float = 120, **env: str
) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with LOGCONF_DIR=logdir and pipes for fds 1 and 2."""
    command, environ = child_command(code, logdir, capture, **env)
    return subprocess.run(command, env=environ, cwd=REPO, capture_output=True, timeout=timeout, check=False)


def stdio_lines(logdir: Path, rank: str = "0") -> list[tuple[str, int, str]]:
    """Parse ``vllm_rank_<rank>.stdio.log`` into (process name, pid, text); fail on an unprefixed line."""
    lines = []
    for number, line in enumerate((logdir / f"vllm_rank_{rank}.stdio.log").read_text().splitlines(), 1):
        match = PREFIX.match(line)
        assert match, f"line {number} lacks the process_name[pid] prefix: {line!r}"
        lines.append((match["name"], int(match["pid"]), match["text"]))
    return lines


def test_python_and_c_level_writes_reach_the_original_fds_unchanged_and_the_stdio_log_prefixed(logdir):
    """print(), os.write and a libc write(2) on fds 1 and 2: every byte on the real pipe, each line in the log."""
    result = run_child(
        """
        import os
        from capture_helpers import c_write
        load_like_vllm()
        print("py out")
        sys.stdout.flush()
        c_write(2, "[W 1126 torch.cpp:12] C++ warning\\n")
        os.write(1, b"raw one\\nraw two\\n")
        sys.stderr.write("progress 50%\\rprogress 100%\\n")
        os.write(1, b"no newline at exit")
        """,
        logdir,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"py out\nraw one\nraw two\nno newline at exit"
    assert result.stderr == b"[W 1126 torch.cpp:12] C++ warning\nprogress 50%\rprogress 100%\n"
    lines = stdio_lines(logdir)
    assert {(name, pid) for name, pid, _ in lines} == {("MainProcess", lines[0][1])}
    assert sorted(text for _, _, text in lines) == sorted(
        [
            "py out",
            "[W 1126 torch.cpp:12] C++ warning",
            "raw one",
            "raw two",
            "progress 50%",
            "progress 100%",
            "no newline at exit",
        ]
    )


def test_capture_is_off_unless_asked(logdir):
    """Without LOGCONF_CAPTURE_STDIO the fds stay as they were and no .stdio.log appears."""
    result = run_child("load_like_vllm()\nimport os\nprint(os.readlink('/proc/self/fd/1'))", logdir, capture=None)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"pipe:")
    assert not (logdir / "vllm_rank_0.stdio.log").exists()


def test_the_stdio_key_in_the_shipped_json_turns_capture_on(logdir, tmp_path):
    """A copy of vllm_logging.json with filters.logconf_capture.stdio = "1" captures without the env var."""
    config = json.loads((REPO / "vllm_logging.json").read_text())
    config["filters"]["logconf_capture"]["stdio"] = "1"
    path = tmp_path / "vllm_logging.json"
    path.write_text(json.dumps(config))
    result = run_child(f"load_like_vllm({str(path)!r})\nprint('via the key', flush=True)", logdir, capture=None)
    assert result.returncode == 0, result.stderr
    assert [text for _, _, text in stdio_lines(logdir)] == ["via the key"]


def test_applying_the_config_again_keeps_one_tee(logdir):
    """vLLM >= 0.31 applies the JSON more than once per process: each line is still copied once."""
    result = run_child("load_like_vllm()\nload_like_vllm()\nload_like_vllm()\nprint('once', flush=True)", logdir)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"once\n"
    assert [text for _, _, text in stdio_lines(logdir)] == ["once"]


def test_spawned_and_forked_children_tee_under_their_own_names_once(logdir):
    """An actor, its spawned EngineCore and VllmWorker-0 (which re-apply the JSON) and a fork child
    (which does not): every line reaches the real fds once and the log once, under its own process."""
    result = run_child("from capture_helpers import run_family\nif __name__ == '__main__':\n    run_family('T')\n", logdir)
    assert result.returncode == 0, result.stderr
    out, err = result.stdout.decode().splitlines(), result.stderr.decode().splitlines()
    assert sorted(out) == sorted(["T actor C-level", "T core print", "T worker C-level", "T actor done"])
    assert sorted(err) == sorted(["[W T core C-level]", "[W T fork C-level]", "T fork python"])
    seen = collections.Counter((name, text) for name, _, text in stdio_lines(logdir))
    assert seen == {
        ("MainProcess", "T actor C-level"): 1,
        ("MainProcess", "T actor done"): 1,
        ("EngineCore", "T core print"): 1,
        ("EngineCore", "[W T core C-level]"): 1,
        ("VllmWorker-0", "T worker C-level"): 1,
        ("EngineCore_DP0", "[W T fork C-level]"): 1,
        ("EngineCore_DP0", "T fork python"): 1,
    }
    assert len({pid for _, pid, _ in stdio_lines(logdir)}) == 4


def test_a_child_that_inherits_the_fds_and_writes_megabytes_does_not_deadlock(logdir):
    """A shell child writes 4 MiB into the inherited pipe while the parent waits for it: all of it arrives."""
    result = run_child(
        """
        import subprocess
        load_like_vllm()
        loop = "i=0; while [ $i -lt 65536 ]; do echo 'line of sixty-four bytes from a shell child....'; i=$((i+1)); done"
        subprocess.run(["sh", "-c", loop + " >&2"], check=True)
        print("parent after child", flush=True)
        """,
        logdir,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stderr.count(b"\n") == 65536
    assert result.stdout == b"parent after child\n"
    lines = stdio_lines(logdir)
    assert len(lines) == 65537
    assert {name for name, _, _ in lines} == {"MainProcess"}  # the shell is copied under its parent


def test_a_crash_flushes_everything_including_a_partial_line(logdir):
    """An uncaught exception at exit: the traceback and an unterminated line are in the log and on stderr."""
    result = run_child(
        """
        import os
        load_like_vllm()
        os.write(2, b"half a line")
        raise SystemExit("engine died: out of memory")
        """,
        logdir,
    )
    assert result.returncode == 1
    assert result.stderr == b"half a lineengine died: out of memory\n"
    assert [text for _, _, text in stdio_lines(logdir)] == ["half a lineengine died: out of memory"]


def test_an_uncaught_exception_traceback_is_captured(logdir):
    """A Python traceback written by the interpreter at a crash lands in the log, whole."""
    result = run_child("load_like_vllm()\nraise RuntimeError('boom in EngineCore')", logdir)
    assert result.returncode == 1
    texts = [text for _, _, text in stdio_lines(logdir)]
    assert texts[0] == "Traceback (most recent call last):"
    assert texts[-1] == "RuntimeError: boom in EngineCore"
    assert result.stderr.decode().splitlines() == texts


def test_a_grandchild_holding_the_pipe_never_keeps_a_dying_process_open(logdir):
    """A background child keeps the inherited pipe open for 60 s; the parent still exits at once.

    The tee goes on copying until the grandchild ends too, and the console stays open as long:
    as without capture, where the grandchild would hold the console itself.
    """
    command, environ = child_command(
        """
        import subprocess
        load_like_vllm()
        child = subprocess.Popen(["sleep", "60"], start_new_session=True)
        print(child.pid, flush=True)
        """,
        logdir,
    )
    with subprocess.Popen(command, env=environ, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as parent:
        assert parent.wait(timeout=30) == 0  # a hang detector, not a timing: it would otherwise wait 60 s
        assert parent.stdout is not None
        grandchild = int(parent.stdout.readline())
        os.kill(grandchild, 9)
        assert parent.stdout.read() == b""  # end of file: the grandchild and the tee are gone
    assert [text for _, _, text in stdio_lines(logdir)] == [str(grandchild)]


def test_set_rank_moves_the_stdio_copy_to_the_new_rank(logdir):
    """Raw lines written before logconf.set_rank(3) stay in rank 0's .stdio.log, those after go to rank 3's.

    set_rank returns once the tee has copied what was written before it and moved.
    """
    result = run_child(
        "load_like_vllm()\nprint('before', flush=True)\nimport logconf\nlogconf.set_rank(3)\nprint('after', flush=True)", logdir
    )
    assert result.returncode == 0, result.stderr
    assert [text for _, _, text in stdio_lines(logdir, "0")] == ["before"]
    assert [text for _, _, text in stdio_lines(logdir, "3")] == ["after"]


def test_secrets_are_masked_in_the_copy_but_not_in_the_original(logdir):
    """The .stdio.log is redacted like the rank files; the bytes on the real fd are untouched."""
    result = run_child("load_like_vllm()\nprint('token=abcdef123456', flush=True)", logdir)
    assert result.stdout == b"token=abcdef123456\n"
    assert [text for _, _, text in stdio_lines(logdir)] == ["token=***"]


@pytest.mark.parametrize("capture", ["1", None])
def test_a_python_warning_becomes_one_record_in_the_rank_file(logdir, capture):
    """warnings.warn in a vLLM process: one py.warnings record in vllm_rank_<r>.log, printed once, not raw."""
    result = run_child(
        "load_like_vllm()\nimport warnings\nwarnings.warn('KV cache is tiny', FutureWarning)",
        logdir,
        capture=capture,
        LOGCONF_RANK="2",
    )
    assert result.returncode == 0, result.stderr
    records = [r for r in read_records(logdir / "vllm_rank_2.log") if r["logger"] == "py.warnings"]
    assert len(records) == 1
    assert records[0]["level"] == "WARNING"
    assert "FutureWarning: KV cache is tiny" in records[0]["message"]
    stderr = result.stderr.decode()
    assert stderr.count("KV cache is tiny") == 1  # the console handler's line, not also warnings' own print
    assert " WARNING rank=2 MainProcess[" in stderr


def test_a_fatal_error_traceback_reaches_the_original_stderr(logdir):
    """faulthandler (enabled before capture) writes past the pipe, so a segfault's traceback is not lost."""
    result = run_child("import faulthandler\nfaulthandler.enable()\nload_like_vllm()\nimport ctypes\nctypes.string_at(0)", logdir)
    assert result.returncode == -11
    assert b"Fatal Python error: Segmentation fault" in result.stderr


def test_a_bad_stdio_switch_is_a_config_error_naming_file_key_and_value(logdir, tmp_path):
    """filters.logconf_capture.stdio = "maybe": ConfigError with the file, the key and the value."""
    import logconf

    config = json.loads((REPO / "vllm_logging.json").read_text())
    config["filters"]["logconf_capture"]["stdio"] = "maybe"
    path = tmp_path / "vllm_logging.json"
    path.write_text(json.dumps(config))
    with pytest.raises(logconf.ConfigError) as caught:
        logconf.apply(path)
    assert (caught.value.file, caught.value.key, caught.value.value) == (str(path), "filters.logconf_capture.stdio", "maybe")
    assert "use 1 or 0" in str(caught.value)


def test_after_a_framework_moves_fds_1_and_2_to_its_own_log_both_it_and_the_copy_keep_receiving(logdir, tmp_path):
    """SkyRL's redirect_actor_output_to_file() dup2s its infra log onto fds 1 and 2; capture follows it.

    What was written before goes to the old destination only; what is written after goes to the
    infra log, and both reach the rank's .stdio.log.
    """
    infra = tmp_path / "infra.log"
    result = run_child(
        f"""
        import os, pathlib
        from capture_helpers import c_write
        from logconf import capture
        load_like_vllm()
        c_write(1, "before the move\\n")
        with open({str(infra)!r}, "a", buffering=1) as log:  # what SkyRL's function does
            os.dup2(log.fileno(), sys.stdout.fileno())
            os.dup2(log.fileno(), sys.stderr.fileno())
        capture.follow_redirect()  # what logconf's SkyRL integration runs right after it

        def forwarded(text):  # fds 1 and 2 are two pipes: wait for one before writing the other
            import time
            deadline = time.monotonic() + 30
            while text.encode() not in pathlib.Path({str(infra)!r}).read_bytes() and time.monotonic() < deadline:
                time.sleep(0.01)

        c_write(1, "after the move, out\\n")
        forwarded("after the move, out\\n")
        c_write(2, "after the move, err\\n")
        forwarded("after the move, err\\n")
        print("python after the move", flush=True)
        """,
        logdir,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"before the move\n"
    assert result.stderr == b""
    assert infra.read_bytes() == b"after the move, out\nafter the move, err\npython after the move\n"
    assert sorted(text for _, _, text in stdio_lines(logdir)) == sorted(
        ["before the move", "after the move, out", "after the move, err", "python after the move"]
    )


# -- The tee lives outside the captured process: nothing written before its end is lost, nothing hangs.


def test_a_2_mb_write_made_while_holding_the_gil_completes(logdir):
    """A C extension's single 2 MB write(2) to fd 1, made with the GIL held (ctypes.PyDLL keeps it):
    the reader needs no GIL of this process, so the write completes and every byte is copied."""
    result = run_child(
        """
        import ctypes
        load_like_vllm()
        line = b"x" * 1023 + b"\\n"
        data = line * 2048  # 2 MiB, more than the pipe holds
        libc = ctypes.PyDLL(None)  # PyDLL: the GIL stays held during the call, as in a C extension
        libc.write.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t)
        assert libc.write(1, data, len(data)) == len(data)
        """,
        logdir,
        timeout=60,  # a hang detector: today the process never ends
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (b"x" * 1023 + b"\n") * 2048
    lines = stdio_lines(logdir)
    assert len(lines) == 2048
    assert {text for _, _, text in lines} == {"x" * 1023}


def test_text_written_to_fd_2_right_before_abort_reaches_the_console_and_the_copy(logdir):
    """A C++ terminate message with a long backtrace, then abort(): the process dies of SIGABRT and
    every line it wrote reaches the console and the copy."""
    result = run_child(
        """
        import os
        load_like_vllm()
        frames = b"".join(b"  frame #%d: c10::detail::torchCheckFail + 0x%08x (libc10.so)\\n" % (i, i) for i in range(4000))
        os.write(2, b"terminate called after throwing an instance of 'c10::Error'\\n" + frames + b"  what():  CUDA error\\n")
        os.abort()
        """,
        logdir,
    )
    frames = [f"  frame #{i}: c10::detail::torchCheckFail + 0x{i:08x} (libc10.so)" for i in range(4000)]
    expected = ["terminate called after throwing an instance of 'c10::Error'", *frames, "  what():  CUDA error"]
    assert result.returncode == -6
    assert result.stderr.decode().splitlines() == expected
    assert [text for _, _, text in stdio_lines(logdir)] == expected


def test_lines_written_right_before_os_exit_reach_the_console_and_the_copy(logdir):
    """os._exit() skips every clean-up: the lines already written (a final report) still reach both."""
    result = run_child(
        """
        import os
        load_like_vllm()
        os.write(1, b"".join(b"result row %d\\n" % i for i in range(5000)) + b"last words\\n")
        os._exit(3)
        """,
        logdir,
    )
    expected = [*(f"result row {i}" for i in range(5000)), "last words"]
    assert result.returncode == 3
    assert result.stdout.decode().splitlines() == expected
    assert [text for _, _, text in stdio_lines(logdir)] == expected


def test_a_program_started_by_os_execv_keeps_writing_to_the_console_and_the_copy(logdir):
    """After os.execv fds 1 and 2 are still read: the new program's output is teed and it exits 0."""
    result = run_child(
        """
        import os
        load_like_vllm()
        print("before exec", flush=True)
        os.execv("/bin/sh", ["sh", "-c", "echo from the new program; echo its error >&2; exit 0"])
        """,
        logdir,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"before exec\nfrom the new program\n"
    assert result.stderr == b"its error\n"
    lines = stdio_lines(logdir)
    assert sorted(text for _, _, text in lines) == ["before exec", "from the new program", "its error"]
    assert len({pid for _, pid, _ in lines}) == 1  # exec keeps the pid, and so the prefix


def test_a_python_started_by_os_execv_that_applies_the_config_again_is_copied_once(logdir):
    """exec keeps the pid and the pipes: the new image finds its own tee still reading and adds none."""
    result = run_child(
        """
        import os
        load_like_vllm()
        print("before exec", flush=True)
        code = "from helpers import load_like_vllm; load_like_vllm(); print('after exec', flush=True)"
        os.execv(sys.executable, [sys.executable, "-c", code])
        """,
        logdir,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"before exec\nafter exec\n"
    lines = stdio_lines(logdir)
    assert [text for _, _, text in lines] == ["before exec", "after exec"]
    assert len({pid for _, pid, _ in lines}) == 1


def test_a_subprocess_with_preexec_fn_writes_its_output_without_sigpipe(logdir):
    """subprocess.run(..., preexec_fn=...) forks in Python: the child's fds 1 and 2 still have a reader."""
    result = run_child(
        """
        import os, subprocess
        load_like_vllm()
        done = subprocess.run(["sh", "-c", "echo child out; echo child err >&2"], preexec_fn=os.getpid)
        print("child rc", done.returncode, flush=True)
        """,
        logdir,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"child out\nchild rc 0\n"
    assert result.stderr == b"child err\n"
    assert sorted(text for _, _, text in stdio_lines(logdir)) == ["child err", "child out", "child rc 0"]


def test_the_tee_is_no_child_of_the_captured_process_and_outlives_a_ctrl_c_to_its_process_group(logdir):
    """Ray and vLLM reap or kill their children: the tee is none of them (its starter is gone at
    once), and SIGINT to the writer's process group (a Ctrl-C) kills the writer but not the tee,
    which copies every line."""
    command, environ = child_command(
        """
        import os, signal, time
        load_like_vllm()

        def children():
            return sum((open(f"/proc/self/task/{tid}/children").read().split() for tid in os.listdir("/proc/self/task")), [])

        deadline = time.monotonic() + 30  # the tee's starter exits at once and is reaped by a thread
        while children() and time.monotonic() < deadline:
            time.sleep(0.01)
        print("children:", children(), flush=True)
        os.write(1, b"".join(b"line %d before the interrupt\\n" % i for i in range(20000)))
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.killpg(0, signal.SIGINT)
        """,
        logdir,
    )
    result = subprocess.run(command, env=environ, cwd=REPO, capture_output=True, timeout=120, start_new_session=True)
    expected = ["children: []", *(f"line {i} before the interrupt" for i in range(20000))]
    assert result.returncode == -2, result.stderr
    assert result.stdout.decode().splitlines() == expected
    assert [text for _, _, text in stdio_lines(logdir)] == expected


def test_an_unranked_actors_lines_are_held_by_the_tee_and_written_to_the_rank_it_learns(logdir):
    """An unranked Ray actor: raw lines wait in the tee and go to the rank that set_rank gives,
    with every line written before set_rank returns, none in rank 0's copy."""
    result = run_child(
        """
        from capture_helpers import pose_as_unranked_ray_actor
        pose_as_unranked_ray_actor()
        load_like_vllm()
        print("while unranked", flush=True)
        import logconf
        logconf.set_rank(5)
        print("ranked", flush=True)
        """,
        logdir,
        LOGCONF_RANK_HOLD_S="60",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"while unranked\nranked\n"
    assert [text for _, _, text in stdio_lines(logdir, "5")] == ["while unranked", "ranked"]
    assert not (logdir / "vllm_rank_0.stdio.log").exists()


def test_an_actor_that_dies_unranked_still_has_its_held_lines_written(logdir):
    """The actor is killed (os._exit) before it learns a rank: the tee writes what it held to rank 0's copy."""
    result = run_child(
        """
        import os
        from capture_helpers import pose_as_unranked_ray_actor
        pose_as_unranked_ray_actor()
        load_like_vllm()
        os.write(2, b"dying unranked\\n")
        os._exit(1)
        """,
        logdir,
        LOGCONF_RANK_HOLD_S="60",
    )
    assert result.returncode == 1
    assert result.stderr == b"dying unranked\n"
    assert [text for _, _, text in stdio_lines(logdir)] == ["dying unranked"]


def test_a_per_host_copy_is_named_with_the_host_once(logdir):
    """LOGCONF_PER_HOST=1: the tee writes the path the captured process resolved, ``@host`` and all."""
    code = "load_like_vllm()\nprint('on node a', flush=True)"
    result = run_child(code, logdir, LOGCONF_PER_HOST="1", LOGCONF_HOSTNAME="node-a")
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in logdir.glob("*.stdio.log")) == ["vllm_rank_0@node-a.stdio.log"]
    assert (logdir / "vllm_rank_0@node-a.stdio.log").read_text().endswith("] on node a\n")


MEGABYTE_AT_EXIT = """
    load_like_vllm()
    sys.stdout.write("x" * 999_999 + "\\n")  # left in Python's buffer: flushed at exit
"""


def test_a_process_waits_at_exit_for_a_late_tee_to_pass_its_output_on(logdir, tmp_path):
    """The tee starts late (its interpreter is a script that sleeps 0.3 s first, as on a loaded
    machine): the process, which writes 1 MB and exits normally, waits for it, so that a caller
    that waits for the process and then reads its stdout, a file, finds every byte."""
    slow = tmp_path / "slow-python"
    slow.write_text(f"#!/bin/sh\nsleep 0.3\nexec {sys.executable} \"$@\"\n")
    slow.chmod(0o755)
    command, environ = child_command(f"sys.executable = {str(slow)!r}\n" + textwrap.dedent(MEGABYTE_AT_EXIT), logdir)
    with open(tmp_path / "out", "wb") as out, open(tmp_path / "err", "wb") as err:  # no pipe: nothing waits for its end
        done = subprocess.run(command, env=environ, cwd=REPO, stdout=out, stderr=err, timeout=120)
    assert done.returncode == 0, (tmp_path / "err").read_text()
    assert (tmp_path / "out").stat().st_size == 1_000_000


@pytest.mark.stress
def test_a_caller_that_waits_for_the_process_then_reads_its_redirected_stdout_finds_every_byte(logdir, tmp_path):
    """1 MB written right before a normal exit, stdout a file (a shell's `>`): the caller that waits
    for the process and then reads the file finds all of it, 20 runs out of 20."""
    command, environ = child_command(MEGABYTE_AT_EXIT, logdir)
    sizes = []
    for run in range(20):
        with open(tmp_path / f"out-{run}", "wb") as out, open(tmp_path / f"err-{run}", "wb") as err:
            done = subprocess.run(command, env=environ, cwd=REPO, stdout=out, stderr=err, timeout=120)
        sizes.append((done.returncode, (tmp_path / f"out-{run}").stat().st_size))
    assert sizes == [(0, 1_000_000)] * 20


def test_the_tee_writes_what_it_holds_once_it_holds_16_mib(logdir):
    """An unranked actor's raw lines wait in the tee for its rank, up to 16 MiB: then they are
    written to the rank known (0), while the process still runs and has no rank."""
    result = run_child(
        """
        import os
        from capture_helpers import pose_as_unranked_ray_actor
        from logconf import capture
        pose_as_unranked_ray_actor()
        load_like_vllm()
        copy = os.path.join(os.environ["LOGCONF_DIR"], "vllm_rank_0.stdio.log")
        line = b"y" * (1023 - len(b"MainProcess[%d] " % os.getpid())) + b"\\n"  # 1 KiB in the copy
        os.write(1, line * ((16 << 10) - 1))  # a line short of 16 MiB: held
        synced = capture.installed()._send(b"sync", reply=b"synced")  # the tee has read and forwarded it all
        held = os.path.exists(copy)
        os.write(1, line)  # the cap
        synced += capture.installed()._send(b"sync", reply=b"synced")
        print(synced.decode(), held, os.path.exists(copy), file=sys.stderr)
        """,
        logdir,
        LOGCONF_RANK_HOLD_S="600",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr == b"syncedsynced False True\n"
    lines = [text for _, _, text in stdio_lines(logdir)]
    assert lines[-1] == "syncedsynced False True"  # written after the cap: no longer held
    assert len(lines) - 1 == 16 << 10 and set(lines[:-1]) == {lines[0]}
    assert len(result.stdout) == (16 << 10) * (len(lines[0]) + 1)


def test_a_spawned_child_leaves_a_stdout_file_opened_without_o_append_to_its_ancestors_tee(logdir, tmp_path):
    """The job's stdout is a file opened by a shell's `>` (no O_APPEND): a spawned child that applies
    the JSON does not reopen it (its writes at the end would be overwritten by the ancestor's, which
    writes at its own offset); its lines go through the ancestor's tee, in order, under the ancestor's name."""
    command, environ = child_command(
        """
        import multiprocessing, os
        from capture_helpers import worker
        if __name__ == "__main__":
            load_like_vllm()
            os.write(1, b"actor before\\n")
            child = multiprocessing.get_context("spawn").Process(target=worker, args=("T",), name="VllmWorker-0")
            child.start()
            child.join()
            os.write(1, b"actor after\\n")
        """,
        logdir,
    )
    with open(tmp_path / "out", "wb") as out:  # O_WRONLY | O_CREAT | O_TRUNC, as `python ... > out`
        done = subprocess.run(command, env=environ, cwd=REPO, stdout=out, stderr=subprocess.PIPE, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out").read_bytes() == b"actor before\nT worker C-level\nactor after\n"
    lines = stdio_lines(logdir)
    assert [(name, text) for name, _, text in lines] == [
        ("MainProcess", "actor before"),
        ("MainProcess", "T worker C-level"),
        ("MainProcess", "actor after"),
    ]
    assert len({pid for _, pid, _ in lines}) == 1
