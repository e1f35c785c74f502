"""Code that tests run in child processes, and readers for what they wrote.

Child targets live here, in an importable module, because spawn children import them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.config
import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from logconf import vllm_config_path
from logconf.records import parse_line

TRAINER_LOGGERS = ("skyrl_train", "skyrl", "skyrl_gym", "harbor", "examples")


def needs_msgspec() -> None:
    """Fail, not skip, where msgspec is missing: every venv `make venvs` builds installs logconf[fast]."""
    try:
        import msgspec  # noqa: F401
    except ImportError:
        pytest.fail("msgspec is not installed here: run `make venvs` (it installs logconf[fast])")


def load_like_vllm(path: str | None = None) -> None:
    """Apply the JSON exactly as vLLM does: json.loads of the file, then dictConfig."""
    with open(path or os.environ.get("VLLM_LOGGING_CONFIG_PATH") or vllm_config_path(), encoding="utf-8") as file:
        config = json.loads(file.read())
    logging.config.dictConfig(config)


def read_records(path: Path) -> list[dict]:
    """Parse every line of a rank file; fail on any line that is not a whole record."""
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        record = parse_line(line)
        assert record is not None, f"{path.name}:{number} is not a logconf record: {line[:200]!r}"
        records.append(record)
    return records


def engine_child(rank: str, count: int, spawn_worker: bool) -> None:
    """Act as vLLM's EngineCore: load the JSON, log, and start a VllmWorker-0 grandchild."""
    import multiprocessing

    load_like_vllm()
    log = logging.getLogger("vllm.v1.engine.core")
    for i in range(count):
        log.info("engine rank=%s i=%d", rank, i)
    if spawn_worker:
        worker = multiprocessing.get_context("spawn").Process(target=worker_child, args=(rank, count), name="VllmWorker-0")
        worker.start()
        worker.join()
        assert worker.exitcode == 0


def worker_child(rank: str, count: int) -> None:
    load_like_vllm()
    log = logging.getLogger("vllm.v1.worker.cpu_worker")
    for i in range(count):
        log.info("worker rank=%s i=%d", rank, i)


def rank_group(rank: str, count: int, method: str) -> None:
    """One engine rank: an actor process that logs, then an EngineCore_DP0 child and its worker."""
    import multiprocessing

    os.environ["LOGCONF_RANK"] = rank
    load_like_vllm()
    log = logging.getLogger("vllm.entrypoints.llm")
    for i in range(count):
        log.info("actor rank=%s i=%d", rank, i)
    engine = multiprocessing.get_context(method).Process(target=engine_child, args=(rank, count, True), name="EngineCore_DP0")
    engine.start()
    engine.join()
    assert engine.exitcode == 0


def big_writer(tag: str, count: int, size: int) -> None:
    """Write ``count`` records of ``size`` bytes each, tagged so a checker can find tears."""
    load_like_vllm()
    log = logging.getLogger("vllm.stress")
    for i in range(count):
        body = (tag * (size // len(tag) + 1))[:size]
        log.info("%s %d %s END", tag, i, body)


class OutputReader(threading.Thread):
    """Collect a child's stdout lines without blocking the test."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self.stream, self.lines = stream, queue.Queue()

    def run(self) -> None:
        for line in self.stream:
            self.lines.put(line.rstrip("\n"))

    def until(self, done, timeout: float = 90.0) -> list[str]:
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while not done(seen) and time.monotonic() < deadline:
            try:
                seen.append(self.lines.get(timeout=0.5))
            except queue.Empty:
                pass
        return seen

    def rest(self) -> list[str]:
        """The lines still queued (call after the child exited and this thread ended)."""
        rest: list[str] = []
        while not self.lines.empty():
            rest.append(self.lines.get_nowait())
        return rest


@contextlib.contextmanager
def following(command: list[str], cwd: object) -> Iterator[tuple[subprocess.Popen, OutputReader]]:
    """Run a command that follows files (``tail -f``), its output read as it comes; stop it on the way out.

    Once the block is left the child has ended, so ``reader.rest()`` holds the last lines it printed.
    """
    with subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as child:
        reader = OutputReader(child.stdout)
        reader.start()
        try:
            yield child, reader
        finally:
            child.terminate()
            child.wait(30)
            reader.join(30)
