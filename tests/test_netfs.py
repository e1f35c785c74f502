"""Shared storage: per-host rank files on a network filesystem, and the tools reading them as their rank.

The filesystem type comes from a mount table that ``LOGCONF_MOUNTINFO`` points at (written by
the test, in /proc/self/mountinfo's format), and, in ``test_two_sshfs_clients_...``, from a
real loopback SSHFS mount. Two hosts are two processes with different ``LOGCONF_HOSTNAME``.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import socket
import subprocess
import sys

import logwriters
import pytest
from helpers import load_like_vllm, read_records
from netfs_helpers import SSHFS_SETUP, fake_mount_table, missing_sshfs, sshfs_mount, sshfs_server

import logconf
from logconf import netfs
from logconf.errors import ConfigError
from logconf.logfiles import RankName, rank_files, rank_name

ENGINE_RECORDS = 12  # logwriters.engine_rank(infos=5): 5 actor INFO; 5 core INFO, 1 WARNING, 1 ERROR
ENGINE_LINES = 16  # and the ERROR's 4 traceback lines


@pytest.fixture
def on_nfs(tmp_path, logdir, monkeypatch):
    """LOGCONF_DIR's filesystem reads as nfs4 in the mount table logconf is pointed at."""
    table = fake_mount_table(tmp_path / "mountinfo", tmp_path, "nfs4")
    monkeypatch.setenv("LOGCONF_MOUNTINFO", str(table))
    return logdir


def _two_hosts(monkeypatch, directories=(None, None)) -> None:
    """Run one engine rank 0 (actor and EngineCore) on nodeA and on nodeB at the same time, each in its directory."""
    children = []
    for host, directory in zip(("nodeA", "nodeB"), directories, strict=True):
        monkeypatch.setenv("LOGCONF_HOSTNAME", host)
        if directory is not None:
            monkeypatch.setenv("LOGCONF_DIR", str(directory))
        child = multiprocessing.get_context("spawn").Process(
            target=logwriters.engine_rank, args=("0", "text", 5), name="EngineActor"
        )
        child.start()
        children.append(child)
    for child in children:
        child.join(120)
        assert child.exitcode == 0


def test_the_mount_table_gives_this_directorys_filesystem(tmp_path):
    """Without a table of its own, logconf reads /proc/self/mountinfo: tmp_path here is not a network fs."""
    kind = netfs.fs_type(str(tmp_path / "not" / "made" / "yet"))
    assert kind
    with open("/proc/self/mountinfo", encoding="utf-8") as file:
        assert any(line.split(" - ")[1].split()[0] == kind for line in file)
    assert not netfs.is_network(kind)


def _mount(kind: str, target) -> None:
    target.mkdir()
    done = subprocess.run(["mount", "-t", kind, kind, str(target)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"running as root and cannot mount a {kind}: {done.stderr.decode().strip()}")


def test_a_device_number_freed_by_an_unmount_and_taken_by_a_new_mount_gives_the_new_type(tmp_path):
    """The kernel hands a freed device number to the next mount: what was read for it before is not kept."""
    first, second = tmp_path / "first", tmp_path / "second"
    _mount("tmpfs", first)
    try:
        device = os.stat(first).st_dev
        assert netfs.fs_type(str(first / "logs")) == "tmpfs"
    finally:
        subprocess.run(["umount", "-l", str(first)], check=False)
    _mount("ramfs", second)
    try:
        reused = os.stat(second).st_dev == device
        assert netfs.fs_type(str(second / "logs")) == "ramfs", f"device number reused: {reused}"
    finally:
        subprocess.run(["umount", "-l", str(second)], check=False)


def test_of_two_mounts_with_the_device_the_later_one_gives_the_type(tmp_path):
    """The mount table lists mounts in the order they were made: a later one at the device hides an earlier one."""
    device = os.stat(tmp_path).st_dev
    table = tmp_path / "mountinfo"
    dev = f"{os.major(device)}:{os.minor(device)}"
    table.write_text(
        f"1 0 {dev} / /data rw - nfs4 server:/export rw\n2 1 {dev} / /data rw - ext4 /dev/sdb1 rw\n", encoding="utf-8"
    )
    assert netfs.fs_type(str(tmp_path), {"LOGCONF_MOUNTINFO": str(table)}) == "ext4"


def test_the_mount_table_is_matched_by_device_then_by_longest_mount_point(tmp_path):
    """A bind or over-mount with the device wins; else the longest mount point above the real path; escapes decoded."""
    shared = tmp_path / "my share"
    shared.mkdir()
    device = os.stat(tmp_path).st_dev
    table = tmp_path / "mountinfo"
    table.write_text(
        "1 0 254:77 / / rw - ext4 /dev/root rw\n"
        f"2 1 0:999 / {str(shared).replace(' ', chr(92) + '040')} rw - lustre mds@tcp:/fs rw\n"
        f"3 1 0:998 / {tmp_path}/my rw - nfs server:/x rw\n",
        encoding="utf-8",
    )
    env = {"LOGCONF_MOUNTINFO": str(table)}
    assert netfs.fs_type(str(shared / "logs"), env) == "lustre"
    assert netfs.fs_type(str(tmp_path / "other"), env) == "ext4"
    with table.open("a", encoding="utf-8") as file:
        file.write(f"4 1 {os.major(device)}:{os.minor(device)} / /elsewhere rw - cifs //srv/share rw\n")
    assert netfs.fs_type(str(tmp_path / "other"), env) == "cifs"


@pytest.mark.parametrize(
    ("kind", "network"),
    [
        ("nfs", True), ("nfs4", True), ("cifs", True), ("smb3", True), ("lustre", True), ("gpfs", True),
        ("ceph", True), ("fuse", True), ("fuse.sshfs", True), ("fuse.juicefs", True), ("fuse.gcsfuse", True),
        ("ext4", False), ("xfs", False), ("tmpfs", False), ("overlay", False), ("btrfs", False),
        ("fuse.fuse-overlayfs", False), ("fuse.lxcfs", False), ("fuseblk", False), ("", False),
    ],
)  # fmt: skip
def test_network_filesystems_are_told_from_local_ones(kind, network):
    assert netfs.is_network(kind) is network


# Every type the README and netfs.NETWORK_TYPES name, written out here so that dropping one is noticed.
NETWORK_LIST = (
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "coda", "9p", "virtiofs", "davfs", "lustre", "gpfs",
    "ceph", "glusterfs", "beegfs", "orangefs", "pvfs2", "panfs", "wekafs", "ocfs2", "gfs2", "fuse",
)  # fmt: skip


@pytest.mark.parametrize("kind", NETWORK_LIST)
def test_every_type_in_the_network_list_is_a_network_filesystem(kind):
    assert netfs.is_network(kind)
    assert kind in netfs.NETWORK_TYPES


def test_the_network_list_names_exactly_those_types():
    assert netfs.NETWORK_TYPES == frozenset(NETWORK_LIST)


def test_a_directory_beside_a_mount_point_is_not_under_it(tmp_path):
    """A mount at .../data/nfs holds .../data/nfs/logs, not .../data/nfs2/logs (same prefix, another directory)."""
    (tmp_path / "data" / "nfs").mkdir(parents=True)
    (tmp_path / "data" / "nfs2").mkdir()
    table = tmp_path / "mountinfo"
    table.write_text(
        "1 0 254:77 / / rw - ext4 /dev/root rw\n"  # devices that are not tmp_path's: the mount points decide
        f"2 1 0:999 / {tmp_path}/data/nfs rw - nfs server:/export rw\n",
        encoding="utf-8",
    )
    env = {"LOGCONF_MOUNTINFO": str(table)}
    assert netfs.fs_type(str(tmp_path / "data" / "nfs" / "logs"), env) == "nfs"
    assert netfs.fs_type(str(tmp_path / "data" / "nfs2" / "logs"), env) == "ext4"
    assert netfs.fs_type(str(tmp_path / "data" / "nfs2"), env) == "ext4"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("vllm_rank_0.log", "vllm_rank_0@n1.log"),
        ("skyrl_rank_dp0.tp1.jsonl", "skyrl_rank_dp0.tp1@n1.jsonl"),
        ("vllm_rank_0.stdio.log", "vllm_rank_0@n1.stdio.log"),
        ("trainer", "trainer@n1"),
    ],
)
def test_the_host_goes_before_the_extension(name, expected):
    assert netfs.with_host(name, "n1") == expected


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("vllm_rank_0.log", RankName("vllm", "0", None)),
        ("vllm_rank_0@node1.log", RankName("vllm", "0", "node1")),
        ("skyrl_rank_dp0.tp1@node1.cluster.local.jsonl", RankName("skyrl", "dp0.tp1", "node1.cluster.local")),
        ("vllm_rank_0@node1.stdio.log", None),
        ("vllm_rank_0.stdio.log", None),
        ("notes.log", None),
    ],
)
def test_rank_and_host_are_read_back_from_a_file_name(name, parts):
    assert rank_name(name) == parts


def test_on_a_network_fs_each_host_writes_its_own_file(on_nfs, monkeypatch):
    """vLLM's load and apply() name the file after the host; nothing is written under the plain name."""
    monkeypatch.setenv("LOGCONF_HOSTNAME", "nodeA")
    load_like_vllm()
    logconf.apply()
    logging.getLogger("vllm.engine").info("from vllm")
    logging.getLogger("skyrl_train.trainer").info("from the trainer")
    assert sorted(p.name for p in on_nfs.iterdir()) == ["skyrl_rank_0@nodeA.log", "vllm_rank_0@nodeA.log"]
    assert [r["message"] for r in read_records(on_nfs / "vllm_rank_0@nodeA.log")] == ["from vllm"]
    assert logconf.handlers.plan_rank_file("${LOGCONF_DIR}", "vllm_rank_0.stdio.log").endswith("/vllm_rank_0@nodeA.stdio.log")


def test_the_stdio_copy_is_named_after_the_host_too(on_nfs):
    """LOGCONF_CAPTURE_STDIO's copy takes its name from the same path planning as the rank files."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "LOGCONF_CAPTURE_STDIO": "1", "LOGCONF_HOSTNAME": "nodeA"}
    env["PYTHONPATH"] = f"{repo}{os.pathsep}{os.path.join(repo, 'tests')}"
    code = "from helpers import load_like_vllm\nload_like_vllm()\nprint('raw line', flush=True)"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "raw line\n"
    assert sorted(p.name for p in on_nfs.iterdir()) == ["vllm_rank_0@nodeA.log", "vllm_rank_0@nodeA.stdio.log"]
    assert (on_nfs / "vllm_rank_0@nodeA.stdio.log").read_text().endswith("] raw line\n")


def test_the_host_name_defaults_to_this_machines(on_nfs):
    logconf.apply()
    logging.getLogger("skyrl_train.trainer").info("x")
    assert [p.name for p in on_nfs.iterdir()] == [f"skyrl_rank_0@{socket.gethostname()}.log"]


def test_a_local_fs_keeps_the_plain_name_and_per_host_1_forces_the_host(logdir, monkeypatch):
    monkeypatch.setenv("LOGCONF_HOSTNAME", "nodeA")
    logconf.apply()
    logging.getLogger("skyrl_train.trainer").info("x")
    monkeypatch.setenv("LOGCONF_PER_HOST", "1")
    logconf.apply()
    logging.getLogger("skyrl_train.trainer").info("y")
    assert sorted(p.name for p in logdir.iterdir()) == ["skyrl_rank_0.log", "skyrl_rank_0@nodeA.log"]


def test_per_host_0_keeps_the_plain_name_on_a_network_fs(on_nfs, monkeypatch):
    monkeypatch.setenv("LOGCONF_PER_HOST", "0")
    logconf.apply()
    logging.getLogger("skyrl_train.trainer").info("x")
    assert [p.name for p in on_nfs.iterdir()] == ["skyrl_rank_0.log"]


def test_a_template_that_names_the_host_gets_it_once(on_nfs, monkeypatch):
    monkeypatch.setenv("LOGCONF_HOSTNAME", "nodeA")
    path = logconf.handlers.plan_rank_file("${LOGCONF_DIR}", "{hostname}-vllm_rank_0.log")
    assert os.path.basename(path) == "nodeA-vllm_rank_0.log"


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("LOGCONF_PER_HOST", "maybe", "not a per-host mode (got 'maybe'); use auto, 1 or 0"),
        ("LOGCONF_HOSTNAME", "a/b", "is not usable as a host name in file names (got 'a/b')"),
        ("LOGCONF_HOSTNAME", "a@b", "is not usable as a host name in file names (got 'a@b')"),
    ],
)
def test_a_bad_setting_is_refused_by_name(on_nfs, monkeypatch, variable, value, problem):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        logconf.apply()
    assert problem in str(caught.value)
    assert (variable == "LOGCONF_PER_HOST") == ("per_host" in str(caught.value))
    assert not on_nfs.exists() or list(on_nfs.iterdir()) == []


def _cut_short_then_log(logdir, name: str) -> bytes:
    """Leave another writer's record cut short at the file's end, then log one record; return the file."""
    logdir.mkdir(exist_ok=True)
    head = b"2026-11-26T09:00:00.000Z INFO rank=0 EngineCore[9] vllm.engine: cut sh"
    (logdir / name).write_bytes(head)
    load_like_vllm()
    logging.getLogger("vllm.engine").info("next")
    return (logdir / name).read_bytes()


def test_the_cut_short_repair_runs_on_a_local_fs(logdir):
    data = _cut_short_then_log(logdir, "vllm_rank_0.log")
    assert data.startswith(b"2026-11-26T09:00:00.000Z INFO rank=0 EngineCore[9] vllm.engine: cut s\n")


def test_the_cut_short_repair_never_writes_into_a_file_shared_by_hosts(on_nfs, monkeypatch):
    """Per-host names off on a network fs: the byte before our record may be another host's; it is left alone."""
    monkeypatch.setenv("LOGCONF_PER_HOST", "0")
    data = _cut_short_then_log(on_nfs, "vllm_rank_0.log")
    assert data.startswith(b"2026-11-26T09:00:00.000Z INFO rank=0 EngineCore[9] vllm.engine: cut sh20")


def test_the_cut_short_repair_runs_in_a_per_host_file(on_nfs, monkeypatch):
    monkeypatch.setenv("LOGCONF_HOSTNAME", "nodeA")
    data = _cut_short_then_log(on_nfs, "vllm_rank_0@nodeA.log")
    assert data.startswith(b"2026-11-26T09:00:00.000Z INFO rank=0 EngineCore[9] vllm.engine: cut s\n")


def _check_two_hosts_read_as_rank_0(directory) -> None:
    names = [os.path.basename(p) for p in rank_files(str(directory))]
    assert names == ["vllm_rank_0@nodeA.log", "vllm_rank_0@nodeB.log"]
    done = subprocess.run(logwriters.logconf_cli("summary", str(directory), "--json"), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads(done.stdout)["files"]
    assert [(r["file"], r["rank"], r["host"], r["records"], r["lines"], r["other_rank"]) for r in rows] == [
        ("vllm_rank_0@nodeA.log", "0", "nodeA", ENGINE_RECORDS, ENGINE_LINES, 0),
        ("vllm_rank_0@nodeB.log", "0", "nodeB", ENGINE_RECORDS, ENGINE_LINES, 0),
    ]
    merged = subprocess.run(logwriters.logconf_cli("merge", str(directory), "--json"), capture_output=True, text=True)
    assert merged.returncode == 0, merged.stderr
    files = [json.loads(line)["file"] for line in merged.stdout.splitlines()]
    assert (files.count("vllm_rank_0@nodeA.log"), files.count("vllm_rank_0@nodeB.log")) == (ENGINE_RECORDS, ENGINE_RECORDS)
    tail = subprocess.run(logwriters.logconf_cli("tail", "-n", "100", str(directory)), capture_output=True, text=True)
    assert tail.returncode == 0, tail.stderr
    assert sum(" vllm_rank_0@node" in line for line in tail.stdout.splitlines()) == 2 * ENGINE_RECORDS


def test_two_hosts_on_one_network_dir_write_apart_and_read_as_rank_0(on_nfs, monkeypatch):
    """Rank 0 on two hosts: two files, and summary, merge and tail read both as rank 0 (no other-rank)."""
    _two_hosts(monkeypatch)
    _check_two_hosts_read_as_rank_0(on_nfs)


@pytest.mark.netfs_mount
def test_two_sshfs_clients_of_one_export_write_apart_and_read_as_rank_0(tmp_path, monkeypatch):
    """A real network filesystem: two SSHFS mounts of one directory, one per host, as two nodes would mount it."""
    why = missing_sshfs()
    if why:
        pytest.fail(f"a real network mount needs root, /dev/fuse, sshfs and sshd ({why}): {SSHFS_SETUP}")
    export = tmp_path / "export"
    export.mkdir()
    with sshfs_server(tmp_path) as (port, key):
        with (
            sshfs_mount(export, tmp_path / "mntA", port, key) as mnt_a,
            sshfs_mount(export, tmp_path / "mntB", port, key) as mnt_b,
        ):
            assert netfs.fs_type(str(mnt_a / "logs")) == "fuse.sshfs"
            _two_hosts(monkeypatch, (mnt_a / "logs", mnt_b / "logs"))
            _check_two_hosts_read_as_rank_0(mnt_b / "logs")
    _check_two_hosts_read_as_rank_0(export / "logs")
