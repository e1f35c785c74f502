"""Ray actors for test_real_hold.py: vLLM engine actors that have no rank yet, so logconf holds what they log."""

from __future__ import annotations

import json
import logging
import logging.config
import os

import ray

import logconf


def apply_like_vllm() -> None:
    """Apply the shipped JSON as vLLM does (vllm.logger._configure_vllm_root_logger: json.loads, then dictConfig)."""
    with open(logconf.vllm_config_path(), encoding="utf-8") as file:
        logging.config.dictConfig(json.loads(file.read()))


@ray.remote(num_cpus=0)
class UnrankedEngine:
    """An engine actor that logs at start-up and is never told a rank."""

    def __init__(self, tag: str) -> None:
        apply_like_vllm()
        logging.getLogger("vllm.engine").info("%s: engine starting", tag)

    def pid(self) -> int:
        return os.getpid()


@ray.remote(num_cpus=0)
class ReconfiguredEngine:
    """An engine actor whose logging is configured again during the hold, then told its rank."""

    def __init__(self) -> None:
        apply_like_vllm()
        logging.getLogger("vllm.engine").info("before uvicorn")

    def run(self, rank: int) -> int:
        from uvicorn.config import LOGGING_CONFIG

        log = logging.getLogger("vllm.engine")
        logging.config.dictConfig(LOGGING_CONFIG)  # as uvicorn does when its server starts
        log.info("after uvicorn")
        apply_like_vllm()  # as vLLM >= 0.31 does again at engine creation
        log.info("after vLLM's config again")
        logconf.set_rank(rank)
        log.info("ranked")
        return os.getpid()
