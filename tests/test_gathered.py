"""The directory gather fills: names that stay inside DEST, a subdirectory per node for the life of DEST, the manifest, modes.

What gather decides without Ray, on real directories under tmp_path; tests/real/test_real_multinode.py
runs the same decisions across a real Ray cluster whose nodes join, leave and die.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from logconf.gathered import (
    MANIFEST,
    NAME_MAX,
    NodeInfo,
    make_node_dir,
    node_dirs,
    rank_file_plan,
    read_manifest,
    safe_name,
    write_manifest,
)
from logconf.logfiles import LogDirError

A, B, C, D, E = ("a" * 56, "b" * 56, "c" * 56, "d" * 56, "e" * 56)
HOSTILE = [
    "..",
    ".",
    "",
    "a/b",
    "../../etc",
    "/",
    ".hidden",
    "x" * 300,
    "gpu\udcff1",
    "é-node",
    "a\nb",
    "logconf-gather.json",
    "-rf",
]


@pytest.mark.parametrize("host", HOSTILE, ids=lambda h: ascii(h)[:20])
def test_a_hostile_host_name_becomes_one_safe_component_inside_dest(tmp_path, host):
    dest = tmp_path / "dest"
    dest.mkdir()
    name = safe_name(host)
    assert name not in ("", ".", "..") and "/" not in name and not name.startswith(".")
    assert name.isascii() and name.isprintable() and len(name) <= NAME_MAX
    make_node_dir(str(dest / name), 0o750)
    assert [p.name for p in tmp_path.iterdir()] == ["dest"]  # nothing beside DEST
    assert os.path.realpath(dest / name) == str(dest / name)


def test_hostile_host_names_on_one_cluster_get_distinct_directories_inside_dest(tmp_path):
    """Names that sanitise alike (`..`, `.`, empty, `/`) and one that is the manifest's own name stay apart."""
    nodes = [NodeInfo(f"{i:02d}" + "f" * 54, host, "10.0.0.1", "/tmp/x") for i, host in enumerate(HOSTILE)]
    dirs = node_dirs(nodes, {})
    assert len(set(dirs.values())) == len(nodes)
    assert MANIFEST not in dirs.values() and MANIFEST + ".tmp" not in dirs.values()
    for name in dirs.values():
        assert name == safe_name(name) or name.startswith(safe_name(name)[:8])
        make_node_dir(str(tmp_path / name), 0o750)
    assert sorted(os.listdir(tmp_path)) == sorted(dirs.values())


def _entry(node: NodeInfo, when: str = "2026-11-26T09:00:00Z") -> dict:
    return {"node_id": node.node_id, "hostname": node.hostname, "ip": node.ip, "dir": node.dir, "gathered_at": when}


def _run(manifest: dict, nodes: list[NodeInfo], alive: tuple[str, ...] = ()) -> dict[str, str]:
    """One gather's naming, then its manifest entries added to ``manifest`` (as gather writes them)."""
    dirs = node_dirs(nodes, manifest, alive=alive, existing=list(manifest))
    manifest.update({dirs[n.node_id]: _entry(n) for n in nodes})
    return dirs


def test_a_node_keeps_its_directory_when_a_node_of_the_same_host_name_joins_and_when_one_leaves():
    """gpu-1 alone is `gpu-1`; a second gpu-1 (another IP) joins as `gpu-1-<ip>`; the first leaves, the second stays put."""
    first, second, other = (
        NodeInfo(A, "gpu-1", "10.0.0.1", "/l"),
        NodeInfo(B, "gpu-1", "10.0.0.2", "/l"),
        NodeInfo(C, "gpu-2", "10.0.0.3", "/l"),
    )
    manifest: dict = {}
    assert _run(manifest, [first, other]) == {A: "gpu-1", C: "gpu-2"}
    assert _run(manifest, [first, other, second]) == {A: "gpu-1", C: "gpu-2", B: "gpu-1-10.0.0.2"}
    assert _run(manifest, [second, other]) == {B: "gpu-1-10.0.0.2", C: "gpu-2"}
    third = NodeInfo(D, "gpu-1", "10.0.0.2", "/other")  # same host and IP as `second`, not its directory: a new node
    assert _run(manifest, [third]) == {D: f"gpu-1-{D[:8]}"}
    assert sorted(manifest) == sorted(["gpu-1", "gpu-1-10.0.0.2", "gpu-2", f"gpu-1-{D[:8]}"])


def test_nodes_that_share_host_and_ip_from_the_first_run_are_told_apart_by_node_id():
    assert node_dirs([NodeInfo(A, "vm", "127.0.0.1"), NodeInfo(B, "vm", "127.0.0.1")], {}) == {A: f"vm-{A[:8]}", B: f"vm-{B[:8]}"}


def test_a_restarted_raylet_continues_its_predecessors_directory_but_never_an_alive_nodes():
    """A new node id on the host, IP and directory of a node that is gone holds the same files: same subdirectory."""
    old = NodeInfo(A, "gpu-1", "10.0.0.1", "/tmp/logconf")
    manifest = {"gpu-1": _entry(old)}
    restarted = NodeInfo(B, "gpu-1", "10.0.0.1", "/tmp/logconf")
    assert node_dirs([restarted], manifest) == {B: "gpu-1"}
    assert node_dirs([restarted], manifest, alive=[A]) == {B: f"gpu-1-{B[:8]}"}  # `old` is alive, only not listed
    twice = [restarted, NodeInfo(C, "gpu-1", "10.0.0.1", "/tmp/logconf")]
    assert node_dirs(twice, manifest) == {B: "gpu-1", C: f"gpu-1-{C[:8]}"}
    moved = NodeInfo(D, "gpu-1", "10.0.0.1", "/scratch/logs")
    assert node_dirs([moved], manifest) == {D: f"gpu-1-{D[:8]}"}


def test_a_new_name_never_takes_one_that_dest_holds_whatever_its_case():
    """A stray directory (no manifest entry) and a name differing only in case (macOS) are not reused."""
    assert node_dirs([NodeInfo(A, "gpu-1", "10.0.0.1")], {}, existing=["gpu-1"]) == {A: f"gpu-1-{A[:8]}"}
    assert node_dirs([NodeInfo(A, "GPU-1", "10.0.0.1")], {}, existing=["gpu-1"]) == {A: f"GPU-1-{A[:8]}"}
    taken = ["gpu-1", f"gpu-1-{A[:8]}", f"gpu-1-{A}", f"gpu-1-{A}-2"]
    assert node_dirs([NodeInfo(A, "gpu-1", "10.0.0.1")], {}, existing=taken) == {A: f"gpu-1-{A}-3"}


def test_the_manifest_keeps_the_nodes_of_earlier_runs(tmp_path):
    """Run 1 gathers A and B, run 2 B and C: A stays listed; B's entry is run 2's."""
    write_manifest(str(tmp_path), {"gpu-a": {"node_id": A, "files": {"vllm_rank_0.log": 10}}, "gpu-b": {"node_id": B}}, 0o640)
    write_manifest(str(tmp_path), {"gpu-b": {"node_id": B, "failed": "why"}, "gpu-c": {"node_id": C}}, 0o640)
    document = json.loads((tmp_path / MANIFEST).read_text())
    assert document == {
        "schema": "logconf.gather/1",
        "nodes": {
            "gpu-a": {"node_id": A, "files": {"vllm_rank_0.log": 10}},
            "gpu-b": {"node_id": B, "failed": "why"},
            "gpu-c": {"node_id": C},
        },
    }
    assert read_manifest(str(tmp_path)) == document["nodes"]
    assert node_dirs([NodeInfo(A, "renamed", "10.9.9.9")], read_manifest(str(tmp_path))) == {A: "gpu-a"}
    assert read_manifest(str(tmp_path / "new")) == {}


def test_the_manifest_is_no_more_readable_than_file_mode(tmp_path):
    old = os.umask(0o022)
    try:
        (tmp_path / MANIFEST).write_text('{"nodes": {}}')  # an older gather's, world-readable
        write_manifest(str(tmp_path), {}, 0o600)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / MANIFEST).stat().st_mode) == 0o600


@pytest.mark.parametrize("text", ["{not json", '["a list"]', '{"nodes": []}', '{"nodes": {"x": 1}}'])
def test_a_manifest_gather_cannot_read_is_refused_rather_than_forgotten(tmp_path, text):
    """Forgetting it would give nodes new subdirectories, and merge would print their records twice."""
    (tmp_path / MANIFEST).write_text(text)
    with pytest.raises(LogDirError, match=f"{tmp_path / MANIFEST}: .*restore it, or gather into a new directory"):
        read_manifest(str(tmp_path))


def test_a_node_directory_is_no_more_open_than_its_mode_and_a_link_there_is_refused(tmp_path):
    old = os.umask(0o022)
    try:
        make_node_dir(str(tmp_path / "new"), 0o750 & 0o700)
        (tmp_path / "older").mkdir(mode=0o755)
        make_node_dir(str(tmp_path / "older"), 0o750)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "older").stat().st_mode) == 0o750
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "planted").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        make_node_dir(str(tmp_path / "planted"), 0o750)


def test_the_default_directory_and_modes_come_from_the_shipped_config(monkeypatch, tmp_path):
    """One place: the shipped rank handler's templates, read in this environment, as a handler would read them."""
    monkeypatch.setenv("LOGCONF_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("LOGCONF_FILE_MODE", "0600")
    plan = rank_file_plan()
    assert (os.path.dirname(plan.path), plan.file_mode, plan.dir_mode) == (str(tmp_path / "mine"), 0o600, 0o750)
    monkeypatch.delenv("LOGCONF_DIR")
    assert not os.path.dirname(rank_file_plan().path).startswith(str(tmp_path))
