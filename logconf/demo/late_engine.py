"""An engine actor that learns its rank late, in ``__init__``.

This module imports vLLM at the top, as many actor modules do. The class is wrapped with
``ray.remote(...)`` rather than decorated, so Ray's workers import this module by reference
and run that import before ``__init__``. vLLM <= 0.30 applies its logging config at that
import, before the rank is known; logconf holds those records, ``logconf.set_rank`` names
the rank, and the EngineCore started afterwards inherits it.
"""

from __future__ import annotations

import logging

import ray
import vllm  # noqa: F401  (imported for its side effect: vLLM <= 0.30 configures logging here)

import logconf
from logconf.demo.actors import _Engine

# Logged at import, before the rank is known: it must still land in this engine's file.
logging.getLogger("vllm.logconf_demo").info("engine module imported before its rank was known")


class LateRankEngine(_Engine):
    def __init__(self, model: str, rank: int) -> None:
        logconf.set_rank(rank)
        self._start(model)


LateRankEngineActor = ray.remote(LateRankEngine)
