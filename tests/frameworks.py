"""What training frameworks do to logging after logconf is applied, for tests that run without them.

``configure_ray_worker_logging`` is the body of SkyRL 0.4.0's function of that name
(``skyrl/train/utils/utils.py``; ``skyrl_train/utils/utils.py`` in 0.3), so that the fast suite
shows the generic behaviour on every Python version; tests/real/test_real_skyrl.py runs SkyRL's
own code. Run as a script, this module plays a worker: the first argument names the order.
"""

from __future__ import annotations

import logging
import os
import sys


def configure_ray_worker_logging() -> None:
    from loguru import logger

    level_name = os.getenv("LOG_LEVEL", "INFO").upper()
    logger.remove()
    logger.level("INFO", color="<bold><green>")
    logger.add(
        sys.stderr,
        colorize=True,
        level=level_name,
        enqueue=True,
        backtrace=False,
        diagnose=False,
        format="<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> | <level>{level: <8}</level> | "
        "<cyan>{name}</cyan>:<cyan>{function}</cyan>:<cyan>{line}</cyan> - <level>{message}</level>",
    )

    class _InterceptHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                level = logger.level(record.levelname).name
            except ValueError:
                level = record.levelno
            logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())

    logging.root.handlers = [_InterceptHandler()]
    logging.root.setLevel(getattr(logging, level_name, logging.INFO))


def loguru_from(module: str, level: str, message: str) -> None:
    """Log through Loguru as code in ``module`` does (a Loguru record's name is its module's)."""
    code = compile(f"from loguru import logger\nlogger.log({level!r}, {message!r})", f"<{module}>", "exec")
    exec(code, {"__name__": module})


# uvicorn 0.55's LOGGING_CONFIG (uvicorn/config.py), which uvicorn applies with dictConfig when a
# server starts without log_config. Its two formatters are uvicorn's classes
# (uvicorn.logging.DefaultFormatter, AccessFormatter), here logging.Formatter: uvicorn is not in
# the dev environment; tests/real/test_real_hold.py applies uvicorn's own dict.
UVICORN_LOGGING_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {"()": "logging.Formatter", "fmt": "%(levelname)s %(message)s"},
        "access": {"()": "logging.Formatter", "fmt": "%(levelname)s %(message)s"},
    },
    "handlers": {
        "default": {"formatter": "default", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
        "access": {"formatter": "access", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
    },
    "loggers": {
        "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO"},
        "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}


RECORDS = [
    # (how, logger, level, message)
    ("loguru", "skyrl.train.trainer", "DEBUG", "loguru debug"),
    ("loguru", "skyrl.train.trainer", "INFO", "loguru info"),
    ("loguru", "skyrl.train.trainer", "WARNING", "loguru warning"),
    ("stdlib", "skyrl.backends.skyrl_train.workers.worker", "DEBUG", "stdlib debug"),
    ("stdlib", "skyrl.backends.skyrl_train.workers.worker", "INFO", "stdlib info"),
    ("stdlib", "skyrl.backends.skyrl_train.workers.worker", "WARNING", "stdlib warning"),
    ("stdlib", "skyrl_gym.tools.search", "INFO", "gym info"),
    ("stdlib", "skyrl_gym.tools.search", "WARNING", "gym warning"),
    ("loguru", "skyrl_train.utils.utils", "INFO", "old layout info"),
]


def log_records() -> None:
    for how, name, level, message in RECORDS:
        if how == "loguru":
            loguru_from(name, level, message)
        else:
            logging.getLogger(name).log(getattr(logging, level), message)


def main(order: str) -> None:
    """A worker: RANK set, then SkyRL's set-up and logconf.apply() in ``order``, then records."""
    import logconf

    os.environ["RANK"] = "3"
    if order == "apply_first":
        logconf.apply()
        configure_ray_worker_logging()
    elif order == "framework_first":
        configure_ray_worker_logging()
        logconf.apply()
    elif order == "auto":  # LOGCONF_AUTO=1 applied logconf at interpreter start, before RANK
        configure_ray_worker_logging()
    else:
        raise SystemExit(f"unknown order {order!r}")
    log_records()
    from loguru import logger

    logger.complete()  # the framework's enqueued sink, if any, has written everything


if __name__ == "__main__":
    main(sys.argv[1])
