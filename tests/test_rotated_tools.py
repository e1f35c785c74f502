"""The tools read a rotated rank file (its rotated files, compressed or not, then the live one) as one file.

The same records go to two directories at once through two RankFileHandlers, one that rotates
and one that does not, so every tool's output over the rotated set can be compared with its
output over the one file.
"""

from __future__ import annotations

import gzip
import json
import logging
import logging.config
import multiprocessing
import os
import re
import sys
import time
from pathlib import Path

import pytest
from helpers import following
from rotation_writers import padding, settle

from logconf.gather import copy_file, list_rank_files
from logconf.logfiles import iter_entries, rank_files, rank_sets
from logconf.merge import merge_files, render, render_json
from logconf.summary import history_notes, summarise, summary_table, too_long_notes
from logconf.tail import last_entries

REPO = Path(__file__).resolve().parents[1]
T0 = 1795683600  # 2026-11-26T09:00:00Z
PART = re.compile(r"(vllm_rank_0\.(?:log|jsonl))\.\d{8}T\d{6}\.\d{3}Z(?:\.gz)?")


def _two_handlers(rotated: Path, plain: Path, size: str = "6K") -> None:
    from logconf import vllm_config_path

    config = json.loads(Path(vllm_config_path()).read_text())
    shipped = config["handlers"]["vllm_file"]
    config["handlers"]["rotating"] = {**shipped, "directory": str(rotated), "rotate_bytes": size}
    config["handlers"]["vllm_file"] = {**shipped, "directory": str(plain), "rotate_bytes": "0"}
    for name in ("vllm", "py.warnings", "uvicorn"):
        config["loggers"][name]["handlers"] = ["vllm_file", "rotating"]
    del config["filters"]
    logging.config.dictConfig(config)


def _log_records(count: int) -> None:
    log = logging.getLogger("vllm.v1.engine.core")
    for i in range(count):
        record = log.makeRecord(log.name, logging.INFO, __file__, 1, "step %d %s", (i, padding(i)), None)
        record.created, record.msecs = T0 + i // 10, float(i % 10 * 100)
        if i % 97 == 5:
            try:
                raise RuntimeError(f"step {i} blew up")
            except RuntimeError:
                record.levelno, record.levelname, record.exc_info = logging.ERROR, "ERROR", sys.exc_info()
        log.handle(record)


@pytest.fixture(params=["text", "json"])
def pair(request, tmp_path, monkeypatch) -> tuple[Path, Path]:
    """The same records in ``rotated`` (rotating every 6 KiB) and ``plain`` (one file), text or JSON lines."""
    monkeypatch.setenv("LOGCONF_FORMAT", request.param)
    rotated, plain = tmp_path / "rotated", tmp_path / "plain"
    _two_handlers(rotated, plain)
    _log_records(1200)
    settle()
    return rotated, plain


def _as_live(text: str) -> str:
    return PART.sub(r"\1", text)


def test_summary_of_the_rotated_set_equals_the_unrotated_file(pair):
    rotated, plain = pair
    (row,), (one,) = summarise(str(rotated)), summarise(str(plain))
    assert (one.records, one.problems, one.file.rsplit(".", 1)[1]) == (1200, 0, "jsonl" if "jsonl" in row.file else "log")
    assert len(row.parts) >= 10 and any(part.endswith(".gz") for part in row.parts)
    assert row.parts[-1] == one.file == row.file
    same = ("lines", "bytes", "records", "continuation_lines", "processes", "loggers", "levels", "first", "last", "problems")
    assert {k: getattr(row, k) for k in same} == {k: getattr(one, k) for k in same}
    assert row.disk_bytes < row.bytes == one.disk_bytes
    assert summary_table([row]).splitlines()[2].startswith(f"| {row.file} (+{len(row.parts) - 1} rotated) |")


def test_merge_of_the_rotated_set_is_the_unrotated_merge_each_line_naming_its_file(pair):
    rotated, plain = pair
    for to_text in (render, render_json):
        lines = [to_text(e) for e in merge_files(str(rotated))]
        assert [_as_live(line) for line in lines] == [to_text(e) for e in merge_files(str(plain))]
        assert len({PART.search(line).group(0) for line in lines if PART.search(line)}) >= 9


def test_tail_of_the_rotated_set_is_the_tail_of_its_merge(pair):
    rotated, plain = pair
    for count in (5, 300, 5000):
        last = [render(e) for e in last_entries(str(rotated), count, lambda e: True)]
        assert last == [render(e) for e in merge_files(str(rotated))][-count:]
        assert [_as_live(line) for line in last] == [render(e) for e in last_entries(str(plain), count, lambda e: True)]


def test_logrotates_numbered_files_are_read_oldest_first_with_line_numbers_of_their_own(tmp_path):
    """vllm_rank_0.log.3.gz, .2.gz, .1 and vllm_rank_0.log: one file, in that order; a line over the limit
    is named by its file and its line there."""
    names = ["vllm_rank_0.log.3.gz", "vllm_rank_0.log.2.gz", "vllm_rank_0.log.1", "vllm_rank_0.log"]
    for n, name in enumerate(names):
        body = "".join(f"2026-11-26T09:00:0{n}.00{i}Z INFO rank=0 EngineCore[1] vllm.x: file {n} record {i}\n" for i in range(3))
        if n == 1:
            body += "2026-11-26T09:00:01.009Z INFO rank=0 EngineCore[1] vllm.x: " + "y" * (1 << 20) + "\n"
        data = body.encode()
        (tmp_path / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    assert rank_files(str(tmp_path)) == [str(tmp_path / n) for n in names]
    merged = list(merge_files(str(tmp_path)))
    assert [(e.file, e.line_number) for e in merged] == [
        *((name, line) for name in names[:2] for line in (1, 2, 3)),
        ("vllm_rank_0.log.2.gz", 4),
        *((name, line) for name in names[2:] for line in (1, 2, 3)),
    ]
    assert render(merged[6]).startswith("2026-11-26T09:00:01.002Z vllm_rank_0.log.2.gz TOO_LONG: line 4, 1048635 bytes")
    (row,) = summarise(str(tmp_path))
    assert row.parts == names and row.records == 12 and row.too_long == 1
    assert too_long_notes([row]) == ["vllm_rank_0.log: line vllm_rank_0.log.2.gz:4 is over 1048576 bytes (not read)"]


def test_retention_history_is_a_note_of_summary_not_a_problem(tmp_path):
    record = (
        "2026-11-26T09:00:00.000Z WARNING rank=0 EngineCore[1] logconf.rotation: removed 1 rotated file (10 bytes of log, "
        "4 bytes on disk) to keep 1 rotated files (LOGCONF_ROTATE_KEEP): a (10 bytes of log); 7 in all so far "
        "(900 bytes of log, 100 bytes on disk)\n"
    )
    (tmp_path / "vllm_rank_0.log").write_text(record)
    (row,) = summarise(str(tmp_path))
    assert (row.removed_files, row.removed_bytes, row.removed_disk_bytes, row.problems) == (7, 900, 100, 0)
    assert history_notes([row]) == [
        "vllm_rank_0.log: history missing before 2026-11-26T09:00:00.000Z: retention removed 7 rotated files "
        "(900 bytes of log, 100 on disk)"
    ]


# -- gather: a rotated file is copied once ---------------------------------------------------------


def test_gather_copies_a_settled_rotated_file_once_whether_it_is_compressed_later_or_not(tmp_path):
    node, dest = tmp_path / "node", tmp_path / "dest"
    node.mkdir()
    dest.mkdir()
    line = b"2026-11-26T09:00:00.000Z INFO rank=0 EngineCore[1] vllm.x: rotated\n"
    rotated = node / "vllm_rank_0.log.20261126T090000.000Z"
    rotated.write_bytes(line)
    (node / "vllm_rank_0.log").write_bytes(line.replace(b"rotated", b"live"))
    held = open(rotated, "rb")  # a writer that has not moved yet holds it (and its shared lock)
    import fcntl

    fcntl.flock(held, fcntl.LOCK_SH)
    assert [f["name"] for f in list_rank_files(str(node))] == ["vllm_rank_0.log"]  # not settled: the next run
    held.close()
    rotated.chmod(0o600)
    listed = {"name": rotated.name, "size": len(line), "end": len(line), "mode": 0o600, "rotated": True}
    assert list_rank_files(str(node))[1] == listed
    assert copy_file(str(rotated), str(dest / rotated.name)).copied == len(line)
    assert (dest / rotated.name).stat().st_mode & 0o777 == 0o600  # never more readable than its source
    assert copy_file(str(rotated), str(dest / rotated.name)).copied == 0
    os.rename(rotated, f"{rotated}.gz")  # compressed on the node since (content aside)
    assert copy_file(f"{rotated}.gz", str(dest / f"{rotated.name}.gz")).copied == 0
    assert sorted(p.name for p in dest.iterdir()) == [rotated.name]


# -- tail -f through rotations, with few descriptors -----------------------------------------------


def _limited(nofile: int, *args: str) -> list[str]:
    """``python -m logconf ARGS`` with at most ``nofile`` open files (``ulimit -n``)."""
    code = (
        "import resource, runpy, sys\n"
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({nofile}, {nofile}))\n"
        "sys.argv = ['logconf', *sys.argv[1:]]\n"
        "runpy.run_module('logconf', run_name='__main__')\n"
    )
    return [sys.executable, "-c", code, *args]


def _rotating_writer(directory: str, stop: str) -> None:
    os.environ.update(LOGCONF_DIR=directory, LOGCONF_RANK="0", LOGCONF_ROTATE_BYTES="2K")
    from helpers import load_like_vllm

    load_like_vllm()
    log = logging.getLogger("vllm.v1.engine.core")
    i = 0
    while not os.path.exists(stop) or i < 300:
        log.info("rec %d", i)
        i += 1
        time.sleep(0.002)
    log.info("last")
    settle()


def _until_following(reader, other: Path, timeout: float = 120.0) -> None:
    """Wait until tail -f prints a line appended to ``other`` (not the followed file): it has taken its first look,
    however long a loaded machine takes to start it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(other, "a", encoding="utf-8") as file:
            file.write("2026-11-26T09:00:00.000Z INFO rank=1 EngineCore[1] vllm.x: following?\n")
        if any(line.endswith("following?") for line in reader.until(lambda seen: bool(seen), timeout=1.0)):
            return
    pytest.fail(f"tail -f printed nothing appended to {other} within {timeout:g} s")


def test_tail_f_follows_rotations_and_compression_with_nothing_missed_or_repeated_under_a_low_fd_limit(logdir):
    """The file rotates every ~20 records and is compressed behind; 40 other rank files share 8 descriptors
    (ulimit -n 32), so the followed file is closed and opened again at every poll."""
    logdir.mkdir()
    for rank in range(1, 41):
        (logdir / f"vllm_rank_{rank}.log").write_text(f"2026-11-26T09:00:00.000Z INFO rank={rank} EngineCore[1] vllm.x: r\n")
    stop = logdir.parent / "stop"
    heads = re.compile(r"^\S+ (vllm_rank_0\.log\S*) INFO rank=0 \S+ vllm\.v1\.engine\.core: (.*)$")
    with following(_limited(32, "tail", "-f", str(logdir), "-n", "0", "--interval", "0.05"), REPO) as (_, reader):
        _until_following(reader, logdir / "vllm_rank_1.log")
        writer = multiprocessing.get_context("spawn").Process(target=_rotating_writer, args=(str(logdir), str(stop)))
        writer.start()
        try:
            lines = reader.until(lambda seen: len(seen) >= 400)
            stop.touch()
            writer.join(120)
            assert writer.exitcode == 0
            lines += reader.until(lambda seen: any(line.endswith(" last") for line in seen), timeout=30)
        finally:
            if writer.is_alive():
                writer.kill()
    lines += reader.rest()
    messages = [m.group(2) for line in lines if (m := heads.match(line))]
    (found,) = [s for s in rank_sets(str(logdir)) if s.name == "vllm_rank_0.log"]
    written = [e.record["message"] for path in found.paths for e in iter_entries(path)]
    assert written == [f"rec {i}" for i in range(len(written) - 1)] + ["last"]
    assert messages == written, "\n".join(lines[140:200])
    assert len(found.rotated) >= 10 and any(p.endswith(".gz") for p in found.rotated)


def test_a_rotated_file_removed_between_listing_and_reading_is_passed_over(tmp_path):
    """Retention may remove the oldest rotated file while a tool runs: the tools read what is left."""
    for name, second in (("vllm_rank_0.log.20261126T090000.000Z", 0), ("vllm_rank_0.log", 1)):
        (tmp_path / name).write_text(f"2026-11-26T09:00:0{second}.000Z INFO rank=0 EngineCore[1] vllm.x: {name}\n")
    paths, (found,) = rank_files(str(tmp_path)), rank_sets(str(tmp_path))
    os.remove(tmp_path / "vllm_rank_0.log.20261126T090000.000Z")
    from logconf.merge import merge_entries
    from logconf.summary import summarise_set

    assert [e.record["message"] for e in merge_entries(paths, str(tmp_path))] == ["vllm_rank_0.log"]
    row = summarise_set(found)
    assert (row.records, row.parts) == (1, ["vllm_rank_0.log"])


# -- errors: a rotated rank file and its rotated stdio copies are read as one, each error named by its file --------


def _write(path: Path, lines: list[str]) -> None:
    data = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)


def _record(second: str, level: str, message: str, rank: int = 0) -> str:
    return f"2026-11-26T09:{second}.000Z {level} rank={rank} EngineCore[{7 + rank}] vllm.v1.engine.core: {message}"


def _rotated_run(directory: Path) -> None:
    """Rank 0's first error only in its oldest (compressed) rotated file, the same error again in the live file;
    rank 1's error is later; rank 0's stdio copy has a raw error in a rotated copy and one cut by a rotation."""
    traceback = ["Traceback (most recent call last):", '  File "kv.py", line 3, in allocate']
    _write(directory / "vllm_rank_0.log.20261126T090000.000Z.gz", [
        _record("00:00", "INFO", "start"),
        _record("00:01", "ERROR", "8 KV cache blocks needed"), *traceback, "ValueError: 8 blocks fit",
    ])  # fmt: skip
    second = [_record("01:00", "INFO", "step 1"), _record("01:01", "ERROR", "request 12 timed out")]
    _write(directory / "vllm_rank_0.log.20261126T090100.000Z", second)
    _write(directory / "vllm_rank_0.log", [
        _record("02:00", "INFO", "step 2"),
        _record("02:01", "ERROR", "9 KV cache blocks needed"), *traceback, "ValueError: 9 blocks fit",
    ])  # fmt: skip
    _write(directory / "vllm_rank_1.log", [_record("00:30", "ERROR", "rank 1 lost its peer", 1)])
    _write(directory / "vllm_rank_0.stdio.log.20261126T090000.000Z.gz", [
        "EngineCore[7] loading weights", "EngineCore[7] Traceback (most recent call last):",
        'EngineCore[7]   File "w.py", line 3, in load', "EngineCore[7] OSError: disk gone",
    ])  # fmt: skip
    _write(directory / "vllm_rank_0.stdio.log.20261126T090100.000Z", [
        "EngineCore[7] saving", "EngineCore[7] Traceback (most recent call last):",
        'EngineCore[7]   File "s.py", line 9, in save',
    ])  # fmt: skip
    _write(directory / "vllm_rank_0.stdio.log", ["EngineCore[7] RuntimeError: cut across a rotation", "EngineCore[7] done"])


def test_errors_reads_rotated_rank_files_and_copies_as_one_naming_each_errors_own_file_and_line(tmp_path):
    from logconf.failures import render_report, report_json, scan

    _rotated_run(tmp_path)
    report = scan(str(tmp_path))
    first = report.first
    assert (first.file, first.line, first.message) == ("vllm_rank_0.log.20261126T090000.000Z.gz", 2, "8 KV cache blocks needed")
    distinct = {d.first.message: (d.count, d.first.file, d.first.line) for d in report.distinct.values()}
    assert distinct == {
        "8 KV cache blocks needed": (2, "vllm_rank_0.log.20261126T090000.000Z.gz", 2),
        "request 12 timed out": (1, "vllm_rank_0.log.20261126T090100.000Z", 2),
        "rank 1 lost its peer": (1, "vllm_rank_1.log", 1),
        "OSError: disk gone": (1, "vllm_rank_0.stdio.log.20261126T090000.000Z.gz", 2),
        "RuntimeError: cut across a rotation": (1, "vllm_rank_0.stdio.log.20261126T090100.000Z", 2),
    }
    timed_out = next(d.first for d in report.distinct.values() if d.first.message == "request 12 timed out")
    assert [line.rsplit(": ", 1)[1] for line in timed_out.before] == ["start", "8 KV cache blocks needed", "step 1"]
    text = render_report(report)
    assert "first 2026-11-26T09:00:01.000Z vllm_rank_0.log.20261126T090000.000Z.gz:2" in text
    assert "(vllm_rank_0.log)" in text  # a process's files: the rank file, not its parts
    assert report_json(report, str(tmp_path))["first"]["file"] == "vllm_rank_0.log.20261126T090000.000Z.gz"


def test_report_of_the_rotated_set_has_one_lane_per_process_and_the_header_counts_of_summary(pair):
    from logconf.report import build
    from logconf.summary import PROBLEMS

    rotated, plain = pair
    page, one = build(str(rotated)).page_data(), build(str(plain)).page_data()
    rows = summarise(str(rotated))
    assert page["summary"]["files"] == len(rows) == 1
    for key in ("lines", "bytes", "records", *PROBLEMS):
        assert page["summary"][key] == sum(getattr(row, key) for row in rows) == one["summary"][key], key
    assert page["summary"] == one["summary"]
    assert len(page["lanes"]) == 1 and page["lanes"] == one["lanes"]
    shown = [(k["time"], k["lines"], k["before"], k["after"]) for k in page["kept"]]
    assert shown == [(k["time"], k["lines"], k["before"], k["after"]) for k in one["kept"]]
    assert len({k["file"] for k in page["kept"]}) >= 5
    for kept in page["kept"]:  # each kept record names its file and its line there
        (entry,) = [e for e in iter_entries(str(rotated / kept["file"])) if e.line_number == kept["line"]]
        assert entry.time == kept["time"] and entry.record["level"] == "ERROR"
