"""Opt-in extras of the demo job, for the capture and Loguru tests; nothing changes without them.

- ``LOGCONF_DEMO_ENGINECORE_WARNING=1``: each engine runs a scheduler subclass that raises a
  Python warning inside its EngineCore process (the scheduler lives there).
- ``LOGCONF_DEMO_LOGURU=1``: the trainer actor imports a module that logs with Loguru, as
  most SkyRL modules do, before it calls ``logconf.apply()``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType
from typing import Any

ENGINECORE_WARNING_ENV = "LOGCONF_DEMO_ENGINECORE_WARNING"
LOGURU_ENV = "LOGCONF_DEMO_LOGURU"
ENGINECORE_WARNING = "logconf demo: a Python warning raised inside EngineCore"
LOGURU_MODULE = "skyrl_train.loguru_demo"  # the name SkyRL's own modules would log under


def engine_kwargs() -> dict[str, Any]:
    """Extra AsyncEngineArgs for the engines: none unless LOGCONF_DEMO_ENGINECORE_WARNING=1."""
    if os.environ.get(ENGINECORE_WARNING_ENV) != "1":
        return {}
    return {"scheduler_cls": "logconf.demo.warning_scheduler.WarningScheduler"}


def loguru_module() -> ModuleType | None:
    """Import the Loguru-using trainer module under a skyrl_train name, if LOGCONF_DEMO_LOGURU=1."""
    if os.environ.get(LOGURU_ENV) != "1":
        return None
    if LOGURU_MODULE in sys.modules:
        return sys.modules[LOGURU_MODULE]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "loguru_steps.py")
    spec = importlib.util.spec_from_file_location(LOGURU_MODULE, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[LOGURU_MODULE] = module
    spec.loader.exec_module(module)
    return module
