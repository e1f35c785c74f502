"""An engine actor that learns its rank late, in ``__init__``.

This module imports vLLM at the top, as many actor modules do. vLLM <= 0.30 applies its
logging config at that import, before the rank is known, so the handlers first resolve
rank 0; ``logconf.set_rank`` then moves them, and the EngineCore started afterwards
inherits the rank.
"""

from __future__ import annotations

import ray
import vllm  # noqa: F401  (imported for its side effect: vLLM <= 0.30 configures logging here)

import logconf
from logconf.demo.actors import _Engine


@ray.remote
class LateRankEngineActor(_Engine):
    def __init__(self, model: str, rank: int) -> None:
        logconf.set_rank(rank)
        self._start(model)
