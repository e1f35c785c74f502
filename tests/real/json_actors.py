"""Ray code for test_real_json_lines.py: a named engine actor that logs JSON lines through the shipped vLLM config,
counting what logconf asks Ray and the system about this process while it does."""

from __future__ import annotations

import json
import logging
import logging.config
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import ray

import logconf
from logconf import jsonlines, raycontext

MESSAGE = "Added request %s-%d with %d tokens"  # what vLLM's engine logs per request


def _counted(counts: Counter[str], name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        counts[name] += 1
        return function(*args, **kwargs)

    return call


def count_lookups() -> Counter[str]:
    """Count every per-process lookup from here on: Ray's runtime context, raycontext's readers, the host name."""
    counts: Counter[str] = Counter()
    ray.get_runtime_context = _counted(counts, "ray.get_runtime_context", ray.get_runtime_context)
    for name in ("context", "task_id_reader", "actor_class"):
        setattr(raycontext, name, _counted(counts, f"raycontext.{name}", getattr(raycontext, name)))
    jsonlines.host_name = _counted(counts, "host_name", jsonlines.host_name)
    return counts


@ray.remote(num_cpus=0)
class JsonEngine:
    """An engine actor that loads the shipped vllm_logging.json as vLLM does, then logs."""

    def __init__(self, records: int) -> None:
        self.init_task = ray.get_runtime_context().get_task_id()  # asked before counting starts
        self.counts = count_lookups()
        with open(logconf.vllm_config_path(), encoding="utf-8") as file:
            logging.config.dictConfig(json.loads(file.read()))  # as vllm.logger does
        self.built = dict(self.counts)
        self.log = logging.getLogger("vllm.v1.engine.async_llm")
        for i in range(records):
            self.log.info(MESSAGE, "init", i, 128)
        self.after_init = dict(self.counts)

    def run(self, records: int) -> dict[str, Any]:
        """Log ``records`` records in this method call; say what was looked up and which task this call is."""
        before = dict(self.counts)
        for i in range(records):
            self.log.info(MESSAGE, "run", i, 128)
        after = dict(self.counts)
        return {
            "built": self.built,
            "after_init": self.after_init,
            "before_run": before,
            "after_run": after,
            "init_task": self.init_task,
            "run_task": ray.get_runtime_context().get_task_id(),
            "pid": os.getpid(),
        }
