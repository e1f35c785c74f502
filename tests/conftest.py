"""Fixtures shared by the unit tests: a clean environment and logging state per test."""

from __future__ import annotations

import logging
import os
import sys
import types
from pathlib import Path

import pytest
from helpers import needs_msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))

_ENV_PREFIXES = ("LOGCONF_", "VLLM_", "RANK", "LOG_LEVEL")


def _logger_state() -> dict[str, tuple]:
    loggers = {"": logging.root}
    loggers.update((n, lg) for n, lg in logging.root.manager.loggerDict.items() if isinstance(lg, logging.Logger))
    return {n: (lg, lg.level, list(lg.handlers), lg.propagate, lg.disabled, list(lg.filters)) for n, lg in loggers.items()}


@pytest.fixture(autouse=True)
def restore_logging():
    """Leave handlers, levels, propagate, disabled flags, the record factory, warnings capture,
    logconf's root guard and its import hook as found."""
    saved = _logger_state()
    factory = logging.getLogRecordFactory()
    showwarning = __import__("warnings").showwarning
    yield
    from logconf import guard, integrations

    guard.release_root()  # logconf's root guard would keep its handlers through the restore below
    integrations.uninstall()
    for name, state in _logger_state().items():
        if name not in saved:
            lg = state[0]
            for handler in lg.handlers:
                handler.close()
            lg.handlers, lg.propagate, lg.disabled, lg.filters = [], True, False, []
            lg.setLevel(logging.NOTSET)
    for lg, level, handlers, propagate, disabled, filters in saved.values():
        for handler in lg.handlers:
            if handler not in handlers:
                handler.close()
        lg.setLevel(level)
        lg.handlers, lg.propagate, lg.disabled, lg.filters = handlers, propagate, disabled, filters
    logging.setLogRecordFactory(factory)
    __import__("warnings").showwarning = showwarning


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path_factory):
    """Start every test without logconf, vLLM or rank variables from the outer environment, and with
    an empty YAML cache of its own (logconf.yamlcache), outside the host's home and tmp_path."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


@pytest.fixture
def logdir(tmp_path, monkeypatch) -> Path:
    """A fresh LOGCONF_DIR under tmp_path."""
    path = tmp_path / "logs"
    monkeypatch.setenv("LOGCONF_DIR", str(path))
    return path


class _Descriptor:
    class_name = "EngineActor"


class _RuntimeContext:
    current_actor = types.SimpleNamespace(_ray_actor_creation_function_descriptor=_Descriptor())

    def get_actor_id(self) -> str:
        return "a1b2c3"


@pytest.fixture
def unranked_actor(monkeypatch, logdir) -> Path:
    """This process as a Ray actor with no rank yet (a stand-in ``ray`` module): logconf holds what it logs."""
    fake = types.ModuleType("ray")
    fake.is_initialized = lambda: True  # type: ignore[attr-defined]
    fake.get_runtime_context = _RuntimeContext  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ray", fake)
    return logdir


@pytest.fixture(params=["msgspec", "json"])
def json_encoder(request, monkeypatch) -> str:
    """Each JSON encoder in turn, as the one JsonFormatter picks when not told (msgspec needs logconf[fast])."""
    from logconf import jsonlines

    if request.param == "msgspec":
        needs_msgspec()
    monkeypatch.setattr(jsonlines, "default_encoder", lambda: request.param)
    return request.param
