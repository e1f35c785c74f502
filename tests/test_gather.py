"""`logconf gather`'s pieces that need no Ray: listing, chunking, resuming, node names, and the tools on its layout.

The copy path here is gather's own (list, resume check, chunked read, write), run on one machine;
tests/real/test_real_multinode.py runs it across a real two-node Ray cluster.
"""

from __future__ import annotations

import calendar
import json
import os
import stat
import subprocess
import sys
import time

import pytest
from helpers import following
from logwriters import REPO, logconf_cli, run, scripted

from logconf.gather import (
    CHECK,
    QUIET_S,
    FileCopy,
    NodeInfo,
    _alive_nodes,
    copy_file,
    list_rank_files,
    node_listing,
    node_names,
    read_chunks,
    scan_rank_files,
    write_copy,
)
from logconf.logfiles import rank_names
from logconf.summary import summarise

RECORD = "2026-11-26T09:00:0{}.000Z INFO rank=0 EngineActor[7] vllm.x: record {}\n"


def _records(first: int, count: int) -> bytes:
    return "".join(RECORD.format(i % 10, i) for i in range(first, first + count)).encode()


def _old(path) -> None:
    """Make ``path`` look unchanged for longer than QUIET_S."""
    past = time.time() - QUIET_S - 5
    os.utime(path, (past, past))


def test_listing_names_rank_files_and_stdio_copies_and_ends_each_at_its_last_whole_line(tmp_path):
    whole, unfinished = _records(0, 3), b"2026-11-26T09:00:09.000Z INFO rank=1 EngineActor[7] vllm.x: half"
    (tmp_path / "vllm_rank_0.log").write_bytes(whole)
    (tmp_path / "vllm_rank_1.log").write_bytes(whole + unfinished)
    (tmp_path / "vllm_rank_1.stdio.log").write_bytes(b"EngineCore[9] a tqdm bar\n")
    (tmp_path / "skyrl_rank_0.jsonl").write_bytes(b"")
    (tmp_path / "notes.txt").write_bytes(b"not a rank file\n")
    (tmp_path / "vllm_rank_2.log").mkdir()
    for path in tmp_path.iterdir():
        path.chmod(0o600 if path.name == "vllm_rank_1.log" else 0o640)
    assert list_rank_files(str(tmp_path)) == [
        {"name": "skyrl_rank_0.jsonl", "size": 0, "end": 0, "mode": 0o640},
        {"name": "vllm_rank_0.log", "size": len(whole), "end": len(whole), "mode": 0o640},
        {"name": "vllm_rank_1.log", "size": len(whole + unfinished), "end": len(whole), "mode": 0o600},
        {"name": "vllm_rank_1.stdio.log", "size": 25, "end": 25, "mode": 0o640},
    ]
    assert list_rank_files(str(tmp_path / "missing")) == []


def test_a_last_line_without_newline_is_listed_whole_once_its_file_has_been_quiet(tmp_path):
    """A writer that died inside its last line: after QUIET_S unchanged seconds the torn line is copied too."""
    path = tmp_path / "vllm_rank_0.log"
    path.write_bytes(_records(0, 2) + b"2026-11-26T09:00:09.000Z INFO rank=0 EngineActor[7] vllm.x: cut sh")
    path.chmod(0o640)
    _old(path)
    size = path.stat().st_size
    assert list_rank_files(str(tmp_path)) == [{"name": "vllm_rank_0.log", "size": size, "end": size, "mode": 0o640}]


def test_chunks_end_on_a_newline_and_a_line_longer_than_a_chunk_is_split(tmp_path):
    path = tmp_path / "vllm_rank_0.log"
    data = b"aaaa\nbbbbbbbbbbbbbbbbbbbb\ncc\n"
    path.write_bytes(data)
    stream = list(read_chunks(str(path), 0, b"", len(data), chunk=8))
    assert stream == [0, b"aaaa\n", b"bbbbbbbb", b"bbbbbbbb", b"bbbb\ncc\n"]  # the last chunk reaches the end: no cut


def test_reading_stops_at_the_listed_end_even_if_the_file_grew(tmp_path):
    path = tmp_path / "vllm_rank_0.log"
    path.write_bytes(_records(0, 4))
    end = len(_records(0, 2))
    assert b"".join(c for c in read_chunks(str(path), 0, b"", end, chunk=1 << 20) if isinstance(c, bytes)) == _records(0, 2)


def test_resume_continues_after_the_copy_when_its_last_bytes_match_and_restarts_when_not(tmp_path):
    path = tmp_path / "vllm_rank_0.log"
    path.write_bytes(_records(0, 100))
    copy = _records(0, 60)
    tail = copy[-CHECK:]
    assert list(read_chunks(str(path), len(copy), tail, path.stat().st_size, chunk=1 << 20)) == [len(copy), _records(60, 40)]
    replaced = b"X" * len(copy) + b"\n"
    assert next(read_chunks(str(path), len(replaced), replaced[-CHECK:], path.stat().st_size, chunk=1 << 20)) == 0
    assert next(read_chunks(str(path), path.stat().st_size + 10, b"", path.stat().st_size)) == 0


def test_copying_a_growing_file_again_and_again_gives_its_bytes_once_each(tmp_path):
    """Three rounds while the writer appends (one round in the middle of a record): the copy equals the file."""
    source, target = tmp_path / "node" / "vllm_rank_0.log", tmp_path / "dest" / "vllm_rank_0.log"
    source.parent.mkdir()
    target.parent.mkdir()
    source.write_bytes(_records(0, 500))
    first = copy_file(str(source), str(target), chunk=4096)
    assert (first.copied, first.restarted, target.read_bytes()) == (len(_records(0, 500)), False, _records(0, 500))
    half = _records(500, 1)[:30]
    with open(source, "ab") as file:
        file.write(_records(500, 0) + half)
    second = copy_file(str(source), str(target), chunk=4096)
    assert (second.copied, target.read_bytes()) == (0, _records(0, 500))  # the unfinished record waits
    with open(source, "ab") as file:
        file.write(_records(500, 1)[30:] + _records(501, 99))
    third = copy_file(str(source), str(target), chunk=4096)
    assert (third.copied, third.restarted) == (len(_records(500, 100)), False)
    assert target.read_bytes() == source.read_bytes() == _records(0, 600)


def test_a_node_file_replaced_since_the_last_copy_is_copied_anew(tmp_path):
    """logrotate (create) or a new run in the same directory: the old copy is replaced, not appended to."""
    source, target = tmp_path / "node" / "vllm_rank_0.log", tmp_path / "dest" / "vllm_rank_0.log"
    source.parent.mkdir()
    target.parent.mkdir()
    source.write_bytes(_records(0, 50))
    copy_file(str(source), str(target))
    source.write_bytes(_records(1000, 80))  # longer than the copy, other bytes
    again = copy_file(str(source), str(target))
    assert (again.restarted, target.read_bytes()) == (True, _records(1000, 80))
    source.write_bytes(_records(2000, 3))  # shorter than the copy
    assert copy_file(str(source), str(target)).restarted is True
    assert target.read_bytes() == _records(2000, 3)


def _secret(tmp_path) -> bytes:
    """A file the node's user can read and the gathering operator must not get: gather never follows a link to it."""
    secret = tmp_path / "home" / ".ssh" / "id_rsa"
    secret.parent.mkdir(parents=True)
    secret.write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n")
    return secret


def test_a_link_planted_among_rank_files_is_reported_and_never_read(tmp_path):
    node, dest = tmp_path / "node", tmp_path / "dest"
    node.mkdir()
    dest.mkdir()
    secret = _secret(tmp_path)
    (node / "vllm_rank_0.log").write_bytes(_records(0, 2))
    (node / "vllm_rank_1.log").symlink_to(secret)
    (node / "vllm_rank_2.log").symlink_to(node / "vllm_rank_0.log")  # even to a rank file of the node's own
    files, links = scan_rank_files(str(node))
    assert [f["name"] for f in files] == ["vllm_rank_0.log"]
    assert links == {
        "vllm_rank_1.log": f"a symbolic link to {secret}; gather does not follow links among rank files",
        "vllm_rank_2.log": f"a symbolic link to {node / 'vllm_rank_0.log'}; gather does not follow links among rank files",
    }
    listing = node_listing(str(node))
    assert (listing["skipped"], [f["name"] for f in listing["files"]]) == (links, ["vllm_rank_0.log"])
    done = copy_file(str(node / "vllm_rank_1.log"), str(dest / "vllm_rank_1.log"))
    assert (done.copied, done.skipped) == (0, links["vllm_rank_1.log"])
    assert sorted(os.listdir(dest)) == []  # not even an empty copy


def test_a_rank_file_swapped_for_a_link_after_listing_is_not_read(tmp_path):
    """The node's stream opens without following links: a link made between listing and reading is left alone."""
    path = tmp_path / "vllm_rank_0.log"
    path.symlink_to(_secret(tmp_path))
    stream = list(read_chunks(str(path), 0, b"", 1 << 20))
    assert stream == [{"skipped": f"a symbolic link to {os.readlink(path)}; gather does not follow links among rank files"}]
    assert list(read_chunks(str(tmp_path / "vllm_rank_9.log"), 0, b"", 10)) == [{"skipped": "removed since it was listed"}]
    done = write_copy(str(tmp_path / "copy.log"), 0, stream, FileCopy("n", "vllm_rank_0.log", 10))
    assert (done.skipped != "", (tmp_path / "copy.log").exists()) == (True, False)


def test_a_link_planted_at_a_copys_path_in_dest_is_not_written_through(tmp_path):
    (tmp_path / "node").mkdir()
    (tmp_path / "node" / "vllm_rank_0.log").write_bytes(_records(0, 3))
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me\n")
    (tmp_path / "vllm_rank_0.log").symlink_to(victim)
    with pytest.raises(OSError):
        copy_file(str(tmp_path / "node" / "vllm_rank_0.log"), str(tmp_path / "vllm_rank_0.log"))
    assert victim.read_bytes() == b"keep me\n"


@pytest.mark.parametrize(
    ("source_mode", "file_mode", "copy_mode"),
    [(0o640, 0o640, 0o640), (0o644, 0o640, 0o640), (0o600, 0o640, 0o600), (0o644, 0o600, 0o600), (0o444, 0o644, 0o444)],
)
def test_a_copy_is_never_more_readable_than_its_source_or_file_mode(tmp_path, source_mode, file_mode, copy_mode):
    """Under umask 022 a plain open would give 0644: the copy takes the source's bits, less those file_mode lacks."""
    source, target = tmp_path / "vllm_rank_0.log", tmp_path / "copy" / "vllm_rank_0.log"
    source.write_bytes(_records(0, 3))
    source.chmod(source_mode)
    target.parent.mkdir()
    old = os.umask(0o022)
    try:
        copy_file(str(source), str(target), file_mode=file_mode)
    finally:
        os.umask(old)
    assert (stat.S_IMODE(target.stat().st_mode), target.read_bytes()) == (copy_mode, _records(0, 3))


def test_an_older_world_readable_copy_loses_the_bits_its_source_lacks_at_the_next_gather(tmp_path, monkeypatch):
    """LOGCONF_FILE_MODE of the gathering process bounds the copies (the shipped config's file_mode)."""
    source, target = tmp_path / "vllm_rank_0.log", tmp_path / "copy.log"
    source.write_bytes(_records(0, 3))
    source.chmod(0o640)
    target.write_bytes(_records(0, 1))
    target.chmod(0o666)
    copy_file(str(source), str(target))
    assert (stat.S_IMODE(target.stat().st_mode), target.read_bytes()) == (0o640, _records(0, 3))
    monkeypatch.setenv("LOGCONF_FILE_MODE", "0600")
    copy_file(str(source), str(target))
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_nodes_listing_reads_its_own_directory_and_host_name(tmp_path, monkeypatch):
    """Without --dir, the node's LOGCONF_DIR (else the shipped default); LOGCONF_HOSTNAME names it, as in rank file names."""
    (tmp_path / "vllm_rank_0.log").write_bytes(_records(0, 1))
    tmp_path.chmod(0o710)
    monkeypatch.setenv("LOGCONF_DIR", str(tmp_path))
    monkeypatch.setenv("LOGCONF_HOSTNAME", "..")
    listing = node_listing(None)
    assert (listing["dir"], listing["dir_mode"], listing["hostname"]) == (str(tmp_path), 0o710, "..")
    assert [f["name"] for f in listing["files"]] == ["vllm_rank_0.log"]
    monkeypatch.delenv("LOGCONF_HOSTNAME")
    assert node_listing(str(tmp_path / "missing"))["hostname"] == os.uname().nodename


@pytest.mark.parametrize(
    ("nodes", "names"),
    [
        ([NodeInfo("a" * 56, "gpu-1", "10.0.0.1"), NodeInfo("b" * 56, "gpu-2", "10.0.0.2")], ["gpu-1", "gpu-2"]),
        ([NodeInfo("a" * 56, "pod", "10.0.0.1"), NodeInfo("b" * 56, "pod", "10.0.0.2")], ["pod-10.0.0.1", "pod-10.0.0.2"]),
        (
            [NodeInfo("0123abcd" + "a" * 48, "vm", "127.0.0.1"), NodeInfo("89efcdab" + "b" * 48, "vm", "127.0.0.1")],
            ["vm-0123abcd", "vm-89efcdab"],
        ),
        ([NodeInfo("c" * 56, "a/b c", "::1")], ["a_b_c"]),
    ],
    ids=["host names", "shared host name", "shared host and IP", "unsafe characters"],
)
def test_node_directories_are_named_by_host_then_ip_then_node_id_as_needed_to_tell_nodes_apart(nodes, names):
    assert [node_names(nodes)[n.node_id] for n in nodes] == names


T0 = calendar.timegm((2026, 11, 26, 9, 0, 0))
SCRIPT_A = ((T0, "vllm.engine", "INFO", "a0"), (T0 + 2, "vllm.engine", "INFO", "a2"), (T0 + 4, "vllm.engine", "WARNING", "a4"))
SCRIPT_B = ((T0 + 1, "vllm.engine", "INFO", "b1"), (T0 + 3, "vllm.engine", "INFO", "b3"))
TRAINER = ((T0, "skyrl_train.trainer", "INFO", "t0"), (T0 + 5, "skyrl_train.trainer", "INFO", "t5"))


@pytest.fixture
def gathered(tmp_path, monkeypatch):
    """A gathered run: node-a holds engine rank 0 and the trainer (rank 0), node-b holds engine rank 0 too."""
    dest = tmp_path / "gathered"
    for node, script in (("node-a", SCRIPT_A), ("node-b", SCRIPT_B)):
        monkeypatch.setenv("LOGCONF_DIR", str(dest / node))
        run(scripted, "0", "text", script)
    monkeypatch.setenv("LOGCONF_DIR", str(dest / "node-a"))
    run(scripted, "0", "json", TRAINER, True, name="TrainerActor")
    (dest / "logconf-gather.json").write_text("{}\n")
    return dest


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(logconf_cli(*args), cwd=REPO, capture_output=True, text=True, timeout=60)


def test_a_gathered_directory_lists_each_nodes_rank_files_under_its_node(gathered):
    assert rank_names(str(gathered)) == ["node-a/skyrl_rank_0.jsonl", "node-a/vllm_rank_0.log", "node-b/vllm_rank_0.log"]
    (gathered / "vllm_rank_9.log").write_text("")
    assert rank_names(str(gathered)) == ["vllm_rank_9.log"]  # a run's own directory: its subdirectories are not read


def test_summary_of_a_gathered_directory_counts_per_file_per_node_and_per_rank_exactly(gathered):
    done = _cli("summary", str(gathered), "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    rows = {(f["node"], f["file"]): (f["rank"], f["records"], f["lines"]) for f in document["files"]}
    assert rows == {
        ("node-a", "node-a/skyrl_rank_0.jsonl"): ("0", 2, 2),
        ("node-a", "node-a/vllm_rank_0.log"): ("0", 3, 3),
        ("node-b", "node-b/vllm_rank_0.log"): ("0", 2, 2),
    }
    assert {n: (t["files"], t["records"], t["lines"], t["torn"]) for n, t in document["nodes"].items()} == {
        "node-a": (2, 5, 5, 0),
        "node-b": (1, 2, 2, 0),
    }
    assert {r: (t["nodes"], t["records"]) for r, t in document["ranks"].items()} == {
        "skyrl_rank_0.jsonl": (["node-a"], 2),
        "vllm_rank_0.log": (["node-a", "node-b"], 5),
    }
    assert document["totals"]["records"] == 7
    table = _cli("summary", str(gathered)).stdout.splitlines()
    assert "| node-b | 1 | 2 | 2 |" in "\n".join(table)
    assert table[-1] == "3 files, 7 records, 7 lines: ok"


def test_summary_of_a_run_directory_has_no_nodes(gathered):
    document = json.loads(_cli("summary", str(gathered / "node-b"), "--json").stdout)
    assert ([f["file"] for f in document["files"]], document["nodes"], document["ranks"]) == (["vllm_rank_0.log"], {}, {})
    assert [s.file for s in summarise(str(gathered / "node-b"))] == ["vllm_rank_0.log"]


def test_merge_interleaves_every_node_by_time_and_names_each_records_node(gathered):
    lines = _cli("merge", str(gathered)).stdout.splitlines()
    shown = [(line.split()[1], line.rsplit(": ", 1)[1]) for line in lines]
    assert shown == [
        ("node-a/skyrl_rank_0.jsonl", "t0"),  # equal times: node, then file name
        ("node-a/vllm_rank_0.log", "a0"),
        ("node-b/vllm_rank_0.log", "b1"),
        ("node-a/vllm_rank_0.log", "a2"),
        ("node-b/vllm_rank_0.log", "b3"),
        ("node-a/vllm_rank_0.log", "a4"),
        ("node-a/skyrl_rank_0.jsonl", "t5"),
    ]
    records = [json.loads(line) for line in _cli("merge", str(gathered), "--json", "--level", "WARNING").stdout.splitlines()]
    assert [(r["file"], r["message"]) for r in records] == [("node-a/vllm_rank_0.log", "a4")]


def test_tail_reads_a_gathered_directory_and_follows_a_node_that_arrives_later(gathered, monkeypatch):
    lines = _cli("tail", str(gathered), "-n", "2").stdout.splitlines()
    assert [line.split()[1] for line in lines] == ["node-a/vllm_rank_0.log", "node-a/skyrl_rank_0.jsonl"]
    command = [sys.executable, "-m", "logconf", "tail", "-f", str(gathered), "-n", "1", "--interval", "0.05"]
    with following(command, REPO) as (_, reader):
        seen = reader.until(lambda got: len(got) >= 1)  # the last record so far: tail is following now
        monkeypatch.setenv("LOGCONF_DIR", str(gathered / "node-c"))
        run(scripted, "3", "text", ((T0 + 10, "vllm.engine", "INFO", "c10"),))
        seen += reader.until(lambda got: len(got) >= 1)
    shown = [(line.split()[1], line.rsplit(": ", 1)[1]) for line in seen]
    assert shown == [("node-a/skyrl_rank_0.jsonl", "t5"), ("node-c/vllm_rank_3.log", "c10")]


def test_gather_refuses_a_dest_that_is_a_file_and_a_chunk_size_below_one_byte_before_it_connects(tmp_path):
    (tmp_path / "dest").write_text("")
    done = _cli("gather", str(tmp_path / "dest"))
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        f"logconf gather: {tmp_path / 'dest'}: not a directory (gather writes DEST/<node>/<file>)\n",
    )
    done = _cli("gather", str(tmp_path / "new"), "--chunk-mib", "0")
    assert (done.returncode, done.stderr) == (2, "logconf gather: --chunk-mib: must be positive, got 0 bytes\n")
    assert not (tmp_path / "new").exists()


def test_gather_without_ray_says_so_in_one_line():
    """The dev environment has no Ray: gather names what it needs instead of a traceback."""
    done = _cli("gather", "never-made")
    assert done.returncode == 2
    assert done.stderr == (
        "logconf gather: gather runs through Ray, which this Python cannot import (No module named 'ray'); "
        "run it beside the job's Ray\n"
    )
    assert not os.path.exists(REPO / "never-made")


class _NodeTable:
    """What ``ray.nodes()`` returns (the keys read here, as Ray 2.x names them), in the order given."""

    def __init__(self, *rows: tuple[str, str, str, bool, bool]) -> None:
        self.rows = [
            {"NodeID": i, "NodeManagerHostname": h, "NodeManagerAddress": ip, "Alive": alive,
             "Resources": {"CPU": 1.0, **({"node:__internal_head__": 1.0} if head else {})}}
            for i, h, ip, head, alive in rows
        ]

    def nodes(self) -> list[dict[str, object]]:
        return self.rows


def test_nodes_come_head_first_then_by_name_whatever_order_ray_lists_them():
    """gather and stacks walk the nodes in this order (stacks names the driver after the first node of its machine)."""
    rows = [("c" * 8, "box", "10.0.0.2", False, True), ("b" * 8, "box", "10.0.0.1", True, True),
            ("a" * 8, "box", "10.0.0.1", False, True), ("d" * 8, "abc", "10.0.0.3", False, False)]
    for order in (rows, rows[::-1], rows[1:] + rows[:1]):
        assert [n.node_id for n in _alive_nodes(_NodeTable(*order))] == ["b" * 8, "a" * 8, "c" * 8]
