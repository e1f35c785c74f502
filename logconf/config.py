"""Load, check and apply logging configs; the paths of the two shipped files.

``apply()`` checks the whole config before ``dictConfig`` touches anything, and puts the
previous logging state back if ``dictConfig`` fails half-way, so a bad file never leaves a
process half-configured. ``check()`` runs the same checks without creating anything.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from logconf import guard, schema
from logconf import handlers as _handlers
from logconf.errors import ConfigError, applying
from logconf.formatters import make_formatter
from logconf.sources import building, load

__all__ = ["apply", "check", "lnav_format_path", "load", "skyrl_config_path", "vllm_config_path"]


def __getattr__(name: str) -> Any:
    if name == "set_rank":  # this module's name for it too; logconf.ranks loads where a rank is set
        from logconf.ranks import set_rank

        return set_rank
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_PACKAGE = os.path.dirname(os.path.realpath(__file__))
_SECTIONS = ("formatters", "handlers", "filters")  # handlers first: their files matter whether stdio is captured or not


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


def lnav_format_path() -> str:
    """Return the absolute path of the shipped lnav format (``lnav -i`` installs it)."""
    return _shipped("lnav_format.json")


def _import(dotted: str, *, file: str, key: str) -> Any:
    module_name, _, attr = dotted.rpartition(".")
    try:  # __import__, not importlib's: the importlib package is one more module for every applying process
        if not module_name:
            __import__(dotted)
            return sys.modules[dotted]
        __import__(module_name)
        return getattr(sys.modules[module_name], attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(file, key, dotted, f"cannot import it: {exc}", "name an importable class or factory") from None


def check(config: Mapping[str, Any], file: str, *, create: bool = False) -> list[str]:
    """Check ``config`` completely and return the log files it would write.

    Every key is checked against what ``dictConfig`` and the factory it names take
    (:mod:`logconf.schema`), every template resolved, every class imported, every level and
    reference checked, and each log directory tested for writing (created when ``create`` is true).
    """
    schema.check_top(config, file)
    env = os.environ
    if env.get("VLLM_CONFIGURE_LOGGING") == "0" and env.get("VLLM_LOGGING_CONFIG_PATH"):
        raise ConfigError(
            file,
            "VLLM_CONFIGURE_LOGGING",
            "0",
            f"vLLM refuses VLLM_LOGGING_CONFIG_PATH={env['VLLM_LOGGING_CONFIG_PATH']} while it is told not to configure logging",
            "unset VLLM_CONFIGURE_LOGGING, or unset VLLM_LOGGING_CONFIG_PATH",
        )
    declared = {section: schema.section(config, section, file) for section in _SECTIONS}
    files: list[str] = []
    with applying(file):
        for section, entries in declared.items():
            for name, entry in entries.items():
                with building(f"{section}.{name}"):
                    path = _check_entry(section, entry, declared, file, f"{section}.{name}", create)
                if path is not None:
                    files.append(path)
    loggers = schema.section(config, "loggers", file)
    if "root" in config:
        if not isinstance(config["root"], Mapping):
            raise ConfigError(file, "root", config["root"], "is not a mapping", "write root's keys under it: {level: WARNING}")
        loggers = {**loggers, "<root>": config["root"]}
    for name, entry in loggers.items():
        key = "root" if name == "<root>" else f"loggers.{name}"
        schema.check_logger(entry, file=file, key=key, root=name == "<root>")
        if "level" in entry:
            _handlers.parse_level(entry["level"], file=file, key=f"{key}.level")
        for section in ("handlers", "filters"):
            for ref in schema.names(entry.get(section), file=file, key=f"{key}.{section}", what=section[:-1]):
                schema.refer(ref, declared[section], file=file, key=f"{key}.{section}", section_name=section)
    return files


def _check_entry(
    section: str, entry: Mapping[str, Any], declared: Mapping[str, Any], file: str, key: str, create: bool
) -> str | None:
    """Check one formatter, filter or handler entry; return the log file it would write, if any."""
    which = "()" if "()" in entry else "class"
    target = entry.get(which)
    if which not in entry:
        schema.misspelt_target(entry, file=file, key=key)
        if section == "handlers":
            raise ConfigError(file, key, dict(entry), "names no class", "add 'class' or '()'")
    elif not callable(target) and not isinstance(target, str):
        raise ConfigError(
            file, f"{key}.{which}", target, "is not a class or factory", "name one by its dotted path: logging.StreamHandler"
        )
    factory = target if callable(target) else None if target is None else _import(target, file=file, key=f"{key}.{which}")
    plain = section != "handlers" and which == "class"  # logging's own Formatter or Filter calls, with their own keys
    label = target if isinstance(target, str) else repr(target)
    kwargs = schema.check_entry_keys(entry, section, file=file, key=key, factory=None if plain else factory, target=label)
    if section == "handlers":
        if "level" in entry:
            _handlers.parse_level(entry["level"], file=file, key=f"{key}.level")
        schema.refer(entry.get("formatter"), declared["formatters"], file=file, key=f"{key}.formatter", section_name="formatters")
        for ref in schema.names(entry.get("filters"), file=file, key=f"{key}.filters", what="filter"):
            schema.refer(ref, declared["filters"], file=file, key=f"{key}.filters", section_name="filters")
    if factory is _handlers.RankFileHandler:
        return _handlers.plan_rank_file(**kwargs, create=create)
    if factory in (make_formatter, _handlers.ConsoleHandler):
        factory(**kwargs)  # no side effects; resolves its templates
    elif getattr(factory, "__module__", None) == "logconf.capture" and getattr(factory, "__name__", None) == "install":
        from logconf import capture  # imported already: the config names it

        return capture.check_install(create=create, **kwargs)
    return None


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
    import logging.config  # here, not at the top: it loads logging.handlers, socket and pickle, which check() does not need

    file = os.path.abspath(path) if path is not None else skyrl_config_path()
    if "loguru" in sys.modules:  # the bridge is loaded where Loguru is, or when it is imported (logconf.integrations)
        from logconf import loguru_bridge

        loguru_bridge.register_levels()  # so that LOG_LEVEL=TRACE or SUCCESS passes the check
    config = load(file)
    with _handlers.planning():  # the rank file handlers that dictConfig makes take the plans that check() made
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
    if "loguru" in sys.modules:
        from logconf import loguru_bridge

        loguru_bridge.install()
    from logconf import integrations  # here: `import logconf` stays light for vLLM's processes

    integrations.install()  # Loguru's bridge when Loguru is imported later
    _hint_at_exit()  # a driver that dies of an uncaught exception points at the run's first error


_hinting_in: int | None = None


def _hint_at_exit() -> None:
    """Register the exit handler of :mod:`logconf.exithint` once per process; the module loads only where it acts."""
    global _hinting_in
    if _hinting_in != os.getpid():
        _hinting_in = os.getpid()
        atexit.register(_exit_hint, _hinting_in, time.time())


def _exit_hint(pid: int, applied_at: float) -> None:
    if pid == os.getpid() and getattr(sys, "last_value", None) is not None:  # an uncaught exception, maybe
        from logconf import exithint

        exithint.at_exit(applied_at)
