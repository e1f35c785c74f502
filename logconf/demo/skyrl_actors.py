"""Worker-like Ray actors of the SkyRL job (``python -m logconf.demo.skyrl``); Ray workers import them from here.

Their ``__init__`` does what SkyRL's own worker ``__init__`` does
(``skyrl/backends/skyrl_train/workers/worker.py``): set ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK``, then call SkyRL's ``redirect_actor_output_to_file()`` (file descriptors 1 and 2
onto ``SKYRL_LOG_FILE``) and ``configure_ray_worker_logging()`` (Loguru to stderr, stdlib root
into Loguru). Nothing here touches logconf: the job's environment (``LOGCONF_AUTO=1``) is the
whole set-up. :meth:`SkyRLWorker.log_records` then logs a fixed set of tagged records whose
expected places a test can compute from :func:`planned_records`.
"""

from __future__ import annotations

import logging
import os
from typing import Any

LEVELS = ("DEBUG", "INFO", "WARNING")
# (how it is logged, logger name): Loguru records carry the name of a SkyRL module that logs with
# Loguru; the stdlib loggers are those of SkyRL's worker module and of skyrl_gym's search tool.
WORKER_LOGGERS = (
    ("loguru", "skyrl.train.trainer"),
    ("logging", "skyrl.backends.skyrl_train.workers.worker"),
    ("logging", "skyrl_gym.tools.search"),
)
DRIVER_LOGGERS = (
    ("logging", "skyrl.train.entrypoint"),
    ("loguru", "skyrl.train.entrypoint"),
)
DRIVER_LEVELS = ("INFO", "WARNING")


def tag(who: str, via: str, logger: str, level: str) -> str:
    """The whole message of one tagged record: unique per process, path, logger and level."""
    return f"logconf-skyrl-job {who} via {via} {logger} {level}"


def planned_records(who: str, loggers: tuple[tuple[str, str], ...], levels: tuple[str, ...]) -> list[dict[str, str]]:
    """Every tagged record ``who`` logs, in order: one per (path, logger) and level."""
    return [
        {"message": tag(who, via, name, level), "via": via, "logger": name, "level": level}
        for via, name in loggers
        for level in levels
    ]


def emit(records: list[dict[str, str]]) -> None:
    """Log each planned record through Loguru or stdlib logging, under its logger name."""
    from loguru import logger as loguru_logger

    def named(name: str) -> Any:
        # A Loguru record's name is the calling module's __name__; these carry a SkyRL module's.
        def rename(loguru_record: Any) -> None:
            loguru_record.update(name=name)

        return loguru_logger.patch(rename)

    for record in records:
        if record["via"] == "loguru":
            named(record["logger"]).log(record["level"], record["message"])
        else:
            logging.getLogger(record["logger"]).log(getattr(logging, record["level"]), record["message"])


class SkyRLWorker:
    """What SkyRL's ``Worker.__init__`` does about logging, and a method that logs known records."""

    def __init__(self, rank: int, world_size: int = 2) -> None:
        os.environ["WORLD_SIZE"] = str(world_size)
        os.environ["RANK"] = str(rank)
        os.environ["LOCAL_RANK"] = "0"
        self.rank = rank

        from skyrl.train.utils.ray_logging import redirect_actor_output_to_file  # type: ignore[import-not-found]
        from skyrl.train.utils.utils import configure_ray_worker_logging  # type: ignore[import-not-found]

        redirect_actor_output_to_file()
        configure_ray_worker_logging()

    def who(self) -> str:
        return f"{type(self).__name__}-rank{self.rank}"

    def log_records(self) -> dict[str, Any]:
        """Log the planned records; return them with this process's pid and class name."""
        from loguru import logger as loguru_logger

        records = planned_records(self.who(), WORKER_LOGGERS, LEVELS)
        emit(records)
        loguru_logger.complete()  # SkyRL's sink is enqueue=True: let its thread write before we return
        for handler in logging.getLogger().handlers:
            handler.flush()
        return {"class": type(self).__name__, "rank": self.rank, "pid": os.getpid(), "records": records}


class PolicyWorker(SkyRLWorker):
    """Stands for SkyRL's policy worker (rank 1 in the job, so its file differs from the driver's)."""


class RefWorker(SkyRLWorker):
    """Stands for SkyRL's reference-model worker (rank 0: shares skyrl_rank_0 with the driver)."""


def server_pids(server: Any) -> dict[str, Any]:
    """Run inside a VLLMServerActor (``__ray_call__``): its pid and the pids of its children."""
    import psutil  # type: ignore[import-untyped]

    del server
    me = psutil.Process()
    return {"pid": me.pid, "child_pids": sorted(p.pid for p in me.children(recursive=True))}
