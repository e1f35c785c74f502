"""One measurement in a fresh interpreter: configure one logging setup, time N calls, report JSON.

``python bench/per_record.py CASE COUNT DIRECTORY [CPU]`` prints one JSON object on its last line:
``emit_s`` (the loop in the emitting thread), ``total_s`` (until every record is in the file,
closed and fsynced), ``cpu_s`` (the CPU time all threads of the process spent meanwhile) and
``lines`` (what the file holds). With CPU (a core number) the process,
and every thread it starts (Loguru's queue worker), runs on that one core only. Each case lives
in its own interpreter so that no setup leaks into the next one, and run.py interleaves them.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # measure the checkout this file lives in, not an installed copy

MESSAGE = "Added request %s-%d with %d tokens"  # what vLLM's engine logs per request
TEXT_FORMAT = "%(asctime)s %(levelname)s rank=0 %(processName)s[%(process)d] %(name)s: %(message)s"
LOGURU_FORMAT = "{time:YYYY-MM-DDTHH:mm:ss.SSS!UTC}Z {level} rank=0 {process.name}[{process.id}] {extra[name]}: {message}"


class _Setup:
    """What a case leaves behind: the logger to call, how to drain it, the file it writes."""

    def __init__(self, logger: logging.Logger, path: Path, drain: Callable[[], None] = logging.shutdown) -> None:
        self.logger, self.path, self.drain = logger, path, drain


def _load_like_vllm(file: str) -> None:
    with open(file, encoding="utf-8") as handle:
        logging.config.dictConfig(json.loads(handle.read()))


def logconf_vllm(directory: Path, fmt: str) -> _Setup:
    from logconf import vllm_config_path

    os.environ.update(LOGCONF_DIR=str(directory), LOGCONF_RANK="0", LOGCONF_FORMAT=fmt)
    _load_like_vllm(vllm_config_path())
    ext = "jsonl" if fmt == "json" else "log"
    return _Setup(logging.getLogger("vllm.v1.engine.async_llm"), directory / f"vllm_rank_0.{ext}")


def logconf_vllm_rotating(directory: Path, size: str) -> _Setup:
    """The shipped JSON, text, with LOGCONF_ROTATE_BYTES=size (logconf.rotation)."""
    os.environ["LOGCONF_ROTATE_BYTES"] = size
    return logconf_vllm(directory, "text")


def logconf_trainer(directory: Path) -> _Setup:
    import logconf

    os.environ.update(LOGCONF_DIR=str(directory), LOGCONF_RANK="0", LOGCONF_FORMAT="text")
    logconf.apply()
    return _Setup(logging.getLogger("skyrl_train.trainer"), directory / "skyrl_rank_0.log")


def stdlib_file(directory: Path, top: str = "vllm") -> _Setup:
    """The baseline: one stdlib FileHandler on ``top`` (``vllm``) with the same line format."""
    path = directory / "stdlib.log"
    formatter = logging.Formatter(TEXT_FORMAT)
    formatter.converter = time.gmtime  # type: ignore[assignment]
    formatter.default_time_format, formatter.default_msec_format = "%Y-%m-%dT%H:%M:%S", "%s.%03dZ"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(formatter)
    logger = logging.getLogger(top)
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    return _Setup(logging.getLogger(f"{top}.v1.engine.async_llm"), path)


def loguru_intercept(directory: Path, enqueue: bool) -> _Setup:
    """The replaced design: root -> InterceptHandler -> Loguru, which binds the stdlib name and filters on it."""
    from loguru import logger

    class InterceptHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                level: str | int = logger.level(record.levelname).name
            except ValueError:
                level = record.levelno
            frame, depth = logging.currentframe(), 2
            while frame is not None and frame.f_code.co_filename == logging.__file__:
                frame, depth = frame.f_back, depth + 1  # type: ignore[assignment]
            logger.bind(name=record.name).opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())

    path = directory / "loguru.log"
    logger.remove()
    logger.add(
        str(path),
        level="INFO",
        format=LOGURU_FORMAT,
        filter=lambda r: r["extra"].get("name", "").startswith("vllm"),
        enqueue=enqueue,
    )
    logging.root.handlers = [InterceptHandler()]  # as SkyRL's configure_ray_worker_logging() does
    logging.root.setLevel(logging.INFO)

    def drain() -> None:
        logger.complete()  # waits for the queue's worker to write what is enqueued
        logger.remove()  # closes (and flushes) the file sink

    return _Setup(logging.getLogger("vllm.v1.engine.async_llm"), path, drain)


def vllm_default(directory: Path) -> _Setup:
    """vLLM's default config shape: one StreamHandler on ``vllm``, ``propagate: False``."""
    path = directory / "stdout.log"
    stream = open(path, "a", encoding="utf-8")
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"vllm": {"format": "%(levelname)s %(asctime)s [%(filename)s:%(lineno)d] %(message)s"}},
        "handlers": {"vllm": {"class": "logging.StreamHandler", "formatter": "vllm", "level": "INFO", "stream": stream}},
        "loggers": {"vllm": {"handlers": ["vllm"], "level": "INFO", "propagate": False}},
    }
    logging.config.dictConfig(config)
    return _Setup(logging.getLogger("vllm.v1.engine.async_llm"), path)


def logconf_vllm_stdlib_json(directory: Path) -> _Setup:
    """JSON lines where msgspec is not installed: the standard library's json encodes them."""
    sys.modules["msgspec"] = None  # type: ignore[assignment]  # an import of msgspec now fails, as without it
    return logconf_vllm(directory, "json")


CASES: dict[str, Callable[[Path], _Setup]] = {
    "logconf-vllm-text": lambda d: logconf_vllm(d, "text"),
    "logconf-vllm-json": lambda d: logconf_vllm(d, "json"),
    "logconf-vllm-json-stdlib": logconf_vllm_stdlib_json,
    "logconf-vllm-text-rotation-armed": lambda d: logconf_vllm_rotating(d, "1G"),
    "logconf-vllm-text-rotating-1m": lambda d: logconf_vllm_rotating(d, "1M"),
    "logconf-trainer": logconf_trainer,
    "stdlib-filehandler": stdlib_file,
    "loguru-intercept": lambda d: loguru_intercept(d, enqueue=False),
    "loguru-intercept-enqueue": lambda d: loguru_intercept(d, enqueue=True),
    "disabled-logconf-vllm": lambda d: logconf_vllm(d, "text"),
    "disabled-vllm-default": vllm_default,
}


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def measure(case: str, count: int, directory: Path) -> dict[str, float | int]:
    setup = CASES[case](directory)
    log = setup.logger
    if case.startswith("disabled-"):
        debug = log.debug
        start = time.perf_counter()
        for i in range(count):
            debug(MESSAGE, "cmpl-7f3a", i, 128)
        emit = time.perf_counter() - start
        setup.drain()
        return {"emit_s": emit, "total_s": emit, "lines": sum(1 for _ in open(setup.path, "rb"))}
    info = log.info
    cpu, start = time.process_time(), time.perf_counter()
    for i in range(count):
        info(MESSAGE, "cmpl-7f3a", i, 128)
    emit = time.perf_counter() - start
    setup.drain()
    _fsync(setup.path)
    total = time.perf_counter() - start
    cpu = time.process_time() - cpu  # every thread of the process: Loguru's queue worker included
    with open(setup.path, "rb") as handle:
        lines = sum(1 for _ in handle)
    encoders = {getattr(h.formatter, "encoder", None) for h in logging.getLogger("vllm").handlers} - {None}
    return {"emit_s": emit, "total_s": total, "cpu_s": cpu, "lines": lines, "encoder": ",".join(sorted(encoders))}


if __name__ == "__main__":
    name, records, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    if len(sys.argv) > 4:
        os.sched_setaffinity(0, {int(sys.argv[4])})  # before any thread starts: they inherit it
    out.mkdir(parents=True, exist_ok=True)
    print(json.dumps({"case": name, "count": records, **measure(name, records, out)}))
