"""Load, check and apply logging configs; the paths of the two shipped files.

``apply()`` checks the whole config before ``dictConfig`` touches anything, and puts the
previous logging state back if ``dictConfig`` fails half-way, so a bad file never leaves a
process half-configured. ``check()`` runs the same checks without creating anything.
"""

from __future__ import annotations

import importlib
import logging
import logging.config
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from logconf import guard, loguru_bridge
from logconf import handlers as _handlers
from logconf.errors import ConfigError, applying
from logconf.formatters import make_formatter
from logconf.ranks import set_rank
from logconf.sources import load

__all__ = ["apply", "check", "load", "set_rank", "skyrl_config_path", "vllm_config_path"]

_PACKAGE = os.path.dirname(os.path.realpath(__file__))
_SECTIONS = ("formatters", "filters", "handlers")
_RANK_FILE = "logconf.handlers.RankFileHandler"


def _shipped(name: str) -> str:
    # In a wheel the files sit inside the package; in a source checkout, beside it.
    for candidate in (os.path.join(_PACKAGE, name), os.path.join(os.path.dirname(_PACKAGE), name)):
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(f"logconf's shipped {name} is missing from {_PACKAGE}; reinstall logconf")


def vllm_config_path() -> str:
    """Return the absolute path of the shipped ``vllm_logging.json``."""
    return _shipped("vllm_logging.json")


def skyrl_config_path() -> str:
    """Return the absolute path of the shipped ``skyrl_logging.yaml``."""
    return _shipped("skyrl_logging.yaml")


def _import(dotted: str, *, file: str, key: str) -> Any:
    module_name, _, attr = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr) if module_name else importlib.import_module(dotted)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(file, key, dotted, f"cannot import it: {exc}", "name an importable class or factory") from None


def _entries(config: Mapping[str, Any], section: str, file: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    entries = config.get(section, {})
    if not isinstance(entries, Mapping):
        raise ConfigError(file, section, type(entries).__name__, "is not a mapping")
    for name, entry in entries.items():
        if not isinstance(entry, Mapping):
            raise ConfigError(file, f"{section}.{name}", entry, "is not a mapping")
        yield str(name), entry


def _kwargs(entry: Mapping[str, Any]) -> dict[str, Any]:
    # What dictConfig passes to a "()" factory: every key but its own.
    return {k: v for k, v in entry.items() if k not in ("()", ".", "class", "formatter", "level", "filters")}


def check(config: Mapping[str, Any], file: str, *, create: bool = False) -> list[str]:
    """Check ``config`` completely and return the log files it would write.

    Every template is resolved, every class imported, every level and reference checked,
    and each log directory tested for writing (created when ``create`` is true).
    """
    version = config.get("version")
    if version != 1:
        raise ConfigError(file, "version", version, "unsupported or missing config version", "set version: 1")
    env = os.environ
    if env.get("VLLM_CONFIGURE_LOGGING") == "0" and env.get("VLLM_LOGGING_CONFIG_PATH"):
        raise ConfigError(
            file,
            "VLLM_CONFIGURE_LOGGING",
            "0",
            f"vLLM refuses VLLM_LOGGING_CONFIG_PATH={env['VLLM_LOGGING_CONFIG_PATH']} while it is told not to configure logging",
            "unset VLLM_CONFIGURE_LOGGING, or unset VLLM_LOGGING_CONFIG_PATH",
        )
    declared = {section: dict(_entries(config, section, file)) for section in _SECTIONS}
    files: list[str] = []
    with applying(file):
        for section, entries in declared.items():
            for name, entry in entries.items():
                key = f"{section}.{name}"
                target = entry.get("()") or entry.get("class")
                if target is None and section == "handlers":
                    raise ConfigError(file, key, dict(entry), "names no class", "add 'class' or '()'")
                if not isinstance(target, str):
                    continue  # formatters and filters default to logging's own classes
                which = "()" if "()" in entry else "class"
                factory = _import(target, file=file, key=f"{key}.{which}")
                if section == "handlers":
                    if "level" in entry:
                        _handlers.parse_level(entry["level"], file=file, key=f"{key}.level")
                    _refs(entry.get("formatter"), declared["formatters"], file, f"{key}.formatter")
                    for ref in entry.get("filters", []) or []:
                        _refs(ref, declared["filters"], file, f"{key}.filters")
                if target == _RANK_FILE:
                    files.append(_handlers.plan_rank_file(**_kwargs(entry), create=create))
                elif factory in (make_formatter, _handlers.ConsoleHandler):
                    factory(**_kwargs(entry))  # no side effects; resolves its templates
    loggers = dict(_entries(config, "loggers", file))
    if "root" in config:
        loggers = {**loggers, "<root>": config["root"]}
    for name, entry in loggers.items():
        key = "root" if name == "<root>" else f"loggers.{name}"
        if not isinstance(entry, Mapping):
            raise ConfigError(file, key, entry, "is not a mapping")
        if "level" in entry:
            _handlers.parse_level(entry["level"], file=file, key=f"{key}.level")
        for ref in entry.get("handlers", []) or []:
            _refs(ref, declared["handlers"], file, f"{key}.handlers")
    return files


def _refs(name: object, declared: Mapping[str, Any], file: str, key: str) -> None:
    if name is not None and name not in declared:
        raise ConfigError(
            file, key, name, "refers to nothing declared", "declare it, or use one of " + ", ".join(sorted(declared))
        )


def _snapshot() -> dict[str, tuple[Any, ...]]:
    loggers: dict[str, logging.Logger] = {"": logging.root}
    loggers.update((n, lg) for n, lg in logging.root.manager.loggerDict.items() if isinstance(lg, logging.Logger))
    return {n: (lg, lg.level, list(lg.handlers), lg.propagate, lg.disabled, list(lg.filters)) for n, lg in loggers.items()}


def _restore(saved: Mapping[str, tuple[Any, ...]]) -> None:
    for name, lg in list(logging.root.manager.loggerDict.items()):
        if isinstance(lg, logging.Logger) and name not in saved:
            lg.setLevel(logging.NOTSET)
            lg.handlers, lg.propagate, lg.disabled, lg.filters = [], True, False, []
    for lg, level, handlers, propagate, disabled, filters in saved.values():
        lg.setLevel(level)
        lg.handlers, lg.propagate, lg.disabled, lg.filters = handlers, propagate, disabled, filters


def apply(path: str | os.PathLike[str] | None = None) -> None:
    """Apply a logging config (default: the shipped ``skyrl_logging.yaml``) to this process.

    Safe to call any number of times and in any order with vLLM's own configuration: the
    config is checked first, and a failure leaves the previous configuration working.
    Loguru's records are forwarded into stdlib logging (:mod:`logconf.loguru_bridge`), now or
    when Loguru is imported, and frameworks that re-do their logging set-up later (SkyRL's
    workers, uvicorn's servers) are kept from undoing this one (:mod:`logconf.guard`,
    :mod:`logconf.integrations`).
    """
    file = os.path.abspath(path) if path is not None else skyrl_config_path()
    if "loguru" in sys.modules:
        loguru_bridge.register_levels()  # so that LOG_LEVEL=TRACE or SUCCESS passes the check
    config = load(file)
    check(config, file, create=True)
    saved = _snapshot()
    owned = guard.owned_root_handlers()
    guard.release_root()  # this config decides root's handlers now
    try:
        with applying(file):
            logging.config.dictConfig(config)
    except Exception as exc:
        _restore(saved)
        guard.own_root(owned)
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, ConfigError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            raise cause from exc
        raise ConfigError(file, "<dictConfig>", file, f"logging.config.dictConfig failed: {exc}") from exc
    guard.own_root(logging.root.handlers if "root" in config else ())
    guard.remember(config.get("loggers") or {})
    loguru_bridge.install()
    from logconf import exithint, integrations  # here: `import logconf` stays light for vLLM's processes

    integrations.install()
    exithint.install()  # a driver that dies of an uncaught exception points at the run's first error
