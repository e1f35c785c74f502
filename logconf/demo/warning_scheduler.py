"""vLLM's scheduler, plus one Python warning at start: it runs in EngineCore (see hooks.py)."""

from __future__ import annotations

import warnings
from typing import Any

from vllm.v1.core.sched.scheduler import Scheduler

from logconf.demo.hooks import ENGINECORE_WARNING


class WarningScheduler(Scheduler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        warnings.warn(ENGINECORE_WARNING, UserWarning, stacklevel=1)
        super().__init__(*args, **kwargs)
