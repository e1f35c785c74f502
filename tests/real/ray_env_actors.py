"""Ray code for test_real_ray_env.py: an engine-like actor that loads vLLM's logging config, and its spawn child."""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys

import ray


def _load_vllm_config() -> None:
    """Configure logging as vLLM does in this process: at import up to 0.30, through LoggingConfig from 0.31."""
    import vllm.logger

    if hasattr(vllm.logger, "configure_logging_if_needed"):
        from vllm.config.logging import LoggingConfig

        vllm.logger.configure_logging_if_needed(LoggingConfig())


def report(who: str) -> dict:
    """Load vLLM's config here, log one record, and say what this process read and which logconf wrote it."""
    _load_vllm_config()
    logging.getLogger("vllm.probe").info("from %s", who)
    handlers = [h for h in logging.getLogger("vllm").handlers if type(h).__name__ == "RankFileHandler"]
    return {
        "config_path": os.environ.get("VLLM_LOGGING_CONFIG_PATH"),
        "handler_module": sys.modules[type(handlers[0]).__module__].__file__ if handlers else None,
        "handler_path": handlers[0].path if handlers else None,
    }


def _child(queue) -> None:
    queue.put(report("EngineCore"))


@ray.remote(num_cpus=0)
class Engine:
    def probe(self) -> dict:
        import logconf

        here = report("the actor")
        context = multiprocessing.get_context("spawn")  # as vLLM starts EngineCore inside a Ray actor
        queue = context.Queue()
        child = context.Process(target=_child, args=(queue,), name="EngineCore")
        child.start()
        child_report = queue.get(timeout=120)
        child.join(60)
        return {"actor": here, "child": child_report, "logconf": logconf.__file__, "shipped": logconf.vllm_config_path()}
