"""Bad input fails when the config is applied, with one message naming file, key, value and what is valid.

Each case is applied twice: by ``logconf.apply()``, which must leave the previous logging
configuration working, and (where logconf's factories are the ones to notice) the way vLLM
loads its file, ``json.loads`` then ``dictConfig``, whose exception chain must carry the
same message.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import load_like_vllm, read_records

import logconf
from logconf import ConfigError

SHIPPED_JSON = json.loads(Path(logconf.vllm_config_path()).read_text(encoding="utf-8"))


@dataclass
class Case:
    """One bad input: how to make it, and what its message must name."""

    make: Callable[[Path, pytest.MonkeyPatch], Path]
    key: str
    bad: str  # the bad value, as the message shows it
    valid: str  # part of what the message says would be valid
    vllm_sees_ours: bool = True  # False where json, dictConfig or vLLM itself fails first


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def shipped(tmp: Path, edit: Callable[[dict], None] | None = None) -> Path:
    config = json.loads(json.dumps(SHIPPED_JSON))
    if edit is not None:
        edit(config)
    return write(tmp, "bad_logging.json", json.dumps(config, indent=2))


def with_env(name: str, value: str) -> Callable[[Path, pytest.MonkeyPatch], Path]:
    def make(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        monkeypatch.setenv(name, value)
        return shipped(tmp)

    return make


def with_edit(edit: Callable[[dict], None]) -> Callable[[Path, pytest.MonkeyPatch], Path]:
    return lambda tmp, monkeypatch: shipped(tmp, edit)


def handler_arg(arg: str, value: str) -> Callable[[dict], None]:
    def edit(config: dict) -> None:
        config["handlers"]["vllm_file"][arg] = value

    return edit


MOUNTS: list[Path] = []


@pytest.fixture(autouse=True)
def unmount():
    """Unmount the read-only tmpfs a case mounted, whatever the test did."""
    yield
    while MOUNTS:
        subprocess.run(["umount", "-l", str(MOUNTS.pop())], check=False)


def unwritable_dir(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = tmp / "readonly"
    target.mkdir()
    if os.geteuid() == 0:  # root writes through any mode bits: use a read-only mount
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=16k", "tmpfs", str(target)], capture_output=True)
        if done.returncode != 0:
            pytest.fail(f"running as root and cannot mount a read-only tmpfs: {done.stderr.decode().strip()}")
        MOUNTS.append(target)
    else:
        target.chmod(0o500)
    monkeypatch.setenv("LOGCONF_DIR", str(target))
    return shipped(tmp)


def dir_is_file(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp / "not_a_dir").write_text("x")
    monkeypatch.setenv("LOGCONF_DIR", str(tmp / "not_a_dir" / "logs"))
    return shipped(tmp)


def configure_logging_off(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = shipped(tmp)
    monkeypatch.setenv("VLLM_CONFIGURE_LOGGING", "0")
    monkeypatch.setenv("VLLM_LOGGING_CONFIG_PATH", str(path))
    return path


def bad_filename_var(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RUN_NAME", "../../etc/cron.d/x")
    return shipped(tmp, handler_arg("filename", "run_${RUN_NAME}.log"))


def dotdot_filename_var(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RUN_NAME", "..")
    return shipped(tmp, handler_arg("filename", "run_${RUN_NAME}.log"))


def drop_version(config: dict) -> None:
    del config["version"]


def set_logger_level(config: dict) -> None:
    config["loggers"]["vllm"]["level"] = "LOUD"


def undeclared_formatter(config: dict) -> None:
    config["handlers"]["vllm_file"]["formatter"] = "nope"


CASES: dict[str, Case] = {
    "malformed_json": Case(
        lambda tmp, mp: write(tmp, "bad.json", '{\n  "version": 1,\n  "handlers": {,}\n}\n'),
        "line 3 column 16",
        '"handlers": {,}',
        "fix the JSON syntax",
        vllm_sees_ours=False,
    ),
    "malformed_yaml": Case(
        lambda tmp, mp: write(tmp, "bad.yaml", "version: 1\nhandlers: [unclosed\nroot: {}\n"),
        "line 3 column 5",
        "root: {}",
        "fix the YAML syntax",
        vllm_sees_ours=False,
    ),
    "top_level_list_json": Case(
        lambda tmp, mp: write(tmp, "list.json", "[1, 2]"),
        "<top level>",
        "list",
        "a logging config is a mapping with version: 1",
        vllm_sees_ours=False,
    ),
    "top_level_string_yaml": Case(
        lambda tmp, mp: write(tmp, "str.yaml", "just words\n"),
        "<top level>",
        "str",
        "a logging config is a mapping with version: 1",
        vllm_sees_ours=False,
    ),
    "wrong_version": Case(with_edit(lambda c: c.update(version=2)), "version", "2", "set version: 1", vllm_sees_ours=False),
    "missing_version": Case(with_edit(drop_version), "version", "None", "set version: 1", vllm_sees_ours=False),
    "unknown_handler_class": Case(
        with_edit(lambda c: c["handlers"]["vllm_console"].update({"()": "logconf.handlers.NoSuchHandler"})),
        "handlers.vllm_console.()",
        "logconf.handlers.NoSuchHandler",
        "name an importable class or factory",
        vllm_sees_ours=False,
    ),
    "unknown_handler_module": Case(
        with_edit(lambda c: c["handlers"].update(extra={"class": "nosuchmodule.FileHandler"})),
        "handlers.extra.class",
        "nosuchmodule.FileHandler",
        "name an importable class or factory",
        vllm_sees_ours=False,
    ),
    "unknown_variable": Case(
        with_edit(handler_arg("filename", "vllm_${NO_SUCH_VAR}.log")),
        "handlers.vllm_file.filename",
        "vllm_${NO_SUCH_VAR}.log",
        "set it, or write ${NO_SUCH_VAR:-default}",
    ),
    "unclosed_variable": Case(
        with_edit(handler_arg("directory", "${LOGCONF_DIR:-/tmp/logconf")),
        "handlers.vllm_file.directory",
        "${LOGCONF_DIR:-/tmp/logconf",
        "write ${NAME} or ${NAME:-default}",
    ),
    "unknown_field": Case(
        with_edit(handler_arg("filename", "vllm_{rank}.log")),
        "handlers.vllm_file.filename",
        "vllm_{rank}.log",
        "fields are {pid}, {hostname}, {process_name}, {ext}",
    ),
    "empty_rank": Case(with_env("LOGCONF_RANK", ""), "formatters.logconf_file.rank", "LOGCONF_RANK", "give it a value"),
    "rank_with_slash": Case(
        with_env("LOGCONF_RANK", "0/../../etc"), "formatters.logconf_file.rank", "0/../../etc", "without '/', '..', '@'"
    ),
    "rank_with_slash_only": Case(
        with_env("LOGCONF_RANK", "a/b"), "formatters.logconf_file.rank", "= 'a/b'", "without '/', '..', '@'"
    ),
    "rank_dotdot": Case(with_env("RANK", ".."), "formatters.logconf_file.rank", "'..'", "without '/', '..', '@'"),
    "rank_with_line_break": Case(
        with_env("LOGCONF_RANK", "0\nforged"), "formatters.logconf_file.rank", "'0\\nforged'", "blanks or control characters"
    ),
    "rank_with_blank": Case(with_env("RANK", "dp 0"), "formatters.logconf_file.rank", "${RANK} = 'dp 0'", "such as 0, driver"),
    "variable_with_traversal": Case(bad_filename_var, "handlers.vllm_file.filename", "../../etc/cron.d/x", "without '/' or '..'"),
    "variable_with_dotdot": Case(dotdot_filename_var, "handlers.vllm_file.filename", "= '..'", "without '/' or '..'"),
    "unwritable_directory": Case(
        unwritable_dir, "handlers.vllm_file.directory", "readonly", "point LOGCONF_DIR at a writable directory"
    ),
    "directory_is_a_file": Case(
        dir_is_file, "handlers.vllm_file.directory", "not_a_dir", "point LOGCONF_DIR at a writable directory"
    ),
    "invalid_level_in_config": Case(
        with_edit(set_logger_level), "loggers.vllm.level", "LOUD", "use one of DEBUG, INFO", vllm_sees_ours=False
    ),
    "invalid_level_from_env": Case(
        with_env("VLLM_LOGGING_LEVEL", "LOUD"), "handlers.vllm_file.logger_levels.vllm", "LOUD", "use one of DEBUG, INFO"
    ),
    "invalid_console_level": Case(
        with_env("LOGCONF_CONSOLE_LEVEL", "shout"), "handlers.vllm_console.threshold", "shout", "use one of DEBUG, INFO"
    ),
    "configure_logging_off_with_path": Case(
        configure_logging_off,
        "VLLM_CONFIGURE_LOGGING",
        "'0'",
        "unset VLLM_CONFIGURE_LOGGING, or unset VLLM_LOGGING_CONFIG_PATH",
        vllm_sees_ours=False,
    ),
    "unknown_format": Case(with_env("LOGCONF_FORMAT", "xml"), "formatters.logconf_file.format", "xml", "use 'text' or 'json'"),
    "bad_file_mode": Case(
        with_env("LOGCONF_FILE_MODE", "rw-r-----"), "handlers.vllm_file.file_mode", "rw-r-----", "octal digits such as 0640"
    ),
    "file_mode_with_special_bits": Case(
        with_env("LOGCONF_FILE_MODE", "4750"), "handlers.vllm_file.file_mode", "4750", "octal digits such as 0640"
    ),
    "bad_redact_switch": Case(with_env("LOGCONF_REDACT", "maybe"), "formatters.logconf_file.redact", "maybe", "use 1 or 0"),
    "undeclared_formatter": Case(
        with_edit(undeclared_formatter),
        "handlers.vllm_file.formatter",
        "nope",
        "declare it, or use one of logconf_console, logconf_file",
        vllm_sees_ours=False,
    ),
}

VLLM_CASES = [name for name, case in CASES.items() if case.vllm_sees_ours]


@pytest.fixture
def good(tmp_path, monkeypatch):
    """The shipped trainer config, applied and working, before the bad input arrives."""
    directory = tmp_path / "good"
    monkeypatch.setenv("LOGCONF_DIR", str(directory))
    logconf.apply()
    monkeypatch.setenv("LOGCONF_DIR", str(tmp_path / "bad"))  # the bad config's, never the user's default directory
    return directory / "skyrl_rank_0.log"


def assert_one_clear_message(error: ConfigError, file: Path, case: Case) -> None:
    message = str(error)
    assert "\n" not in message
    assert message.startswith(f"{file}: {case.key}: "), message
    assert case.bad in message, message
    assert case.valid in message, message


def test_at_least_15_distinct_bad_inputs_each_get_a_message_of_their_own(tmp_path, monkeypatch):
    """Every case is refused, and no two share a message: each says what is wrong with its own input."""
    messages = {}
    for name, case in CASES.items():
        (tmp_path / name).mkdir()
        with monkeypatch.context() as patch:
            patch.setenv("LOGCONF_DIR", str(tmp_path / name / "logs"))  # a case may point it elsewhere
            file = case.make(tmp_path / name, patch)
            with pytest.raises(ConfigError) as caught:
                logconf.apply(file)
        messages[name] = str(caught.value).removeprefix(f"{file.resolve()}: ")
    shared = {name: text for name, text in messages.items() if list(messages.values()).count(text) > 1}
    assert len(messages) >= 15 and not shared, shared
    print(f"\nFIGURES bad inputs tried: {len(CASES)} through apply(), {len(VLLM_CASES)} also through vLLM's own load")


@pytest.mark.parametrize("name", list(CASES))
def test_apply_refuses_with_one_clear_message_and_the_previous_config_still_works(name, good, tmp_path, monkeypatch):
    case = CASES[name]
    before = {n: list(logging.getLogger(n).handlers) for n in ("", "skyrl_train", "skyrl", "vllm")}
    file = case.make(tmp_path, monkeypatch)
    with pytest.raises(ConfigError) as caught:
        logconf.apply(file)
    assert_one_clear_message(caught.value, file.resolve(), case)
    assert {n: list(logging.getLogger(n).handlers) for n in before} == before
    logging.getLogger("skyrl_train.trainer").info("still works after %s", name)
    assert [r["message"] for r in read_records(good)] == [f"still works after {name}"]


@pytest.mark.parametrize("name", VLLM_CASES)
def test_vllm_own_load_shows_the_same_message_in_its_exception_chain(name, tmp_path, monkeypatch):
    case = CASES[name]
    monkeypatch.setenv("LOGCONF_DIR", str(tmp_path / "logs"))  # a case may point it elsewhere; never the default
    file = case.make(tmp_path, monkeypatch)
    with pytest.raises(ConfigError) as expected:
        logconf.apply(file)
    monkeypatch.setenv("VLLM_LOGGING_CONFIG_PATH", str(file))
    with pytest.raises(ValueError) as caught:  # dictConfig wraps it in its own ValueError
        load_like_vllm(str(file))
    chain = []
    error: BaseException | None = caught.value
    while error is not None:
        chain.append(str(error))
        error = error.__cause__ or error.__context__
    assert str(expected.value) in chain, chain
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})  # the next dictConfig still works


def test_a_handler_that_fails_to_build_does_not_break_later_dictconfig_or_exit(tmp_path, monkeypatch):
    """vLLM re-runs dictConfig in every child; a half-built handler must not make those calls raise."""
    monkeypatch.setenv("LOGCONF_RANK", "")
    with pytest.raises(ValueError):
        load_like_vllm(str(shipped(tmp_path)))
    monkeypatch.setenv("LOGCONF_RANK", "0")
    monkeypatch.setenv("LOGCONF_DIR", str(tmp_path / "logs"))
    load_like_vllm(str(shipped(tmp_path)))
    logging.getLogger("vllm.engine").info("configured again")
    logging.shutdown(logging._handlerList[:])  # what interpreter exit runs
    assert [r["message"] for r in read_records(tmp_path / "logs" / "vllm_rank_0.log")] == ["configured again"]


def _error_chain(error: BaseException | None) -> list[str]:
    chain = []
    while error is not None:
        chain.append(str(error))
        error = error.__cause__ or error.__context__
    return chain


def test_an_error_after_apply_names_its_own_source_not_the_file_applied_before(good, tmp_path, monkeypatch):
    """apply() names its file only while it applies it: a later dictConfig of someone else's is not blamed on it."""
    monkeypatch.delenv("VLLM_LOGGING_CONFIG_PATH", raising=False)
    monkeypatch.setenv("LOGCONF_RANK", "")
    with pytest.raises(ValueError) as caught:
        logging.config.dictConfig(json.loads(json.dumps(SHIPPED_JSON)))
    chain = _error_chain(caught.value)
    assert any(text.startswith("<dictConfig>: ") for text in chain), chain
    assert not any(logconf.skyrl_config_path() in text for text in chain), chain
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})


def test_a_config_error_raised_in_a_spawn_child_reaches_the_parent_whole(tmp_path):
    """Ray and multiprocessing pickle an exception back to the caller: every field, the advice included."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool, pytest.raises(ConfigError) as caught:
        pool.apply(logconf.set_rank, ("",))
    error = caught.value
    assert (error.file, error.key, error.value, error.problem) == ("set_rank()", "rank", "", "is empty")
    assert error.expected == "pass a rank such as 0"
    assert str(error) == "set_rank(): rank: is empty (got ''); pass a rank such as 0"


def test_apply_names_its_own_file_where_vllm_s_config_path_is_set_too(good, tmp_path, monkeypatch):
    """A trainer beside a vLLM engine has VLLM_LOGGING_CONFIG_PATH set: its own YAML is still the one named."""
    monkeypatch.setenv("VLLM_LOGGING_CONFIG_PATH", logconf.vllm_config_path())
    monkeypatch.setenv("LOGCONF_RANK", "")
    yaml_file = write(tmp_path, "trainer_logging.yaml", Path(logconf.skyrl_config_path()).read_text(encoding="utf-8"))
    with pytest.raises(ConfigError) as caught:
        logconf.apply(yaml_file)
    assert caught.value.file == str(yaml_file), str(caught.value)


def test_a_config_check_leaves_no_entry_behind_for_vllm_s_own_load_after_it(tmp_path, monkeypatch):
    """check() names each entry while it builds it; vLLM's dictConfig after it finds the bad key in its own file."""
    from logconf.config import check, load

    check(load(logconf.vllm_config_path()), logconf.vllm_config_path())  # `logconf check`, then the engine starts
    case = CASES["empty_rank"]
    monkeypatch.setenv("LOGCONF_DIR", str(tmp_path / "logs"))
    file = case.make(tmp_path, monkeypatch)
    monkeypatch.setenv("VLLM_LOGGING_CONFIG_PATH", str(file))
    with pytest.raises(ValueError) as caught:
        load_like_vllm(str(file))
    chain = _error_chain(caught.value)
    assert any(f": {case.key}: " in text for text in chain), chain
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
