"""`logconf gather` on a real two-node Ray cluster: one real vLLM engine per node, the trainer on the head.

``python -m logconf.demo.multinode --hold`` starts two raylets on 127.0.0.1, each with its own
LOGCONF_DIR, runs the job and keeps the cluster up; the test then runs gather's --help examples
in bash against it, and reads the gathered directory with summary, merge and tail.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from lnavrun import assert_same_as_summary, counts, install_format
from reportcheck import check_page

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


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The job, run to its end on a two-node cluster that stays up: (its JSON line, bash runner, work dir)."""
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

        try:
            yield info, bash, work
        finally:
            job.stdin.write("done\n")
            job.stdin.close()
            job.wait(120)


def test_gather_brings_each_nodes_files_under_its_node_and_summary_counts_them_exactly(cluster):
    info, bash, work = cluster
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
            assert {k: v for k, v in copy.items() if k not in ("file", "node")} == {
                k: v for k, v in row.items() if k not in ("file", "node")
            }
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
    _, bash, work = cluster
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
    info, bash, work = cluster
    head, other = info["node_ids"]
    example = EXAMPLES[1].replace("10.0.0.5:6379", info["address"]).replace("/scratch/run42/logs", info["dirs"][0])
    done = bash(example.replace("run42-logs", "run42-dir"))
    assert done.returncode == 0, done.stdout + done.stderr
    gathered = work / "run42-dir"
    names = sorted(f"{socket.gethostname()}-{n[:8]}" for n in (head, other))
    sources = sorted(p.name for p in Path(info["dirs"][0]).iterdir())
    assert sorted(str(p.relative_to(gathered)) for p in gathered.glob("*/*")) == [f"{n}/{s}" for n in names for s in sources]
    shutil.rmtree(gathered)


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
    info, bash, work = cluster
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
