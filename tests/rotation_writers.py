"""Child-process targets for the rotation tests: the processes of a rank, appending to one rotating file.

Each child applies the shipped JSON as vLLM does, with rotation set by the environment it is
given, and writes records ``<tag> <i> <padding>``; the padding's length varies with ``i`` so that
records differ in size. The readers here use gzip and plain files directly (not logconf's tools).
"""

from __future__ import annotations

import collections
import gzip
import logging
import multiprocessing
import os
import re
import time
from pathlib import Path

from helpers import load_like_vllm

ROTATED = re.compile(r"(?P<live>.+\.(?:log|jsonl))\.(?P<stamp>\d{8}T\d{6}\.\d{3}Z)(?P<gz>\.gz)?")
RECORD = re.compile(
    r"\S+ INFO rank=(?P<rank>\S+) (?P<process>\S+)\[(?P<pid>\d+)\] vllm\.rot: (?P<tag>\S+) (?P<i>\d+) (?P<pad>x*)"
)


def padding(i: int) -> str:
    return "x" * (20 + (i * 37) % 160)


def writer(rank: str, tag: str, count: int, env: dict[str, str], pause_every: int = 0) -> None:
    """Apply the shipped JSON with ``env`` and log ``count`` tagged records; wait for this process's rotation work."""
    os.environ.update(env)
    os.environ["LOGCONF_RANK"] = rank
    load_like_vllm()
    log = logging.getLogger("vllm.rot")
    for i in range(count):
        log.info("%s %d %s", tag, i, padding(i))
        if pause_every and i % pause_every == pause_every - 1:
            time.sleep(0.001)
    settle()


def settle(timeout: float = 60.0) -> None:
    """Wait until this process's rotation thread has nothing left to do."""
    from logconf import rotation

    if rotation._WORKER is None or rotation._WORKER.pid != os.getpid():
        return
    deadline = time.monotonic() + timeout
    while not rotation.worker().idle() and time.monotonic() < deadline:
        time.sleep(0.02)


def family(rank: str, count: int, env: dict[str, str], idle_s: float = 0.0) -> None:
    """One engine rank: the actor starts EngineCore (which starts a worker), all three log ``count`` records.

    The actor then waits for its children, logging nothing, holding whatever file it last wrote:
    its rotation thread must let go of it, or that file could never be compressed. ``idle_s``
    keeps it idle that much longer before its last record.
    """
    os.environ.update(env)
    os.environ["LOGCONF_RANK"] = rank
    ctx = multiprocessing.get_context("spawn")
    core = ctx.Process(target=_core, args=(rank, count, env), name="EngineCore_DP0")
    core.start()
    writer(rank, f"a{rank}", count, env)
    time.sleep(idle_s)
    core.join(600)
    assert core.exitcode == 0
    logging.getLogger("vllm.rot").info("a%s %d %s", rank, count, padding(count))  # after idling: a fresh file
    settle()


def _core(rank: str, count: int, env: dict[str, str]) -> None:
    worker = multiprocessing.get_context("spawn").Process(target=writer, args=(rank, f"w{rank}", count, env), name="VllmWorker-0")
    worker.start()
    writer(rank, f"c{rank}", count, env)
    worker.join(600)
    assert worker.exitcode == 0


def set_files(directory: Path, live: str) -> list[Path]:
    """The files of one rank file's set in write order (rotated by their time stamp, then the live file), read
    with a regular expression of this module; a plain file with a compressed twin is skipped, as the tools do."""
    rotated = {}
    for path in directory.iterdir():
        match = ROTATED.fullmatch(path.name)
        if match and match["live"] == live and not (match["gz"] and (directory / path.name[:-3]).exists()):
            rotated[match["stamp"]] = path
    live_path = directory / live
    return [rotated[k] for k in sorted(rotated)] + ([live_path] if live_path.exists() else [])


def read_text(path: Path) -> str:
    if path.name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8") as file:
            return file.read()
    return path.read_text(encoding="utf-8")


class Tally:
    """Every record of a set: (tag, i) -> times seen, each tag's indices in file order, bad lines, other lines."""

    def __init__(self) -> None:
        self.seen: collections.Counter[tuple[str, int]] = collections.Counter()
        self.order: dict[str, list[int]] = collections.defaultdict(list)
        self.bad: list[str] = []
        self.other: list[str] = []  # whole records of other loggers (logconf.rotation's)
        self.writer: dict[str, tuple[str, int]] = {}  # tag -> the process name and pid that wrote it

    def read(self, directory: Path, live: str, rank: str) -> Tally:
        for path in set_files(directory, live):
            text = read_text(path)
            if text and not text.endswith("\n"):
                self.bad.append(f"{path.name}: last line unfinished")
            for line in text.splitlines():
                match = RECORD.fullmatch(line)
                if match is None:
                    (self.other if " logconf.rotation: " in line else self.bad).append(line)
                    continue
                i = int(match["i"])
                if match["rank"] != rank or match["pad"] != padding(i):
                    self.bad.append(line)
                    continue
                self.seen[(match["tag"], i)] += 1
                self.order[match["tag"]].append(i)
                self.writer[match["tag"]] = (match["process"], int(match["pid"]))
        return self
