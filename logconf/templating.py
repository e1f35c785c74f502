"""Expand ``${VAR}``, ``${VAR:-default}`` and ``{field}`` templates inside one process.

vLLM hands its logging JSON to ``dictConfig`` untouched, so every template in the shipped
files is resolved here, by logconf's own factories, in the process that builds the handler.

Grammar:
- ``${NAME}``: the environment variable NAME; unset is an error.
- ``${NAME:-default}``: NAME, or ``default`` when NAME is unset. Defaults are templates
  themselves, so they nest: ``${LOGCONF_RANK:-${RANK:-0}}``.
- ``{pid}``, ``{hostname}``, ``{process_name}``, ``{ext}``, ``{user}``: facts about this process
  (``ext`` is ``log``, or ``jsonl`` when ``LOGCONF_FORMAT=json``; ``hostname`` is
  ``LOGCONF_HOSTNAME`` when set; ``user`` is the user name, or the uid where it has none:
  the default directory ``/tmp/logconf-{user}`` is each user's own).
- ``$$``, ``{{`` and ``}}`` stand for a literal ``$``, ``{`` and ``}``.

A variable that is set to the empty string is refused rather than treated as unset: an
empty ``LOGCONF_RANK`` is far more likely a broken launcher than a wish for rank 0.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping

from logconf.errors import ConfigError, current_source
from logconf.sources import locate

__all__ = ["FIELDS", "FORMATS", "expand", "expand_arg", "field", "has_field", "has_fields", "log_format", "switch"]

FIELDS = ("pid", "hostname", "process_name", "ext", "user")
FORMATS = {"text": "log", "json": "jsonl"}

_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_NAME_CHARS = _NAME_START | frozenset("0123456789")


class _Var:
    __slots__ = ("default", "name")

    def __init__(self, name: str, default: tuple[_Node, ...] | None) -> None:
        self.name = name
        self.default = default


class _Field:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


_Node = str | _Var | _Field


class _ParseError(Exception):
    pass


def _parse(text: str, pos: int, nested: bool) -> tuple[tuple[_Node, ...], int]:
    """Parse from ``pos`` up to the end, or up to the ``}`` that closes a default."""
    nodes: list[_Node] = []
    literal: list[str] = []
    while pos < len(text):
        char = text[pos]
        if text.startswith("$$", pos):
            literal.append("$")
            pos += 2
        elif text.startswith("${", pos):
            end = pos + 2
            if end >= len(text) or text[end] not in _NAME_START:
                raise _ParseError(f"'${{' at column {pos + 1} is not followed by a variable name")
            while end < len(text) and text[end] in _NAME_CHARS:
                end += 1
            name, pos = text[pos + 2 : end], end
            default: tuple[_Node, ...] | None = None
            if text.startswith(":-", pos):
                default, pos = _parse(text, pos + 2, nested=True)
            if pos >= len(text):
                raise _ParseError(f"unclosed '${{{name}': no matching '}}'")
            if text[pos] != "}":
                raise _ParseError(
                    f"unexpected {text[pos]!r} after ${{{name} at column {pos + 1}; write ${{NAME}} or ${{NAME:-default}}"
                )
            if literal:
                nodes.append("".join(literal))
                literal = []
            nodes.append(_Var(name, default))
            pos += 1
        elif text.startswith("{{", pos):
            literal.append("{")
            pos += 2
        elif text.startswith("}}", pos) and not nested:
            literal.append("}")
            pos += 2
        elif char == "{":
            end = text.find("}", pos)
            name = text[pos + 1 : end] if end != -1 else text[pos + 1 :]
            if end == -1 or name not in FIELDS:
                raise _ParseError(
                    f"unknown field {{{name}}} at column {pos + 1}; fields are "
                    + ", ".join("{" + f + "}" for f in FIELDS)
                    + " (write {{ for a literal brace)"
                )
            if literal:
                nodes.append("".join(literal))
                literal = []
            nodes.append(_Field(name))
            pos = end + 1
        elif char == "}" and nested:
            break
        elif char == "}":
            raise _ParseError(f"stray '}}' at column {pos + 1} (write }}}} for a literal brace)")
        else:
            literal.append(char)
            pos += 1
    if literal:
        nodes.append("".join(literal))
    return tuple(nodes), pos


@functools.lru_cache(maxsize=256)
def _compile(template: str) -> tuple[_Node, ...]:
    nodes, _ = _parse(template, 0, nested=False)
    return nodes


def log_format(environ: Mapping[str, str] | None = None, *, file: str = "<environment>") -> str:
    """Return ``LOGCONF_FORMAT`` (``text`` or ``json``), refusing anything else."""
    env = os.environ if environ is None else environ
    value = env.get("LOGCONF_FORMAT", "text")
    if value not in FORMATS:
        raise ConfigError(file, "LOGCONF_FORMAT", value, "unknown log format", "use 'text' or 'json'")
    return value


def expand_arg(template: str, *, factory: str, arg: str, check_value=None, environ: Mapping[str, str] | None = None) -> str:
    """Expand one argument of a logconf factory; an error names its key in the config being applied."""
    try:
        return expand(template, file=current_source(), key=arg, check_value=check_value, environ=environ)
    except ConfigError as exc:
        raise ConfigError(exc.file, locate(factory, arg, template), exc.value, exc.problem, exc.expected) from None


def switch(value: object, *, factory: str, arg: str) -> bool:
    """Resolve an on/off argument (``1``/``0``, ``true``/``false``, ``yes``/``no``, ``on``/``off``)."""
    if isinstance(value, bool):
        return value
    if not isinstance(value, (str, int)):
        raise ConfigError(current_source(), locate(factory, arg, value), value, "not a switch", "use 1 or 0")
    text = expand_arg(str(value), factory=factory, arg=arg).strip()
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(current_source(), locate(factory, arg, value), text, "not a switch", "use 1 or 0")


def field(name: str, environ: Mapping[str, str] | None = None, *, file: str = "<environment>") -> str:
    """Return this process's value for the ``{name}`` placeholder, one of :data:`FIELDS`.

    Each is found only where a template uses it: the user's name reads the password database,
    the host's may be checked, and most processes that apply a config need neither.
    """
    if name == "pid":
        return str(os.getpid())
    if name == "hostname":
        from logconf.netfs import host_name

        return host_name(environ, file=file)
    if name == "process_name":
        # No import of multiprocessing (a few ms, on every apply()): a process that has not imported
        # multiprocessing is no child of it, and is "MainProcess", as LogRecord has it.
        mp = sys.modules.get("multiprocessing")
        return mp.current_process().name if mp is not None else "MainProcess"
    if name == "ext":
        return FORMATS[log_format(environ, file=file)]
    if name == "user":
        from logconf.ownership import user_name

        return user_name()
    raise KeyError(name)


def has_fields(template: str) -> bool:
    """Tell whether ``template`` uses a per-process ``{field}`` (it must be re-resolved after fork)."""
    return has_field(template)


def has_field(template: str, name: str | None = None) -> bool:
    """Tell whether ``template`` uses the field ``{name}`` (any field, if ``name`` is None)."""
    if not isinstance(template, str):
        return False  # not a template at all: expanding it says so, naming its key

    def walk(nodes: tuple[_Node, ...]) -> bool:
        return any(
            (isinstance(n, _Field) and name in (None, n.name))
            or (isinstance(n, _Var) and n.default is not None and walk(n.default))
            for n in nodes
        )

    try:
        return walk(_compile(template))
    except _ParseError:
        return False


def expand(
    template: str,
    *,
    file: str,
    key: str,
    environ: Mapping[str, str] | None = None,
    check_value=None,
) -> str:
    """Return ``template`` with every variable and field resolved.

    ``file`` and ``key`` only label the error. ``check_value(name, value)`` may return a
    complaint about one substituted value: the problem, or ``(problem, what would be valid)``
    (used to refuse ``/`` in file names, and line breaks in ranks).
    """
    if not isinstance(template, str):
        raise ConfigError(
            file, key, template, f"is a {type(template).__name__}, not a string", "quote it: '0640', '${NAME:-default}'"
        )
    try:
        nodes = _compile(template)
    except _ParseError as exc:
        raise ConfigError(
            file, key, template, f"malformed template: {exc}", "write ${NAME} or ${NAME:-default}; $$, {{ and }} for literals"
        ) from None
    env = os.environ if environ is None else environ
    field_values: dict[str, str] = {}

    def render(parts: tuple[_Node, ...]) -> str:
        out: list[str] = []
        for node in parts:
            if isinstance(node, str):
                out.append(node)
                continue
            if isinstance(node, _Field):
                if node.name not in field_values:
                    field_values[node.name] = field(node.name, env, file=file)
                name, value = "{" + node.name + "}", field_values[node.name]
            else:
                name, raw = "${" + node.name + "}", env.get(node.name)
                if raw is None:
                    if node.default is None:
                        raise ConfigError(
                            file,
                            key,
                            template,
                            f"environment variable {node.name} is not set",
                            f"set it, or write ${{{node.name}:-default}}",
                        )
                    out.append(render(node.default))
                    continue
                if raw == "":
                    raise ConfigError(
                        file,
                        key,
                        template,
                        f"environment variable {node.name} is set but empty",
                        "give it a value, or unset it to use the default",
                    )
                value = raw
            if check_value is not None:
                complaint = check_value(name, value)
                if complaint:
                    if isinstance(complaint, tuple):
                        problem, valid = complaint
                    else:
                        problem, valid = complaint, f"give {name} a value without '/' or '..'"
                    raise ConfigError(file, key, template, f"{name} = {value!r} {problem}", valid)
            out.append(value)
        return "".join(out)

    return render(nodes)
