"""Spawn-child targets that write rank files through the shipped configs, for the operator-tool tests.

Each child sets its own rank and format, then configures logging the way its process would in
a real run: vLLM's json.loads + dictConfig of vllm_logging.json, or the trainer's logconf.apply().
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from pathlib import Path

from helpers import load_like_vllm

import logconf

REPO = Path(__file__).resolve().parent.parent


def _setup(rank: str, fmt: str) -> None:
    os.environ["LOGCONF_RANK"] = rank
    os.environ["LOGCONF_FORMAT"] = fmt


def _fail_step(log: logging.Logger, step: int) -> None:
    try:
        raise RuntimeError(f"step {step} blew up")
    except RuntimeError:
        log.exception("step %d failed", step)


def engine_core(rank: str, fmt: str, infos: int) -> None:
    """vLLM's EngineCore child: ``infos`` INFO records, 1 WARNING, 1 ERROR with a traceback."""
    _setup(rank, fmt)
    load_like_vllm()
    log = logging.getLogger("vllm.v1.engine.core")
    for i in range(infos):
        log.info("core rank=%s i=%d", rank, i)
    log.warning("core rank=%s slow step", rank)
    _fail_step(log, 40)


def engine_rank(rank: str, fmt: str, infos: int) -> None:
    """One engine rank: the actor logs ``infos`` INFO records, then runs an EngineCore_DP0 spawn child."""
    _setup(rank, fmt)
    load_like_vllm()
    log = logging.getLogger("vllm.entrypoints.llm")
    for i in range(infos):
        log.info("actor rank=%s i=%d", rank, i)
    child = multiprocessing.get_context("spawn").Process(target=engine_core, args=(rank, fmt, infos), name="EngineCore_DP0")
    child.start()
    child.join(120)
    assert child.exitcode == 0


def trainer(rank: str, fmt: str, infos: int, foreign: int = 0) -> None:
    """The trainer: logconf.apply(), ``infos`` INFO records; ``foreign`` vLLM records leak in by misconfiguration."""
    _setup(rank, fmt)
    logconf.apply()
    log = logging.getLogger("skyrl_train.trainer")
    for i in range(infos):
        log.info("trainer step %d", i)
    if foreign:
        # A wrong config hangs the trainer's file handler on a vLLM logger: its records land in skyrl_rank_N.
        leak = logging.getLogger("vllm.leaked")
        leak.addHandler(logging.getLogger("skyrl_train").handlers[0])
        leak.setLevel(logging.INFO)
        for i in range(foreign):
            leak.info("leaked %d", i)


def at_fixed_time(rank: str, fmt: str, created: float, count: int) -> None:
    """Write ``count`` records that all carry the same timestamp, through the real handler and formatter."""
    _setup(rank, fmt)
    load_like_vllm()
    log = logging.getLogger("vllm.tie")
    for i in range(count):
        record = logging.makeLogRecord(
            {"name": log.name, "levelno": logging.INFO, "levelname": "INFO", "msg": f"tie rank={rank} i={i}", "created": created}
        )
        record.msecs = 0.0
        log.handle(record)


def at_times(rank: str, fmt: str, start: int, offsets_ms: list[int]) -> None:
    """Write record ``i`` (message ``i=<i>``) at ``start`` plus ``offsets_ms[i]`` milliseconds, in that order,
    through the real handler and formatter."""
    _setup(rank, fmt)
    load_like_vllm()
    log = logging.getLogger("vllm.order")
    for i, offset in enumerate(offsets_ms):
        record = logging.makeLogRecord({"name": log.name, "levelno": logging.INFO, "levelname": "INFO", "msg": f"i={i}"})
        record.created, record.msecs = start + offset // 1000, float(offset % 1000)
        log.handle(record)


def slow_engine(rank: str, fmt: str, count: int, pause: float) -> None:
    """Log ``count`` records ``pause`` seconds apart, the last one with a traceback."""
    import time

    _setup(rank, fmt)
    load_like_vllm()
    log = logging.getLogger("vllm.v1.engine.core")
    for i in range(count - 1):
        log.info("live rank=%s i=%d", rank, i)
        time.sleep(pause)
    _fail_step(log, count)


def run(target, *args, name: str = "EngineActor") -> None:
    """Run ``target(*args)`` in a spawn child and wait for it to succeed."""
    child = multiprocessing.get_context("spawn").Process(target=target, args=args, name=name)
    child.start()
    child.join(180)
    assert child.exitcode == 0, f"{target.__name__}{args} exited {child.exitcode}"


def logconf_cli(*args: str) -> list[str]:
    """The command line that runs this worktree's ``python -m logconf`` with ``args``."""
    return [sys.executable, "-m", "logconf", *args]


def loguru_trainer(rank: str, fmt: str) -> None:
    """The trainer with Loguru: TRACE to WARNING through logconf's bridge, and a stdlib level 15 with no name."""
    _setup(rank, fmt)
    os.environ["LOG_LEVEL"] = "TRACE"
    import loguru  # noqa: F401  (imported before apply(), as a trainer that uses it does)

    logconf.apply()
    steps = "from loguru import logger\nfor level in LEVELS:\n    logger.log(level, level.lower())"
    levels = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING")
    exec(compile(steps, "<skyrl_train.steps>", "exec"), {"__name__": "skyrl_train.steps", "LEVELS": levels})
    logging.getLogger("skyrl_train.trainer").log(15, "level fifteen")


def steady_writer(rank: str, stop: str, pause: float) -> None:
    """Log ``rec i`` every ``pause`` seconds until the file ``stop`` exists, then ``last``."""
    import time

    _setup(rank, "text")
    load_like_vllm()
    log = logging.getLogger("vllm.v1.engine.core")
    i = 0
    while not os.path.exists(stop):
        log.info("rec %d", i)
        i += 1
        time.sleep(pause)
    log.info("last")


def leaky(subsystem: str, rank: str, names: tuple[str, ...]) -> None:
    """A misconfigured process: its rank file's handler also hangs on each logger in ``names``, which logs once."""
    _setup(rank, "text")
    if subsystem == "vllm":
        load_like_vllm()
        handler = logging.getLogger("vllm").handlers[0]
    else:
        logconf.apply()
        handler = logging.getLogger("skyrl_train").handlers[0]
    for name in names:
        log = logging.getLogger(name)
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
        log.info("from %s", name)


def scripted(rank: str, fmt: str, script: tuple[tuple[int, str, str, str], ...], trainer: bool = False) -> None:
    """Write ``(second, logger, level, message)`` records at fixed times; an ERROR carries a traceback.

    Logging is set up as vLLM does it, or, with ``trainer``, as the trainer does (``logconf.apply()``).
    """
    _setup(rank, fmt)
    if trainer:
        logconf.apply()
    else:
        load_like_vllm()
    for second, name, level, message in script:
        exc_info = None
        if level == "ERROR":
            try:
                raise RuntimeError(f"{message} blew up")
            except RuntimeError:
                exc_info = sys.exc_info()
        record = logging.makeLogRecord(
            {"name": name, "levelno": logging.getLevelName(level), "levelname": level, "msg": message, "created": second}
        )
        record.msecs, record.exc_info = 0.0, exc_info
        logging.getLogger(name).handle(record)


def raw_errors(rank: str) -> None:
    """A vLLM process with its stdio copied (LOGCONF_CAPTURE_STDIO=1): a logged ERROR (its console line and
    traceback reach the copy), then a raw traceback printed to stderr and a C++-style fatal line, which no
    record holds."""
    import traceback

    _setup(rank, "text")
    os.environ["LOGCONF_CAPTURE_STDIO"] = "1"
    load_like_vllm()
    log = logging.getLogger("vllm.v1.engine.core")
    log.info("before the failures")
    _fail_step(log, 7)
    try:
        raise ValueError("raw failure outside logging")
    except ValueError:
        traceback.print_exc()
    sys.stderr.flush()
    os.write(2, b"terminate called after throwing an instance of 'c10::Error'\n")
    os.write(2, b"after the failures\n")  # on stderr too: the copy keeps one stream's order, not two streams'

