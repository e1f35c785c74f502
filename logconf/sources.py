"""Read logging config files, and find the key under which a file passes a value to a factory.

The lowest floor of the package that knows about config files: the factories (handlers,
formatters, templating) name the config key of a bad argument through :func:`locate`, and
:mod:`logconf.config` reads files through :func:`load`; neither imports the other through here.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator, Mapping
from typing import Any

from logconf import yamlcache
from logconf.errors import ConfigError, PerThread, current_source

__all__ = ["building", "find_key", "load", "locate"]

_SECTIONS = ("formatters", "filters", "handlers")
_ENTRY = PerThread()


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON or YAML logging config, refusing anything but a mapping with version 1."""
    file = str(path)
    try:
        with open(file, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(
            file, "<file>", file, f"cannot read the config: {exc.strerror}", "pass an existing JSON or YAML file"
        ) from None
    if file.endswith(".json"):
        import json  # here, not at import: `import logconf` stays light for vLLM's processes

        try:
            config = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                file,
                f"line {exc.lineno} column {exc.colno}",
                _line(text, exc.lineno),
                f"malformed JSON: {exc.msg}",
                "fix the JSON syntax there (strings in double quotes, no trailing commas)",
            ) from None
    else:
        config = yamlcache.lookup(file, text)  # this file's text parsed before: no PyYAML import
        if config is None:
            config = _parse_yaml(file, text)
            if isinstance(config, dict):
                yamlcache.store(file, text, config)
    if not isinstance(config, dict):
        raise ConfigError(
            file, "<top level>", type(config).__name__, "is not a mapping", "a logging config is a mapping with version: 1"
        )
    return config


def _parse_yaml(file: str, text: str) -> Any:
    import yaml  # here, not at the top: vLLM's processes import logconf but never read YAML

    try:
        # libyaml's loader parses the shipped file in a tenth of the time, where PyYAML has it
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "<file>"
        value = _line(text, mark.line + 1) if mark else text[:80]
        raise ConfigError(
            file, where, value, f"malformed YAML: {getattr(exc, 'problem', exc)}", "fix the YAML syntax there"
        ) from None


def _line(text: str, lineno: int) -> str:
    lines = text.splitlines()
    return lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""


@functools.lru_cache(maxsize=8)
def _load_cached(file: str, mtime_ns: int) -> dict[str, Any]:
    return load(file)


def find_key(file: str, factory: str, arg: str, value: object) -> str:
    """Return the dotted key under which ``file`` passes ``value`` as ``arg`` to ``factory``."""
    try:
        config = _load_cached(file, os.stat(file).st_mtime_ns)
    except (ConfigError, OSError):
        return arg
    for section in _SECTIONS:
        entries = config.get(section)
        if not isinstance(entries, Mapping):
            continue
        for name, entry in entries.items():
            if not isinstance(entry, Mapping) or not str(entry.get("()", "")).endswith(factory):
                continue
            found: Any = entry
            for part in arg.split("."):
                found = found.get(part) if isinstance(found, Mapping) else None
            if found == value:
                return f"{section}.{name}.{arg}"
    return arg


@contextlib.contextmanager
def building(key: str) -> Iterator[None]:
    """Name ``key`` (``handlers.vllm_file``) as the entry whose arguments are being checked, for error messages."""
    token = _ENTRY.set(key)
    try:
        yield
    finally:
        _ENTRY.reset(token)


def locate(factory: str, arg: str, value: object) -> str:
    """Return the dotted key under which the config being applied passes ``value`` as ``arg``."""
    entry = _ENTRY.get()
    if entry is not None:  # logconf.config.check knows the entry: no need to search the file for it
        return f"{entry}.{arg}"
    return find_key(current_source(), factory, arg, value)
