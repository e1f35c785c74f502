"""What a logging config may hold: the keys ``dictConfig`` reads, their types, and each factory's arguments.

``dictConfig`` ignores a key it does not know (a misspelt ``loggers`` configures nothing, without a
word), hands every other key of a factory's entry to the factory, and fails deep inside with a bare
``TypeError`` when one is misspelt or missing. These checks refuse all of that before anything is
built, each with one :class:`~logconf.errors.ConfigError` that names the file, the key, the value
and what is valid (with the closest valid name when one is near). Arguments are read from each
factory's own signature (its code object: no ``inspect`` import), following a factory that passes
its ``**options`` on (:data:`PASSES_ON`).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from logconf.errors import ConfigError

__all__ = [
    "PASSES_ON",
    "arguments",
    "check_entry_keys",
    "check_logger",
    "check_top",
    "known",
    "misspelt_target",
    "names",
    "refer",
    "section",
]

TOP_KEYS = ("version", "formatters", "filters", "handlers", "loggers", "root", "incremental", "disable_existing_loggers")
LOGGER_KEYS = ("level", "handlers", "propagate", "filters")
ROOT_KEYS = ("level", "handlers", "filters")
# What dictConfig takes from an entry itself before it calls the class or factory with the rest.
OWN_KEYS = {"formatters": ("()", "."), "filters": ("()", "."), "handlers": ("()", "class", ".", "formatter", "level", "filters")}
QUEUE_KEYS = ("listener", "handlers", "respect_handler_level")  # a QueueHandler's, taken by dictConfig (3.12)
# The keys of an entry without "()" that dictConfig reads for logging.Formatter and logging.Filter.
PLAIN_KEYS = {"formatters": ("format", "datefmt", "style", "validate", "defaults", "class", "."), "filters": ("name",)}
# Factories that take **options and pass them on, and the callable whose signature names those options.
PASSES_ON = {
    "logconf.handlers.RankFileHandler": "logconf.handlers.FilePlan",
    "logconf.capture.install": "logconf.handlers.FilePlan",
}
_CO_VARKEYWORDS = 0x08  # inspect.CO_VARKEYWORDS, without importing inspect
_ARGUMENTS: dict[Any, tuple[list[str], list[str]] | None] = {}


def known(
    given: Iterable[object],
    valid: Iterable[str],
    *,
    file: str,
    key: str,
    what: str,
    values: Mapping[Any, Any],
    offered: Iterable[str] | None = None,
) -> None:
    """Refuse the first of ``given`` that is not in ``valid``, naming the closest of ``offered`` (default: ``valid``)."""
    valid = list(valid)
    for name in given:
        if name not in valid:
            choices = valid if offered is None else list(offered)
            raise ConfigError(file, f"{key}.{name}" if key else str(name), values[name], f"is not {what}", _offer(name, choices))


def _offer(name: object, valid: list[str], kind: str = "valid keys") -> str:
    import difflib  # here: only a bad config pays for it

    close = difflib.get_close_matches(str(name), valid, n=1, cutoff=0.6)
    listed = f"{kind}: {', '.join(valid)}" if valid else f"no {kind} here"
    return f"did you mean {close[0]!r}? {listed}" if close else listed


def check_top(config: Mapping[str, Any], file: str) -> None:
    """Check the top level: known keys, version 1, and the on/off keys' types."""
    known(config, TOP_KEYS, file=file, key="", what="a key of a logging config", values=config)
    version = config.get("version")
    if type(version) is not int or version != 1:
        raise ConfigError(file, "version", version, "unsupported or missing config version", "set version: 1")
    for name in ("incremental", "disable_existing_loggers"):
        if name in config and not isinstance(config[name], bool):
            raise ConfigError(file, name, config[name], "is not true or false", "use true or false")


def section(config: Mapping[str, Any], name: str, file: str) -> dict[str, Mapping[str, Any]]:
    """Return the entries of section ``name`` (``handlers``, ``loggers``...), each checked to be a mapping."""
    entries = config.get(name, {})
    if not isinstance(entries, Mapping):
        raise ConfigError(file, name, entries, "is not a mapping", f"map each name to its entry, write {{}}, or remove {name}")
    for entry_name, entry in entries.items():
        if not isinstance(entry, Mapping):
            raise ConfigError(file, f"{name}.{entry_name}", entry, "is not a mapping", "write the entry's keys under its name")
    return {str(entry_name): entry for entry_name, entry in entries.items()}


def names(value: object, *, file: str, key: str, what: str) -> list[str]:
    """Return a list of names (``handlers: [a, b]``); None is no names, as dictConfig takes it."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise ConfigError(file, key, value, f"is not a list of {what} names", f"write a list: [{what}_a, {what}_b]")
    return list(value)


def refer(name: object, declared: Mapping[str, Any], *, file: str, key: str, section_name: str) -> None:
    """Refuse a reference to an entry that ``section_name`` does not declare."""
    if name is None or (isinstance(name, str) and name in declared):
        return
    if not declared:
        raise ConfigError(file, key, name, "refers to nothing declared", f"declare it under {section_name}")
    import difflib

    close = difflib.get_close_matches(str(name), list(declared), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ConfigError(
        file, key, name, "refers to nothing declared", f"{hint}declare it, or use one of {', '.join(sorted(declared))}"
    )


def check_logger(entry: Mapping[str, Any], *, file: str, key: str, root: bool) -> None:
    """Check the keys of a logger entry (or root's) and the types of ``propagate``, ``handlers`` and ``filters``."""
    known(
        entry,
        ROOT_KEYS if root else LOGGER_KEYS,
        file=file,
        key=key,
        what="a key of " + ("root" if root else "a logger"),
        values=entry,
    )
    if "propagate" in entry and not isinstance(entry["propagate"], bool):
        raise ConfigError(file, f"{key}.propagate", entry["propagate"], "is not true or false", "use true or false")


def misspelt_target(entry: Mapping[str, Any], *, file: str, key: str) -> None:
    """Refuse a key of an entry without ``()`` or ``class`` that looks like a misspelling of one of them."""
    import difflib

    for name in entry:
        close = difflib.get_close_matches(str(name), ["()", "class"], n=1, cutoff=0.6)
        if close:
            raise ConfigError(file, f"{key}.{name}", entry[name], "is not a key dictConfig knows", f"did you mean {close[0]!r}?")


def check_entry_keys(
    entry: Mapping[str, Any], section_name: str, *, file: str, key: str, factory: Callable[..., Any] | None, target: str
) -> dict[str, Any]:
    """Check an entry's keys against what ``dictConfig`` and its factory (None: logging's own class) take.

    Returns the arguments ``dictConfig`` passes the factory (every key but its own).
    """
    own = OWN_KEYS[section_name]
    if section_name == "handlers" and _is_queue_handler(factory):
        own += QUEUE_KEYS
    if factory is None:
        known(
            entry, PLAIN_KEYS[section_name], file=file, key=key, what=f"a key of a {section_name[:-1]} without '()'", values=entry
        )
        return {}
    given = {name: value for name, value in entry.items() if name not in own}
    if section_name == "formatters" and "format" in given:
        given["fmt" if _takes_fmt(factory) else "format"] = given.pop("format")  # dictConfig retries with fmt
    accepted = arguments(factory)
    if accepted is None:
        return given
    valid, required = accepted
    offered = [name for name in valid if name not in own] + [name for name in own if name != "."]
    known(given, valid, file=file, key=key, what=f"an argument of {target}", values=given, offered=offered)
    for name in required:
        if name not in given:
            raise ConfigError(
                file, f"{key}.{name}", None, f"is missing: {target} needs it", f"add {name}; it takes: {', '.join(offered)}"
            )
    return given


def _is_queue_handler(factory: object) -> bool:
    import logging.handlers  # logging.config has imported it already

    return isinstance(factory, type) and issubclass(factory, logging.handlers.QueueHandler)


def _takes_fmt(factory: Callable[..., Any]) -> bool:
    accepted = arguments(factory)
    return accepted is not None and "fmt" in accepted[0] and "format" not in accepted[0]


def arguments(factory: Callable[..., Any]) -> tuple[list[str], list[str]] | None:
    """Return the keyword arguments ``factory`` takes and those it needs; None when it takes any."""
    try:
        return _ARGUMENTS[factory]
    except (KeyError, TypeError):  # TypeError: a callable that cannot be a dict key
        pass
    found = _arguments(factory)
    with contextlib.suppress(TypeError):
        _ARGUMENTS[factory] = found  # every apply() checks the same few factories
    return found


def _arguments(factory: Callable[..., Any]) -> tuple[list[str], list[str]] | None:
    own = _signature(factory)
    if own is None:
        return None
    valid, required, any_more = own
    if not any_more:
        return valid, required
    onward = PASSES_ON.get(f"{getattr(factory, '__module__', '')}.{getattr(factory, '__qualname__', '')}")
    if onward is None:
        return None
    module, _, name = onward.rpartition(".")
    __import__(module)  # not importlib's import_module: the importlib package is one more module to load
    passed = arguments(getattr(sys.modules[module], name))
    if passed is None:
        return None
    return valid + [n for n in passed[0] if n not in valid], required + [n for n in passed[1] if n not in valid]


def _signature(factory: Callable[..., Any]) -> tuple[list[str], list[str], bool] | None:
    function: Any = factory.__init__ if isinstance(factory, type) else factory  # type: ignore[misc]
    while hasattr(function, "__wrapped__"):
        function = function.__wrapped__
    function = getattr(function, "__func__", function)  # a bound method: its function
    code = getattr(function, "__code__", None)
    if code is None:
        return None  # a builtin, or object.__init__: nothing to read
    positional = list(code.co_varnames[: code.co_argcount])
    keyword_only = list(code.co_varnames[code.co_argcount : code.co_argcount + code.co_kwonlyargcount])
    skip = 1 if isinstance(factory, type) or hasattr(getattr(factory, "__func__", None), "__code__") else 0  # self
    defaults = len(function.__defaults__ or ())
    needed = positional[skip : len(positional) - defaults]
    positional = positional[max(skip, code.co_posonlyargcount) :]
    kw_defaults = function.__kwdefaults__ or {}
    valid = positional + keyword_only
    required = [n for n in needed if n in positional] + [n for n in keyword_only if n not in kw_defaults]
    return valid, required, bool(code.co_flags & _CO_VARKEYWORDS)
