"""Rotation and retention of rank files that several processes share (logconf.rotation).

Writers are real processes that apply the shipped JSON as vLLM does, with rotation set by
``LOGCONF_ROTATE_*``; what they leave is read back with gzip and plain reads (tests/rotation_writers.py),
apart from logconf's own readers, and then with the tools.
"""

from __future__ import annotations

import gzip
import logging
import logging.config
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import load_like_vllm
from rotation_writers import ROTATED, Tally, family, padding, read_text, set_files, settle, writer

from logconf import ConfigError, retention, rotation
from logconf.logfiles import iter_entries, rank_files, rank_sets, split_rotated
from logconf.summary import summarise

REPO = Path(__file__).resolve().parents[1]
SMALL = {"LOGCONF_ROTATE_BYTES": "8K"}


def _run(target, *args, name: str = "EngineActor", method: str = "spawn") -> multiprocessing.Process:
    process = multiprocessing.get_context(method).Process(target=target, args=args, name=name)
    process.start()
    return process


def _join(*processes: multiprocessing.Process, timeout: float = 300) -> None:
    for process in processes:
        process.join(timeout)
        assert process.exitcode == 0, f"{process.name} exited {process.exitcode}"


def _tidy(directory: Path, live: str = "vllm_rank_0.log", **settings) -> None:
    """Run the upkeep the next rotation would run (the writers have exited: their threads are gone)."""
    assert retention.maintain(str(directory), live, rotation.Policy(16 << 10, **settings))


# -- one rotation among all the processes of a rank ---------------------------------------------


def test_three_processes_of_a_rank_rotate_together_and_every_record_is_in_the_set_once_in_order(logdir):
    """Actor, EngineCore and worker append to one file that rotates at 8 KiB: each rotation is one rename
    (names keep their order), every record is in exactly one file, whole, and each process's records are in
    its order across the files."""
    processes = [_run(writer, "0", tag, 600, SMALL, 50, name=name) for tag, name in
                 (("a", "EngineActor"), ("c", "EngineCore_DP0"), ("w", "VllmWorker-0"))]
    _join(*processes)
    files = set_files(logdir, "vllm_rank_0.log")
    names = [f.name for f in files]
    # Between its checks each writer counts only its own bytes: with three writing evenly a file may reach up
    # to three times the size before one of them rotates it, so how many files there are depends on the timing.
    assert len(files) >= 10, names
    tally = Tally().read(logdir, "vllm_rank_0.log", "0")
    assert tally.bad == []
    expected = {(tag, i) for tag in "acw" for i in range(600)}
    assert set(tally.seen) == expected, sorted(set(tally.seen) ^ expected)[:20]
    assert set(tally.seen.values()) == {1}, [k for k, v in tally.seen.items() if v != 1][:20]
    assert all(order == sorted(order) for order in tally.order.values()), {t: o for t, o in tally.order.items() if o != sorted(o)}
    lock = (logdir / ".vllm_rank_0.log.lock").read_text().split()
    assert int(lock[1]) == len(files) - 1, (lock, names)  # rotations, one rename each
    for path in files[:-1]:  # each rotated file reached the size before it was renamed
        assert len(read_text(path).encode()) >= 8 << 10, path.name


def test_a_writer_that_saw_the_size_too_late_leaves_the_fresh_file_another_made_alone(tmp_path):
    """Two writers cross the size; the first rotates. The second, finding a new small file under the lock, renames nothing."""
    live = tmp_path / "vllm_rank_0.log"
    live.write_bytes(b"x" * 100)
    info = live.stat()
    rotator = rotation.Rotator(rotation.Policy(max_bytes=1000, compress=False), retention.maintain)
    assert rotator.rotate(str(live), (info.st_dev, info.st_ino)) is False
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["vllm_rank_0.log"]
    assert live.read_bytes() == b"x" * 100


def test_a_rotated_file_is_not_compressed_while_a_writer_still_has_it_open(tmp_path):
    """Every writer holds a shared flock on the file it has open; compression needs it exclusive, without waiting."""
    config = {
        "version": 1,
        "handlers": {"file": {"()": "logconf.handlers.RankFileHandler", "directory": str(tmp_path), "filename": "vllm_rank_0.log",
                              "reopen_check_s": 60, "rotate_bytes": "1M"}},
        "loggers": {"app": {"handlers": ["file"], "level": "INFO"}},
    }
    logging.config.dictConfig(config)
    logging.getLogger("app").info("before")
    rotated = tmp_path / "vllm_rank_0.log.20261126T090000.000Z"
    os.rename(tmp_path / "vllm_rank_0.log", rotated)  # as a rotation in another process does
    logging.getLogger("app").info("late")  # this writer has not checked yet: its record lands in the rotated file
    assert retention.compress(str(rotated)) == "held"
    assert rotated.exists() and not Path(f"{rotated}.gz").exists()
    logging.getLogger("app").handlers[0].close()
    assert retention.compress(str(rotated)) == "done"
    assert gzip.decompress(Path(f"{rotated}.gz").read_bytes()) == b"before\nlate\n"


def test_an_idle_process_lets_go_of_the_rotated_file_within_its_check_so_it_is_compressed(logdir, monkeypatch):
    """A process that logs nothing keeps the file it last wrote open; its rotation thread runs the handler's
    check (reopen_check_s, 1 s), which lets go of the renamed file, so the rotating process compresses it;
    the idle process's next record goes to the new file."""
    monkeypatch.setenv("LOGCONF_ROTATE_BYTES", "8K")
    load_like_vllm()
    idle = logging.getLogger("vllm.rot")
    idle.info("idle before")
    _join(_run(writer, "0", "busy", 400, {"LOGCONF_ROTATE_BYTES": "8K"}))  # it waits for its compressions
    first = set_files(logdir, "vllm_rank_0.log")[0]
    assert first.name.endswith(".gz"), "the file the idle process held was not compressed while the writer ran"
    assert sum(line.endswith(": idle before\n") for line in gzip.open(first, "rt")) == 1
    idle.info("idle after")
    assert (logdir / "vllm_rank_0.log").read_text().endswith("vllm.rot: idle after\n")


def test_where_flock_fails_a_rotated_file_is_compressed_once_unchanged_for_a_minute(tmp_path, monkeypatch):
    """Some network filesystems refuse flock (ENOLCK): a rotated file then settles by age alone."""
    import errno
    import fcntl

    rotated = tmp_path / "vllm_rank_0.log.20261126T090000.000Z"
    rotated.write_text("2026-11-26T09:00:00.000Z INFO rank=0 EngineActor[7] vllm.rot: old\n")

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    assert retention.compress(str(rotated)) == "held"  # written a moment ago
    old = time.time() - retention.UNLOCKED_QUIET_S - 1
    os.utime(rotated, (old, old))
    assert retention.compress(str(rotated)) == "done"
    assert gzip.decompress(Path(f"{rotated}.gz").read_bytes()).endswith(b"vllm.rot: old\n")


def test_a_compressor_killed_mid_way_leaves_the_plain_file_read_once_and_the_next_upkeep_finishes(logdir):
    """SIGKILL while X.gz.tmp is being written: X stays whole (the tools read it, and never the .tmp), and the
    next upkeep (any process's next rotation) compresses it again and removes the stale .tmp."""
    logdir.mkdir()
    rotated = logdir / "vllm_rank_0.log.20261126T090000.000Z"
    head = "2026-11-26T09:00:00.000Z INFO rank=0 EngineActor[7] vllm.rot: k"
    lines = [f"{head} {i} {os.urandom(40).hex()}\n" for i in range(20_000)]
    rotated.write_text("".join(lines))
    (logdir / "vllm_rank_0.log").write_text("")
    temporary = Path(f"{rotated}.gz.tmp")
    code = f"from logconf import retention; retention.compress({str(rotated)!r})"
    child = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    deadline = time.monotonic() + 30
    while not (temporary.exists() and temporary.stat().st_size > 0) and child.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    child.send_signal(signal.SIGKILL)
    child.wait()
    if child.returncode == -signal.SIGKILL:  # (on a machine fast enough to finish first, it is the .gz alone)
        assert rotated.exists() and temporary.exists() and not Path(f"{rotated}.gz").exists()
    files = rank_files(str(logdir))
    assert sum(1 for f in files for _ in iter_entries(f)) == len(lines)
    _tidy(logdir)
    assert sorted(p.name for p in logdir.iterdir()) == ["vllm_rank_0.log", f"{rotated.name}.gz"]
    assert gzip.decompress(Path(f"{rotated}.gz").read_bytes()).decode() == "".join(lines)


def test_a_plain_file_and_its_compressed_twin_are_read_once_and_the_next_upkeep_keeps_the_compressed_one(logdir):
    logdir.mkdir()
    line = "2026-11-26T09:00:00.000Z INFO rank=0 EngineActor[7] vllm.rot: twin 0 x\n"
    plain = logdir / "vllm_rank_0.log.20261126T090000.000Z"
    plain.write_text(line)
    Path(f"{plain}.gz").write_bytes(gzip.compress(line.encode()))
    Path(f"{plain}.gz.tmp").write_bytes(b"\x1f\x8b half")  # a compressor that died
    (logdir / "vllm_rank_0.log").write_text("")
    assert rank_files(str(logdir)) == [str(plain), str(logdir / "vllm_rank_0.log")]
    assert [row.records for row in summarise(str(logdir))] == [1]
    _tidy(logdir)
    assert sorted(p.name for p in logdir.iterdir()) == ["vllm_rank_0.log", f"{plain.name}.gz"]


def test_the_stdio_copy_rotates_as_its_rank_file_does(logdir):
    """LOGCONF_CAPTURE_STDIO=1: the tee process writes the .stdio.log copy, and rotates it by the same settings;
    every line printed is in exactly one of its files, in order."""
    # 600 KB: the tee copies at most 64 KiB a block, and rotates between blocks, so at least 9 times at 16K
    code = "from helpers import load_like_vllm\nload_like_vllm()\nfor i in range(12_000):\n    print(f'line {i} ' + 'y' * 40)\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "VLLM_", "RANK"))}
    env.update(LOGCONF_DIR=str(logdir), LOGCONF_CAPTURE_STDIO="1", LOGCONF_ROTATE_BYTES="16K",
               PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'tests'}")
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().splitlines() == [f"line {i} " + "y" * 40 for i in range(12_000)]
    files = set_files(logdir, "vllm_rank_0.stdio.log")
    assert len(files) >= 6, [f.name for f in files]
    texts = [line.split("] ", 1)[1] for path in files for line in read_text(path).splitlines()]
    assert texts == [f"line {i} " + "y" * 40 for i in range(12_000)]


def test_logrotate_copytruncate_and_rename_beside_rotation_lose_nothing(logdir, monkeypatch):
    """With rotation on, logrotate may still truncate the file in place (copytruncate) or rename it (create):
    every record is in one file of the set, once, whole; logrotate's files are left to logrotate."""
    monkeypatch.setenv("LOGCONF_ROTATE_BYTES", "4K")
    load_like_vllm()
    log = logging.getLogger("vllm.rot")
    live = logdir / "vllm_rank_0.log"
    for i in range(300):
        log.info("lr %d %s", i, padding(i))
        if i == 100:  # copytruncate: copy, then truncate in place
            (logdir / "vllm_rank_0.log.1").write_bytes(live.read_bytes())
            os.truncate(live, 0)
        if i == 200:  # rename, then create
            os.rename(live, logdir / "vllm_rank_0.log.2")
            live.touch()
            time.sleep(1.1)  # the handler's next check (reopen_check_s) moves it to the new file
    settle()
    entries = [e for path in rank_files(str(logdir)) for e in iter_entries(path)]
    messages = [e.record["message"] for e in entries if e.kind == "record"]
    assert sorted(messages, key=lambda m: int(m.split()[1])) == [f"lr {i} {padding(i)}" for i in range(300)]
    assert len(messages) == 300 and all(e.kind == "record" for e in entries)
    assert (logdir / "vllm_rank_0.log.1").exists() and (logdir / "vllm_rank_0.log.2").exists()  # not compressed, kept


# -- retention ----------------------------------------------------------------------------------


def test_keep_removes_the_oldest_rotated_files_and_says_which_with_their_exact_sizes(logdir, monkeypatch):
    """rotate_keep 3: after the upkeep three rotated files are left; the record names each removed file with
    its bytes of log, and the total so far; summary shows the history missing."""
    logdir.mkdir()
    sizes = {}
    for n in range(6):
        name = f"vllm_rank_0.log.20261126T09000{n}.000Z"
        head = f"2026-11-26T09:00:0{n}.000Z INFO rank=0 EngineActor[7] vllm.rot: k"
        body = "".join(f"{head} {i} {padding(i)}\n" for i in range(40 * (n + 1)))
        (logdir / name).write_text(body)
        sizes[name] = len(body)
    (logdir / "vllm_rank_0.log").write_text("")
    keep = rotation.Policy(16 << 10, keep=3, compress=False)
    assert retention.maintain(str(logdir), "vllm_rank_0.log", keep)
    removed = sorted(sizes)[:3]
    assert [p.name for p in set_files(logdir, "vllm_rank_0.log")] == [*sorted(sizes)[3:], "vllm_rank_0.log"]
    (record,) = (logdir / "vllm_rank_0.log").read_text().splitlines()
    total = sum(sizes[n] for n in removed)
    named = ", ".join(f"{n} ({sizes[n]} bytes of log)" for n in removed)
    assert record.endswith(
        f" WARNING rank=0 MainProcess[{os.getpid()}] logconf.rotation: removed 3 rotated files ({total} bytes of log, "
        f"{total} bytes on disk) to keep 3 rotated files (LOGCONF_ROTATE_KEEP): {named}; 3 in all so far "
        f"({total} bytes of log, {total} bytes on disk)"
    )
    (row,) = summarise(str(logdir))
    assert (row.removed_files, row.removed_bytes, row.removed_disk_bytes, row.problems) == (3, total, total, 0)
    assert retention.maintain(str(logdir), "vllm_rank_0.log", rotation.Policy(16 << 10, keep=2, compress=False))
    (row,) = summarise(str(logdir))
    assert (row.removed_files, row.removed_bytes) == (4, total + sizes[sorted(sizes)[3]])  # the total so far


def test_the_directory_budget_removes_the_oldest_rotated_files_of_any_rank_never_a_live_one(logdir):
    """dir_max_bytes counts every file of the directory; the oldest rotated files go first, whatever their rank
    (each rank's in its own order), until it fits; each rank file that lost some says so."""
    logdir.mkdir()
    now = time.time()
    sizes, logs = {}, {}
    for rank, ages in (("0", (50, 30, 10)), ("1", (40, 20))):
        for age in ages:
            path = logdir / f"vllm_rank_{rank}.log.20261126T0900{60 - age:02d}.000Z.gz"  # named as rotated: older, earlier
            line = f"2026-11-26T09:00:{60 - age:02d}.000Z INFO rank={rank} EngineActor[7] vllm.rot: {os.urandom(600).hex()}\n"
            path.write_bytes(gzip.compress(line.encode()))
            os.utime(path, (now - age, now - age))
            sizes[path.name], logs[path.name] = path.stat().st_size, len(line)
        (logdir / f"vllm_rank_{rank}.log").write_bytes(b"")
    big = "2026-11-26T09:00:59.000Z INFO rank=0 MainProcess[9] skyrl_train.trainer: "
    (logdir / "skyrl_rank_0.log").write_text(big + "y" * (2499 - len(big)) + "\n")  # a big live file counts, and stays
    oldest = ["vllm_rank_0.log.20261126T090010.000Z.gz", "vllm_rank_1.log.20261126T090020.000Z.gz",
              "vllm_rank_0.log.20261126T090030.000Z.gz"]
    budget = sum(sizes.values()) + 2500 - sum(sizes[n] for n in oldest)
    assert retention.maintain(str(logdir), "vllm_rank_0.log", rotation.Policy(16 << 10, dir_max_bytes=budget))
    left = sorted(p.name for p in logdir.iterdir() if not p.name.startswith("."))
    assert left == ["skyrl_rank_0.log", "vllm_rank_0.log", "vllm_rank_0.log.20261126T090050.000Z.gz", "vllm_rank_1.log",
                    "vllm_rank_1.log.20261126T090040.000Z.gz"]
    for rank, count in (("0", 2), ("1", 1)):
        (line,) = (logdir / f"vllm_rank_{rank}.log").read_text().splitlines()
        assert f" rank={rank} " in line and f"removed {count} rotated file" in line and "LOGCONF_DIR_MAX_BYTES" in line
    rows = {row.file: row for row in summarise(str(logdir))}
    zero = [n for n in oldest if n.startswith("vllm_rank_0")]
    assert (rows["vllm_rank_0.log"].removed_files, rows["vllm_rank_0.log"].removed_bytes) == (2, sum(logs[n] for n in zero))
    assert (rows["vllm_rank_1.log"].removed_files, rows["vllm_rank_1.log"].removed_disk_bytes) == (1, sizes[oldest[1]])
    assert not any(row.problems for row in rows.values())


# -- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "key", "value"),
    [
        ({"LOGCONF_ROTATE_BYTES": "12Q"}, "rotate_bytes", "12Q"),
        ({"LOGCONF_ROTATE_BYTES": "1M", "LOGCONF_ROTATE_KEEP": "0"}, "rotate_keep", "0"),
        ({"LOGCONF_ROTATE_BYTES": "1M", "LOGCONF_ROTATE_COMPRESS": "maybe"}, "rotate_compress", "maybe"),
        ({"LOGCONF_DIR_MAX_BYTES": "1G"}, "rotate_bytes", "0"),
    ],
)
def test_a_bad_rotation_setting_is_a_config_error_naming_file_key_and_value(logdir, monkeypatch, env, key, value):
    for name, text in env.items():
        monkeypatch.setenv(name, text)
    with pytest.raises(ConfigError) as caught:
        logconf_apply_vllm()
    message = str(caught.value)
    assert "vllm_logging.json" in message and key in message and value in message, message


def logconf_apply_vllm() -> None:
    from logconf.config import check, load, vllm_config_path

    check(load(vllm_config_path()), vllm_config_path())


@pytest.mark.parametrize("size", ["64K", "64k", "64KiB", "65536", "0.0625M"])
def test_sizes_take_binary_units(size):
    assert rotation.parse_size(size, file="f", key="k") == 65536


def test_the_trainer_yaml_rotates_by_the_same_variables(logdir, monkeypatch):
    import logconf

    monkeypatch.setenv("LOGCONF_ROTATE_BYTES", "4K")
    logconf.apply()
    log = logging.getLogger("skyrl_train.trainer")
    for i in range(200):
        log.info("step %d %s", i, padding(i))
    settle()
    (found,) = rank_sets(str(logdir))
    assert found.name == "skyrl_rank_0.log" and len(found.rotated) >= 5
    assert sum(1 for path in found.paths for _ in iter_entries(path)) == 200


def test_rotation_that_cannot_take_its_lock_is_reported_once_and_no_record_is_lost(logdir, monkeypatch, capfd):
    monkeypatch.setenv("LOGCONF_ROTATE_BYTES", "2K")
    logdir.mkdir()
    (logdir / ".vllm_rank_0.log.lock").mkdir()  # the lock file cannot be opened
    load_like_vllm()
    for i in range(300):
        logging.getLogger("vllm.rot").info("r %d %s", i, padding(i))
    assert len((logdir / "vllm_rank_0.log").read_text().splitlines()) == 300
    assert capfd.readouterr().err.count("cannot rotate") == 1


def test_rotated_names_sort_as_the_rotations_happened_and_logrotates_numbers_count_back():
    names = ["vllm_rank_0.log.2", "vllm_rank_0.log.10.gz", "vllm_rank_0.log.1", "vllm_rank_0.log.20261126T090001.000Z.gz",
             "vllm_rank_0.log.20261126T090000.999Z", "vllm_rank_0.log-20261125.gz"]
    ordered = sorted(names, key=lambda n: split_rotated(n).key)  # type: ignore[union-attr]
    assert ordered == ["vllm_rank_0.log.10.gz", "vllm_rank_0.log.2", "vllm_rank_0.log.1", "vllm_rank_0.log-20261125.gz",
                       "vllm_rank_0.log.20261126T090000.999Z", "vllm_rank_0.log.20261126T090001.000Z.gz"]
    assert split_rotated("vllm_rank_0.log") is None and split_rotated("vllm_rank_0.log.1.gz.tmp") is None
    assert ROTATED.fullmatch("vllm_rank_0.log.20261126T090001.000Z.gz")


# -- the hot path: what a record costs the thread that logs it -------------------------------------


def _rotating_logger(directory: Path, rotate_bytes: str, check_s: float) -> logging.Logger:
    config = {
        "version": 1,
        "handlers": {"file": {"()": "logconf.handlers.RankFileHandler", "directory": str(directory),
                              "filename": "vllm_rank_0.log", "reopen_check_s": check_s, "rotate_bytes": rotate_bytes}},
        "loggers": {"app": {"handlers": ["file"], "level": "INFO", "propagate": False}},
    }
    logging.config.dictConfig(config)
    return logging.getLogger("app")


@pytest.mark.parametrize("rotate_bytes", ["1G", "64K"], ids=["no-rotation", "every-64K"])
def test_the_size_check_stats_the_file_once_per_check_interval_and_rotation_not_once_per_record(tmp_path, rotate_bytes):
    """5,000 records of 130 bytes with rotation on: the thread that logs calls stat/fstat/lstat at its periodic
    check (reopen_check_s, 1 s) and a few times per rotation, never per record (it counts its own bytes)."""
    log = _rotating_logger(tmp_path, rotate_bytes, 1.0)
    logging_thread = threading.get_ident()
    calls = {"stat": 0, "fstat": 0, "lstat": 0}

    def counting(name: str, real):
        def call(*args, **kwargs):
            if threading.get_ident() == logging_thread:
                calls[name] += 1
            return real(*args, **kwargs)
        return call

    with pytest.MonkeyPatch.context() as patch:
        for name in calls:
            patch.setattr(os, name, counting(name, getattr(os, name)))
        started = time.monotonic()
        for i in range(5_000):
            log.info("r %04d %s", i, "x" * 122)
        elapsed = time.monotonic() - started
    settle()
    rotations = len(set_files(tmp_path, "vllm_rank_0.log")) - 1
    assert rotations == (0 if rotate_bytes == "1G" else 9), rotations  # 650,000 bytes, 64 KiB a file
    checks = math.ceil(elapsed / 1.0) + 1
    print(f"{rotate_bytes}: {calls} in 5,000 records, {rotations} rotations, {elapsed:.2f} s")
    # A rotation stats the path under the lock, and the reopen checks the new file's directory and path (~14)
    assert sum(calls.values()) <= checks + 16 * rotations, (calls, rotations, elapsed)


def test_compression_runs_in_the_rotation_thread_and_no_logging_call_waits_for_it(tmp_path, monkeypatch):
    """Records that rotate the file four times return while the compression of the first rotated file is still
    held back (no .gz yet); it ran in another thread, and once let go every rotated file is compressed."""
    logging_thread = threading.get_ident()
    compressing: list[int] = []
    entered, release = threading.Event(), threading.Event()
    real = retention.compress

    def compress(path: str) -> str:
        compressing.append(threading.get_ident())
        entered.set()
        if threading.get_ident() != logging_thread:  # (in the logging thread, waiting would only hang the test)
            release.wait(30)
        return real(path)

    monkeypatch.setattr(retention, "compress", compress)
    log = _rotating_logger(tmp_path, "16K", 60.0)
    for i in range(600):
        log.info("c %04d %s", i, "x" * 122)  # 78,000 bytes: 4 rotations at 16 KiB
    assert entered.wait(30), "no rotated file was ever compressed"
    rotated = set_files(tmp_path, "vllm_rank_0.log")[:-1]
    assert len(rotated) == 4, [p.name for p in rotated]
    assert not any(p.name.endswith(".gz") for p in rotated), "a logging call waited for a compression"
    assert logging_thread not in compressing
    release.set()
    settle()
    assert all(p.name.endswith(".gz") for p in set_files(tmp_path, "vllm_rank_0.log")[:-1])
    assert set(compressing) - {logging_thread} and logging_thread not in compressing


# -- stress: 2 ranks x 3 processes x 200,000 records, 50+ rotations each ---------------------------

STRESS_COUNT = 200_000


def _line_bytes(rank: str, process: str, pid: int, tag: str, i: int) -> int:
    """The bytes of one record of rotation_writers.writer as the shipped text format writes it."""
    return len(f"2026-11-26T09:00:00.000Z INFO rank={rank} {process}[{pid}] vllm.rot: {tag} {i} {padding(i)}\n")


@pytest.mark.stress
@pytest.mark.parametrize("budget", [None, "6M"], ids=["keep-all", "dir-budget-6M"])
def test_stress_two_ranks_of_three_processes_rotate_50_times_each_and_lose_nothing_but_what_retention_says(logdir, budget):
    """Engine actor, EngineCore and worker of two ranks each log 200,000 records into files that rotate at
    512 KiB, compressed behind them; the actor then idles while its children log on, holding a rotated file.

    Without a budget: every record exactly once across the live and rotated files, none torn, each process's
    in its order, every rotated file compressed. With LOGCONF_DIR_MAX_BYTES: each process's oldest records
    are missing, none other, and the rank file's last retention record says how many files went.
    """
    env = {"LOGCONF_ROTATE_BYTES": "512K", **({"LOGCONF_DIR_MAX_BYTES": budget} if budget else {})}
    started = time.monotonic()
    _join(*[_run(family, rank, STRESS_COUNT, env, 1.5, name="EngineActor") for rank in ("0", "1")], timeout=900)
    written_s = time.monotonic() - started
    figures = []
    for rank in ("0", "1"):
        live = f"vllm_rank_{rank}.log"
        rotations = int((logdir / f".{live}.lock").read_text().split()[1])
        assert rotations >= 50, rotations
        files = set_files(logdir, live)
        compressed_while_running = sum(f.name.endswith(".gz") for f in files[:-1])
        assert compressed_while_running >= len(files) // 2, (compressed_while_running, len(files))
        tally = Tally().read(logdir, live, rank)
        assert tally.bad == []
        assert set(tally.seen.values()) == {1}  # none twice
        counts = {f"a{rank}": STRESS_COUNT + 1, f"c{rank}": STRESS_COUNT, f"w{rank}": STRESS_COUNT}
        for tag, count in counts.items():
            order = tally.order[tag]
            assert order == list(range(count - len(order), count)), tag  # in order; missing, if any, the oldest
        (row,) = [r for r in summarise(str(logdir)) if r.file == live]
        assert row.problems == 0
        figures.append(
            f"rank {rank}: {rotations} rotations, {len(files)} files ({compressed_while_running} compressed while it ran), "
            f"{row.records} records, {row.bytes / 2**20:.1f} MiB of log in {row.disk_bytes / 2**20:.1f} MiB on disk, "
            f"{row.removed_files} files removed"
        )
        if budget is None:
            assert sum(map(len, tally.order.values())) == sum(counts.values())
            assert (row.removed_files, tally.other) == (0, [])
            continue
        assert row.removed_files == rotations - (len(files) - 1) > 0  # every file removed is counted
        missing = 0
        for tag, count in counts.items():
            process, pid = tally.writer[tag]
            missing += sum(_line_bytes(rank, process, pid, tag, i) for i in range(count - len(tally.order[tag])))
        # The removed files held those records, and the retention records written into files removed since.
        assert missing <= row.removed_bytes <= missing + 2000 * row.removed_files
    _tidy(logdir, "vllm_rank_0.log")
    _tidy(logdir, "vllm_rank_1.log")
    left = [p.name for p in logdir.iterdir() if ROTATED.fullmatch(p.name)]
    assert left and all(name.endswith(".gz") for name in left)
    assert not [p for p in logdir.iterdir() if p.name.endswith(".tmp")]
    print(f"\nFIGURES rotation stress {budget or 'keep-all'}: 6 x {STRESS_COUNT} records written in {written_s:.0f} s; "
          + "; ".join(figures))

