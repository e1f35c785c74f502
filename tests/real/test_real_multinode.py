"""`logconf gather` on a real two-node Ray cluster: one real vLLM engine per node, the trainer on the head.

``python -m logconf.demo.multinode --hold`` starts two raylets on 127.0.0.1, each with its own
LOGCONF_DIR, runs the job and keeps the cluster up; the test then runs gather's --help examples
in bash against it, and reads the gathered directory with summary, merge and tail. The last tests
add nodes to the same cluster (each raylet with its own LOGCONF_DIR and LOGCONF_HOSTNAME), and
make them leave, restart and die, while gather runs again and again.
"""

from __future__ import annotations

import calendar
import json
import os
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from lnavrun import assert_same_as_summary, counts, install_format
from logwriters import run, scripted
from reportcheck import check_page

from logconf.summary import summarise

from .demo_runs import MODEL, REPO, vllm_python

pytestmark = pytest.mark.real_vllm

STEPS = 2
PROMPTS = 2  # per engine and step (the demo trainer's prompts_per_engine)
# The trainer's records: "trainer ready", per step one rollout line per prompt and engine, the
# step's reward and its weight sync, the reward model's failure at step 1, then "training finished".
TRAINER_RECORDS = 1 + STEPS * (2 * PROMPTS + 2) + 1 + 1
REPORT_EXAMPLE = "logconf gather run42-logs -q && logconf report run42-logs -o run42.html --quiet-s 300"  # report --help
EXAMPLES = [
    "logconf gather run42-logs && logconf summary run42-logs",
    "logconf gather run42-logs --address 10.0.0.5:6379 --dir /scratch/run42/logs",
]


def _summary(directory: Path) -> dict:
    done = subprocess.run(
        [str(vllm_python("0.32.0")), "-m", "logconf", "summary", str(directory), "--json"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


class Held(NamedTuple):
    """The held cluster: the job's JSON line, a bash runner, the work directory, and ``command`` (see multinode.hold)."""

    info: dict[str, Any]
    bash: Callable[[str], subprocess.CompletedProcess[str]]
    work: Path
    command: Callable[[str], dict[str, Any]]
    env: dict[str, str]  # the bash runner's environment


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The job, run to its end on a two-node cluster that stays up (Held)."""
    python = vllm_python("0.32.0")
    work = tmp_path_factory.mktemp("multinode")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "VLLM_", "RAY_ADDRESS"))}
    env.update(PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    command = [str(python), "-m", "logconf.demo.multinode", "--out", str(work / "nodes"), "--model", str(MODEL), "--hold"]
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "text": True}
    with open(work / "job.log", "w") as log, subprocess.Popen(command, cwd=REPO, env=env, stderr=log, **pipes) as job:
        assert job.stdin is not None and job.stdout is not None
        line = job.stdout.readline()
        assert line, f"the job ended without its result line:\n{(work / 'job.log').read_text()[-6000:]}"
        info = json.loads(line)
        shell_env = {**env, "PATH": f"{python.parent}{os.pathsep}{env['PATH']}", "RAY_ADDRESS": info["address"]}
        shell_env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # keep 127.0.0.1 (see logconf.demo.multinode)

        def bash(script: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(["bash", "-c", script], cwd=work, env=shell_env, capture_output=True, text=True, timeout=300)

        def command(line: str) -> dict[str, Any]:
            assert job.stdin is not None and job.stdout is not None
            job.stdin.write(line + "\n")
            job.stdin.flush()
            answer = job.stdout.readline()
            while answer and not answer.startswith("{"):  # Ray prints what its daemons say to the driver's stdout
                answer = job.stdout.readline()
            assert answer, f"the held cluster ended at {line!r}:\n{(work / 'job.log').read_text()[-6000:]}"
            return json.loads(answer)

        try:
            yield Held(info, bash, work, command, shell_env)
        finally:
            job.stdin.write("done\n")
            job.stdin.close()
            job.wait(120)


def test_gather_brings_each_nodes_files_under_its_node_and_summary_counts_them_exactly(cluster):
    info, bash, work = cluster[:3]
    head, other = info["node_ids"]
    names = {node_id: f"{socket.gethostname()}-{node_id[:8]}" for node_id in (head, other)}  # one host, one IP
    done = bash(EXAMPLES[0])
    assert done.returncode == 0, done.stdout + done.stderr
    gathered = work / "run42-logs"
    expected = {
        f"{names[head]}/skyrl_rank_0.log",
        f"{names[head]}/vllm_rank_0.log",
        f"{names[other]}/vllm_rank_1.log",
    }
    assert {str(p.relative_to(gathered)) for p in gathered.glob("*/*")} == expected
    for node_id, directory in zip((head, other), info["dirs"], strict=True):
        for source in Path(directory).iterdir():
            assert (gathered / names[node_id] / source.name).read_bytes() == source.read_bytes()
    document = _summary(gathered)
    assert document["ok"] is True
    files = {f["file"]: f for f in document["files"]}
    assert files[f"{names[head]}/skyrl_rank_0.log"]["records"] == TRAINER_RECORDS
    # Each node's rows are exactly what that node's own directory says, and the totals add up per node.
    for node_id, directory in zip((head, other), info["dirs"], strict=True):
        own = _summary(Path(directory))
        for row in own["files"]:
            copy = files[f"{names[node_id]}/{row['file']}"]
            named = ("file", "node", "parts", "too_long_places")  # the copy names its files node/file
            assert {k: v for k, v in copy.items() if k not in named} == {k: v for k, v in row.items() if k not in named}
            assert copy["parts"] == [f"{names[node_id]}/{part}" for part in row["parts"]]
            assert copy["node"] == names[node_id]
        assert document["nodes"][names[node_id]] == own["totals"]
    assert {rank: row["nodes"] for rank, row in document["ranks"].items()} == {
        "skyrl_rank_0.log": [names[head]],
        "vllm_rank_0.log": [names[head]],
        "vllm_rank_1.log": [names[other]],
    }
    # The engines' files hold their own actor's records, on their own node.
    for rank, node_id in ((0, head), (1, other)):
        processes = files[f"{names[node_id]}/vllm_rank_{rank}.log"]["processes"]
        assert f"EngineActor:{info['engine_actor_pids'][rank]}" in processes
    assert done.stdout.splitlines()[-1] == (
        f"3 files, {document['totals']['records']} records, {document['totals']['lines']} lines: ok"
    )


def test_gather_again_copies_nothing_twice_and_merge_and_tail_show_each_records_node(cluster):
    _, bash, work = cluster[:3]
    gathered = work / "run42-logs"
    before = _summary(gathered)["totals"]
    again = bash("logconf gather run42-logs")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == f"0 bytes copied into {gathered}"
    assert _summary(gathered)["totals"] == before
    merged = bash("logconf merge run42-logs --json")
    records = [json.loads(line) for line in merged.stdout.splitlines()]
    assert len(records) == before["records"]
    assert [r["time"] for r in records] == sorted(r["time"] for r in records)
    nodes_of = {r["file"].split("/")[0] for r in records}
    assert len(nodes_of) == 2
    tail = bash("logconf tail run42-logs -n 3 --json")
    assert [json.loads(line) for line in tail.stdout.splitlines()] == records[-3:]


def test_gather_with_dir_reads_that_directory_on_every_node(cluster):
    """The second help example: --dir names the directory on every node (here both nodes see node 0's)."""
    info, bash, work = cluster[:3]
    head, other = info["node_ids"]
    example = EXAMPLES[1].replace("10.0.0.5:6379", info["address"]).replace("/scratch/run42/logs", info["dirs"][0])
    done = bash(example.replace("run42-logs", "run42-dir"))
    assert done.returncode == 0, done.stdout + done.stderr
    gathered = work / "run42-dir"
    names = sorted(f"{socket.gethostname()}-{n[:8]}" for n in (head, other))
    sources = sorted(p.name for p in Path(info["dirs"][0]).iterdir())
    assert sorted(str(p.relative_to(gathered)) for p in gathered.glob("*/*")) == [f"{n}/{s}" for n in names for s in sources]
    shutil.rmtree(gathered)


T0 = calendar.timegm((2026, 11, 26, 10, 0, 0))


def _write(directory: Path, rank: str, messages: list[str], monkeypatch, start: int = T0) -> None:
    """Write real records into ``directory``'s rank file (the shipped config, in a spawn child)."""
    monkeypatch.setenv("LOGCONF_DIR", str(directory))
    run(scripted, rank, "text", tuple((start + i, "vllm.engine", "INFO", m) for i, m in enumerate(messages)))


def _nodes(dest: Path) -> dict[str, dict[str, Any]]:
    return json.loads((dest / "logconf-gather.json").read_text())["nodes"]


def _owners(dest: Path) -> dict[str, str]:
    """Node id -> its subdirectory, as DEST's manifest records it."""
    return {entry["node_id"]: name for name, entry in _nodes(dest).items()}


def _add(command: Callable[[str], dict[str, Any]], **env: str) -> str:
    return command("add " + json.dumps(env))["node_id"]


def test_a_node_keeps_its_directory_while_nodes_of_its_host_name_join_leave_and_restart(cluster, tmp_path, monkeypatch):
    """Raylets that call themselves gpu-c (LOGCONF_HOSTNAME): the first keeps `gpu-c` when a second joins, the second
    keeps its own when the first leaves, and the first's restart (new node id, same directory) continues `gpu-c`.
    After every gather, merge prints each record of every node's own files exactly once."""
    bash, work, command = cluster.bash, cluster.work, cluster.command
    dirs = {"c": tmp_path / "c", "d": tmp_path / "d"}
    _write(dirs["c"], "7", ["c0", "c1"], monkeypatch)
    _write(dirs["d"], "8", ["d0"], monkeypatch)
    dest = work / "changing"
    added = []

    def add(directory: Path) -> str:
        added.append(_add(command, LOGCONF_DIR=str(directory), LOGCONF_HOSTNAME="gpu-c"))
        return added[-1]

    def gather() -> dict[str, str]:
        done = bash("logconf gather changing -q")
        assert done.returncode == 0, done.stdout + done.stderr
        nodes = _nodes(dest)
        own = sum(s.records for e in nodes.values() for s in summarise(e["dir"]))
        merged = bash("logconf merge changing --json").stdout.splitlines()
        assert len(merged) == own, f"merge printed {len(merged)} records, the nodes' own files hold {own}"
        return _owners(dest)

    try:
        first_c = add(dirs["c"])
        first = gather()
        assert first[first_c] == "gpu-c"
        second_d = add(dirs["d"])
        second = gather()
        assert {node: second[node] for node in first} == first
        assert second[second_d] == f"gpu-c-{second_d[:8]}"
        command(f"remove {first_c}")
        added.remove(first_c)
        assert gather() == second  # the node that left keeps its entry and its subdirectory
        _write(dirs["c"], "7", ["c2"], monkeypatch, T0 + 10)
        restarted = add(dirs["c"])
        fourth = gather()
        assert fourth[restarted] == "gpu-c" and fourth[second_d] == second[second_d]
        merged = bash("logconf merge changing --json").stdout.splitlines()
        assert [json.loads(line)["message"] for line in merged if json.loads(line)["file"].startswith("gpu-c/")] == [
            "c0",
            "c1",
            "c2",
        ]
    finally:
        for node in added:
            command(f"remove {node}")


def test_a_node_named_dotdot_with_a_planted_link_is_gathered_inside_dest_no_more_readable_than_its_files(
    cluster, tmp_path, monkeypatch
):
    """LOGCONF_HOSTNAME `../x` plus a byte that is not UTF-8: its subdirectory is `_x_`, inside DEST; the link to a
    secret is reported, not followed; copies and subdirectory keep the node's modes, capped by 0640 and 0750 (the
    shipped file_mode and dir_mode), and DEST itself is made 0750 under umask 022."""
    work, command = cluster.work, cluster.command
    node_dir = tmp_path / "h"
    _write(node_dir, "5", ["h5"], monkeypatch)
    monkeypatch.setenv("LOGCONF_FILE_MODE", "0600")
    _write(node_dir, "6", ["h6"], monkeypatch)
    (node_dir / "vllm_rank_5.log").chmod(0o644)  # opened up by hand on the node: the copy still gets 0640
    node_dir.chmod(0o700)
    secret = tmp_path / "secret.txt"
    secret.write_text("do not gather\n")
    (node_dir / "vllm_rank_4.log").symlink_to(secret)
    (work / "hostile").mkdir()
    node = _add(command, LOGCONF_DIR=str(node_dir), LOGCONF_HOSTNAME="../x\udcff")
    try:
        done = cluster.bash("cd hostile && umask 022 && logconf gather dest -q")
    finally:
        command(f"remove {node}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert os.listdir(work / "hostile") == ["dest"]
    dest = work / "hostile" / "dest"
    name = _owners(dest)[node]
    assert name == "_x_"
    assert _nodes(dest)[name]["hostname"] == "../x\udcff"
    assert sorted(os.listdir(dest / name)) == ["vllm_rank_5.log", "vllm_rank_6.log"]
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (dest, dest / name, *(dest / name).iterdir())}
    assert modes == {"dest": 0o750, name: 0o700, "vllm_rank_5.log": 0o640, "vllm_rank_6.log": 0o600}
    note = f"logconf gather: {name}/vllm_rank_4.log: not copied: a symbolic link to {secret}; gather does not follow links"
    assert note in done.stderr
    assert not [p for p in dest.rglob("*") if p.is_file() and b"do not gather" in p.read_bytes()]


def test_a_node_that_dies_during_gather_is_named_and_the_others_are_gathered(cluster, tmp_path, monkeypatch):
    """A node whose file (64 GiB, sparse) is still streaming is killed: gather finishes the other nodes, names the
    dead one and why on stderr, exits 1, and leaves its copy a prefix of the node's file. The held cluster answers
    the kill once Ray lists the node dead (it stays listed alive until its missed heartbeats are counted), so the
    tests after this one gather live nodes only."""
    info, work, command = cluster.info, cluster.work, cluster.command
    node_dir = tmp_path / "k"
    _write(node_dir, "9", ["k0"], monkeypatch)
    big = node_dir / "vllm_rank_9.log"
    head = big.read_bytes()
    with open(big, "r+b") as file:
        file.truncate(64 << 30)
        file.seek((64 << 30) - 1)
        file.write(b"\n")
    node = _add(command, LOGCONF_DIR=str(node_dir))
    host = socket.gethostname()
    copy = work / "dying" / f"{host}-{node[:8]}" / "vllm_rank_9.log"
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    with subprocess.Popen(["bash", "-c", "logconf gather dying --chunk-mib 1"], cwd=work, env=cluster.env, **pipes) as gatherer:
        deadline = time.monotonic() + 120
        while not (copy.exists() and copy.stat().st_size > 16 << 20):
            assert gatherer.poll() is None, gatherer.communicate()
            assert time.monotonic() < deadline, "the big file's copy did not start"
            time.sleep(0.05)
        command(f"kill {node}")
        out, err = gatherer.communicate(timeout=300)
    assert gatherer.returncode == 1, out + err
    assert f"logconf gather: {host}-{node[:8]}: FAILED: vllm_rank_9.log: NodeDiedError: " in err, err
    assert err.splitlines()[-1] == "logconf gather: 1 node(s) failed, the others are gathered; run gather again"
    for node_id, directory in zip(info["node_ids"], info["dirs"], strict=True):
        for source in Path(directory).iterdir():
            assert (work / "dying" / f"{host}-{node_id[:8]}" / source.name).read_bytes() == source.read_bytes()
    assert 16 << 20 < copy.stat().st_size < 64 << 30
    with open(copy, "rb") as file:
        assert file.read(len(head) + 4096) == head + bytes(4096)
    assert _nodes(work / "dying")[f"{host}-{node[:8]}"]["failed"].startswith("vllm_rank_9.log: NodeDiedError: ")


def test_importing_logconf_and_its_command_line_imports_no_ray_where_ray_is_installed():
    """gather imports Ray only when it runs: `import logconf` and the CLI stay as light as before."""
    probe = "import sys, logconf, logconf.cli, logconf.gather; print(sorted(m for m in ('ray', 'vllm') if m in sys.modules))"
    done = subprocess.run(
        [str(vllm_python("0.32.0")), "-c", probe],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout) == (0, "[]\n"), done.stderr


def test_report_lnav_and_summary_top_read_the_gathered_run_as_summary_does(cluster, tmp_path):
    """On gather's DEST: the page's lanes are node/file and process, marks and records per file equal summary's,
    the first error is the trainer's on the head node; lnav and summary --top read the node directories too."""
    info, bash, work = cluster.info, cluster.bash, cluster.work
    head = f"{socket.gethostname()}-{info['node_ids'][0][:8]}"
    done = bash(REPORT_EXAMPLE)
    assert done.returncode == 0, done.stdout + done.stderr
    gathered = work / "run42-logs"
    summary = _summary(gathered)
    shown = check_page(work / "run42.html", summary)
    assert {n.attrs["data-file"].split("/")[0] for n in shown.select(cls="row lane")} == set(summary["nodes"])
    assert shown.find("stat-nodes").text().startswith("nodes 2 (")
    first = shown.find("first-error-text").text()
    assert first.startswith(f" {head}/skyrl_rank_0.log:") and "step 1: the reward model failed" in first, first
    home = tmp_path / "home"
    install_format(home)
    assert_same_as_summary(counts(home, [gathered / row["file"] for row in summary["files"]], gathered), summary)
    top = bash("logconf summary run42-logs --top 1")
    assert top.returncode == 0, top.stderr
    lines = top.stdout.splitlines()
    repeated = lines[lines.index("| file | count | first | last | level | logger | message |") :]
    rollouts = [line for line in repeated if line.startswith(f"| {head}/skyrl_rank_0.log | ")]
    assert len(rollouts) == 1 and rollouts[0].endswith("| INFO | harbor.rollout | engine <n> returned <n> tokens |")
    assert rollouts[0].split(" | ")[1] == str(STEPS * 2 * PROMPTS)
