"""`logconf errors`: the first error of a run with what led to it, each distinct error once, who went quiet."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from failure_helpers import child_env, logconf_cli

from logconf.failures import mask, render_report, scan
from logconf.formatters import make_formatter
from logconf.handlers import RankFileHandler

HELPERS = os.path.dirname(__file__)

# An engine actor that starts its EngineCore (a spawn child, as vLLM does in a Ray actor); EngineCore
# fails during start-up and logs it; the actor then raises what vLLM raises there, uncaught.
ENGINE = r"""
import logging, multiprocessing, os, sys, time
sys.path.insert(0, os.environ["HELPERS"])
from helpers import load_like_vllm

def engine_core(blocks, address):
    load_like_vllm()
    log = logging.getLogger("vllm.v1.engine.core")
    log.info("Initializing a V1 LLM engine with config: model=tiny")
    print("Loading safetensors checkpoint shards", flush=True)  # as vLLM loads a model, its stdio tee is up
    copy = os.path.join(os.environ["LOGCONF_DIR"], f"vllm_rank_{os.environ['LOGCONF_RANK']}.stdio.log")
    while "Loading safetensors" not in (open(copy).read() if os.path.exists(copy) else ""):
        time.sleep(0.02)
    log.info("allocating the KV cache at %s", address)
    try:
        raise ValueError(f"8 KV cache blocks are needed to serve one request of 128 tokens, {blocks} fit")
    except ValueError:
        log.exception("EngineCore failed to start.")
        raise  # multiprocessing prints it again ("Process EngineCore_DP0:"), raw: the same error, not another

if __name__ == "__main__":
    load_like_vllm()
    logging.getLogger("vllm.v1.engine.core_client").info("starting EngineCore")
    core = multiprocessing.get_context("spawn").Process(target=engine_core, args=sys.argv[1:3], name="EngineCore_DP0")
    core.start()
    core.join()
    print("core pid", core.pid, flush=True)
    raise RuntimeError("Engine core initialization failed. See root cause above. Failed core proc(s): {}")
"""


def _engines(tmp_path: Path, logdir: Path) -> list[tuple[int, int]]:
    """Run engine rank 0 then rank 1 (other numbers, another address); return (actor pid, EngineCore pid) of each."""
    script = tmp_path / "engine.py"
    script.write_text(ENGINE)
    pids = []
    for rank, blocks, address in (("0", "1", "0x7f3a00001000"), ("1", "2", "0x7f3b00c02000")):
        env = child_env(logdir, tmp_path / "registry", LOGCONF_RANK=rank, LOGCONF_CAPTURE_STDIO="1", HELPERS=HELPERS)
        actor = subprocess.Popen(
            [sys.executable, str(script), blocks, address], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, _ = actor.communicate(timeout=120)
        assert actor.returncode == 1
        pids.append((actor.pid, int(out.decode().split("core pid ")[1].split()[0])))
    return pids


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory) -> tuple[Path, list[tuple[int, int]]]:
    tmp_path = tmp_path_factory.mktemp("failed-run")
    logdir = tmp_path / "logs"
    return logdir, _engines(tmp_path, logdir)


def test_errors_shows_enginecores_own_traceback_first_with_what_it_logged_before(failed_run):
    logdir, pids = failed_run
    done = logconf_cli("errors", str(logdir))
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    core = pids[0][1]
    assert lines[0].startswith("First error (the first ERROR or CRITICAL record; 4 errors in all, 2 distinct): 20")
    assert lines[0].endswith(f"vllm_rank_0.log line 4, rank 0, EngineCore_DP0[{core}]")
    assert lines[1] == f"  what EngineCore_DP0[{core}] wrote just before it:"
    engine_core = f"EngineCore_DP0[{core}] vllm.v1.engine.core"
    assert lines[2].endswith(f"vllm_rank_0.log INFO rank=0 {engine_core}: Initializing a V1 LLM engine with config: model=tiny")
    assert lines[3].endswith(f"EngineCore_DP0[{core}] vllm.v1.engine.core: allocating the KV cache at 0x7f3a00001000")
    assert lines[4].endswith(
        f"vllm_rank_0.log ERROR rank=0 EngineCore_DP0[{core}] vllm.v1.engine.core: EngineCore failed to start."
    )
    assert lines[5] == "  Traceback (most recent call last):"
    end = lines.index("  ValueError: 8 KV cache blocks are needed to serve one request of 128 tokens, 1 fit")
    assert all(line.startswith("    ") for line in lines[6:end])
    assert lines[end + 1 : end + 3] == ["", "Distinct errors (numbers, addresses and ids masked), first seen first:"]
    cores = f"EngineCore_DP0[{pids[0][1]}], EngineCore_DP0[{pids[1][1]}]"
    actors = ", ".join(sorted(f"MainProcess[{pids[i][0]}]" for i in (0, 1)))
    assert lines[end + 3] == (
        "  1. 2x ERROR vllm.v1.engine.core: EngineCore failed to start. -> "
        "ValueError: 8 KV cache blocks are needed to serve one request of 128 tokens, 1 fit"
    )
    assert lines[end + 4].startswith(f"     ranks 0, 1; {cores}; first 20")
    assert lines[end + 5] == (
        "  2. 2x in a stdio copy: RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}"
    )
    assert lines[end + 6].startswith(f"     ranks 0, 1; {actors}; first ~20")
    copy = (logdir / "vllm_rank_0.stdio.log").read_text().splitlines()
    assert lines[end + 6].endswith(
        f"vllm_rank_0.stdio.log:{copy.index(f'MainProcess[{pids[0][0]}] Traceback (most recent call last):') + 1}"
    )


def test_errors_json_dates_the_raw_traceback_after_the_console_lines_before_it(failed_run):
    logdir, pids = failed_run
    done = logconf_cli("errors", str(logdir), "--json")
    document = json.loads(done.stdout)
    assert (done.returncode, document["schema"], document["errors"]) == (1, "logconf.errors/1", 4)
    first = document["first"]
    assert (first["process_name"], first["pid"], first["rank"], first["logger"]) == (
        "EngineCore_DP0",
        pids[0][1],
        "0",
        "vllm.v1.engine.core",
    )
    assert first["last_line"] == "ValueError: 8 KV cache blocks are needed to serve one request of 128 tokens, 1 fit"
    raw = document["distinct"][1]["first"]
    assert (raw["file"], raw["pid"], raw["time_estimated"], raw["logger"]) == ("vllm_rank_0.stdio.log", pids[0][0], True, None)
    assert raw["lines"][0] == "Traceback (most recent call last):" and raw["lines"][-1].startswith("RuntimeError: Engine core")
    assert raw["time"] >= first["time"]  # after EngineCore's console line, which the copy holds before it
    assert [p["process_name"] for p in document["processes"]] == [
        "MainProcess",
        "EngineCore_DP0",
        "MainProcess",
        "EngineCore_DP0",
    ]
    assert all(p["quiet_s"] is None for p in document["processes"])


def test_errors_reads_a_gathered_directory_and_names_each_node(failed_run, tmp_path):
    logdir, pids = failed_run
    shutil.copytree(logdir, tmp_path / "dest" / "node-a", ignore=shutil.ignore_patterns("stacks"))
    report = scan(str(tmp_path / "dest"))
    assert report.first is not None
    assert (report.first.file, report.first.who()) == ("node-a/vllm_rank_0.log", f"EngineCore_DP0[{pids[0][1]}]@node-a")
    assert {d.first.file for d in report.distinct.values()} == {"node-a/vllm_rank_0.log", "node-a/vllm_rank_0.stdio.log"}


def test_a_run_without_errors_exits_0_and_since_leaves_older_errors_out(failed_run, tmp_path, logdir):
    logging.getLogger("skyrl.train").info("all fine")
    import logconf

    logconf.apply()
    logging.getLogger("skyrl.train").info("all fine")
    done = logconf_cli("errors", str(logdir))
    assert (done.returncode, done.stdout.splitlines()[0]) == (
        0,
        "No ERROR or CRITICAL record, and no raw traceback in the .stdio.log copies.",
    )
    later = scan(str(failed_run[0]), since="2999-01-01T00:00:00.000Z")
    assert (later.errors, later.first) == (0, None)


def test_numbers_addresses_and_ids_are_masked_for_the_comparison():
    assert mask("rank 12 at 0x7f3a00c0 id 5f2c1e3b-0d1a-4c3e-9f00-1234567890ab task 0a1b2c3d4e5f6a7b8c9d") == (
        "rank <n> at <addr> id <id> task <id>"
    )
    assert mask("deadbeefcafe") == "deadbeefcafe"  # a word of hex letters only is no id


def _write(handler: RankFileHandler, name: str, pid: int, created: float, level: int = logging.INFO) -> None:
    record = logging.makeLogRecord(
        {"name": "skyrl.train", "levelno": level, "levelname": logging.getLevelName(level), "msg": "step", "created": created}
    )
    record.process, record.processName, record.msecs = pid, name, 0.0
    handler.handle(record)


def test_a_process_that_stopped_well_before_the_others_of_its_kind_went_quiet(logdir):
    handler = RankFileHandler(str(logdir), "skyrl_rank_0.log")
    handler.setFormatter(make_formatter("text", rank="0"))
    t0 = 1_795_683_600.0
    for name, pid, last in (
        ("TrainerWorker", 10, 10),  # its peer goes on to 200: quiet
        ("TrainerWorker", 11, 200),
        ("VllmWorker-0", 12, 5),  # workers log at start-up only, both: not quiet
        ("VllmWorker-1", 13, 6),
        ("MainProcess", 14, 50),  # alone of its kind, 150 s before the end: quiet
        ("Watcher", 15, 150),  # alone, 50 s before the end: not quiet
    ):
        for t in (0, last):
            _write(handler, name, pid, t0 + t)
    handler.close()
    report = scan(str(logdir))
    quiet = {p.pid: p.quiet_s for p in report.processes.values()}
    assert quiet == {10: 190.0, 11: None, 12: None, 13: None, 14: 150.0, 15: None}
    text = render_report(report)
    assert "  2026-11-26T09:00:10.000Z rank 0 TrainerWorker[10] (skyrl_rank_0.log)  went quiet (190 s before the end)" in text
    assert report.errors == 0


FATAL = r"""
import faulthandler, os, sys
sys.path.insert(0, os.environ["HELPERS"])
from helpers import load_like_vllm
load_like_vllm()
import logging, traceback
try:
    raise KeyError("cache")
except KeyError:
    logging.getLogger("vllm.worker").warning("retrying after a miss", exc_info=True)
logging.getLogger("vllm.worker").warning("slow step")
try:
    1 / 0
except ZeroDivisionError:
    lines = traceback.format_exc().splitlines()
    print(lines[0], file=sys.stderr, flush=True)  # raw, right after a console line that has no traceback of its own
    logging.getLogger("vllm.worker").error("another thread's record")  # its console line lands inside the traceback
    print("\n".join(lines[1:]), file=sys.stderr, flush=True)
sys.stdout.flush()
os.write(2, b"terminate called after throwing an instance of 'c10::Error'\n  what():  CUDA error: out of memory at 0x7f00\n")
faulthandler.enable()
os.abort()
"""


def test_a_cpp_terminate_and_a_fatal_python_error_in_the_stdio_copy_count_but_a_records_own_traceback_does_not(tmp_path, logdir):
    env = child_env(logdir, tmp_path / "registry", LOGCONF_CAPTURE_STDIO="1", HELPERS=HELPERS)
    done = subprocess.run([sys.executable, "-c", FATAL], env=env, capture_output=True, timeout=60)
    assert done.returncode < 0  # aborted
    report = scan(str(logdir))
    found = sorted((d.first.lines[0], d.first.last_line) for d in report.distinct.values() if d.first.estimated)
    assert found == [
        ("Fatal Python error: Aborted", 'File "<string>", line 22 in <module>'),
        ("Traceback (most recent call last):", "ZeroDivisionError: division by zero"),
        ("terminate called after throwing an instance of 'c10::Error'", "what():  CUDA error: out of memory at 0x7f00"),
    ]
    assert report.errors == 4  # and the record; the WARNING's own traceback, copied from the console, is not a fifth
    raw = next(d.first for d in report.distinct.values() if d.first.last_line.startswith("ZeroDivisionError"))
    assert [line for line in raw.lines if not line.startswith("    ")] == [  # 3.13 adds -c code's source line and carets
        "Traceback (most recent call last):",
        '  File "<string>", line 13, in <module>',
        "ZeroDivisionError: division by zero",
    ]


def test_a_level_without_a_name_counts_by_its_number(logdir):
    """``Level 45`` (a number stdlib has no name for) is an error; ``Level 35`` is not."""
    handler = RankFileHandler(str(logdir), "skyrl_rank_0.log")
    handler.setFormatter(make_formatter("text", rank="0"))
    for pid, level in ((20, 35), (21, 45)):
        _write(handler, "TrainerWorker", pid, 1_795_683_600.0 + pid, level)
    handler.close()
    report = scan(str(logdir))
    assert report.first is not None
    assert (report.errors, report.first.level, report.first.pid) == (1, "Level 45", 21)


RAW_THEN_WARNING = r"""
import logging, os, sys, traceback
sys.path.insert(0, os.environ["HELPERS"])
from helpers import load_like_vllm
load_like_vllm()
log = logging.getLogger("vllm.engine")
log.info("up")
try:
    raise OSError("shared memory segment gone")
except OSError:
    traceback.print_exc()  # raw: no time of its own
sys.stderr.flush()
print("printed", flush=True)
sys.stdin.readline()
log.warning("after")  # its console copy follows the traceback: the latest the traceback can be
"""


@pytest.mark.parametrize("error_before_warning", [True, False], ids=["record-within-the-window", "record-after-it"])
def test_a_raw_error_is_first_only_when_it_surely_came_before_the_first_record(tmp_path, logdir, error_before_warning):
    """A raw traceback lies between its process's record before it and its next console line: a record inside
    that window may have come first, so it wins; a record after the window surely came later."""
    env = child_env(logdir, tmp_path / "registry", LOGCONF_CAPTURE_STDIO="1", HELPERS=HELPERS)
    engine = subprocess.Popen(
        [sys.executable, "-c", RAW_THEN_WARNING], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert engine.stdout is not None and engine.stdin is not None
    assert engine.stdout.readline() == "printed\n"
    other = RankFileHandler(str(logdir), "vllm_rank_1.log")
    other.setFormatter(make_formatter("text", rank="1"))

    def error() -> None:
        time.sleep(0.01)
        other.handle(
            logging.makeLogRecord({"name": "vllm.core", "levelno": logging.ERROR, "levelname": "ERROR", "msg": "worker lost"})
        )
        time.sleep(0.01)

    if error_before_warning:
        error()
    engine.stdin.write("\n")
    engine.stdin.close()
    assert engine.wait(60) == 0
    engine.stdout.close()
    if not error_before_warning:
        error()
    other.close()
    report = scan(str(logdir))
    assert report.first is not None and report.first_raw is not None and report.first_record is not None
    raw = report.first_raw
    assert raw.time < raw.until and raw.last_line == "OSError: shared memory segment gone"
    assert report.first is (report.first_record if error_before_warning else raw)
