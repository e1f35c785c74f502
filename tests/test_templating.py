import os

import pytest

from logconf.errors import ConfigError
from logconf.templating import expand, has_fields, switch


def run(template, **env):
    return expand(template, file="f.json", key="handlers.h.filename", environ=env)


def test_plain_variable_and_default():
    assert run("${A}/x", A="a") == "a/x"
    assert run("${A:-dflt}") == "dflt"
    assert run("${A:-dflt}", A="given") == "given"


def test_defaults_nest_to_any_depth():
    template = "${LOGCONF_RANK:-${RANK:-${OTHER:-0}}}"
    assert run(template) == "0"
    assert run(template, OTHER="7") == "7"
    assert run(template, RANK="3", OTHER="7") == "3"
    assert run(template, LOGCONF_RANK="5", RANK="3") == "5"


def test_per_process_fields_resolve_in_this_process():
    import multiprocessing
    import socket

    assert run("{pid}-{hostname}-{process_name}.{ext}") == (
        f"{os.getpid()}-{socket.gethostname()}-{multiprocessing.current_process().name}.log"
    )
    assert run("{ext}", LOGCONF_FORMAT="json") == "jsonl"


def test_escapes_give_literal_dollar_and_braces():
    assert run("$${{HOME}} {{x}}") == "${HOME} {x}"


def test_has_fields_sees_fields_inside_defaults():
    assert has_fields("${A:-{pid}}")
    assert not has_fields("${A:-${B:-0}}")


@pytest.mark.parametrize(
    ("template", "env", "problem"),
    [
        ("${MISSING}", {}, "environment variable MISSING is not set"),
        ("${A:-x", {}, "unclosed '${A'"),
        ("${A", {}, "unclosed '${A'"),
        ("${", {}, "is not followed by a variable name"),
        ("${1A}", {}, "is not followed by a variable name"),
        ("${A?x}", {}, "unexpected '?'"),
        ("{nope}", {}, "unknown field {nope}"),
        ("a}b", {}, "stray '}'"),
        ("${A:-0}", {"A": ""}, "environment variable A is set but empty"),
    ],
)
def test_bad_templates_name_file_key_and_value(template, env, problem):
    with pytest.raises(ConfigError) as caught:
        run(template, **env)
    message = str(caught.value)
    assert message.startswith("f.json: handlers.h.filename: ")
    assert problem in message
    assert repr(template) in message


def test_check_value_refuses_a_substituted_value():
    with pytest.raises(ConfigError, match=r"\$\{R\} = '\.\./x' bad"):
        expand("r${R}", file="f", key="k", environ={"R": "../x"}, check_value=lambda n, v: "bad" if ".." in v else None)


@pytest.mark.parametrize(
    ("value", "on"),
    [("1", True), ("true", True), ("Yes", True), (" on ", True), ("0", False), ("FALSE", False), ("no", False), ("off", False)],
)
def test_switch_takes_every_documented_spelling_in_any_case(value, on):
    assert switch(value, factory="make_formatter", arg="redact") is on


def test_switch_refuses_anything_else_naming_the_value():
    with pytest.raises(ConfigError) as caught:
        switch("enabled", factory="make_formatter", arg="redact")
    assert (caught.value.value, caught.value.problem, caught.value.expected) == ("enabled", "not a switch", "use 1 or 0")
