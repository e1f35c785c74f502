"""Loguru records forwarded into stdlib logging by logconf.apply() (logconf.loguru_bridge)."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import loguru  # in the test extra: a missing Loguru fails the run, never skips it
import pytest
from helpers import read_records

import logconf
from logconf import loguru_bridge

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def restore_loguru():
    """Leave Loguru without sinks and the bridge off (Loguru's default sink, id 0, cannot be re-created)."""
    yield
    loguru_bridge.uninstall()
    loguru.logger.remove()


def run(code: str, logdir: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "RANK", "LOG_LEVEL"))}
    env["LOGCONF_DIR"] = str(logdir)
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=False)


def emit_from(module: str, level: str, message: str, **extra: object) -> None:
    """Call Loguru as code in ``module`` does (its record["name"] is the module's __name__)."""
    code = compile(f"from loguru import logger\nlogger.bind(**extra).log({level!r}, {message!r})", f"<{module}>", "exec")
    exec(code, {"__name__": module, "extra": extra})


def test_logconf_never_imports_loguru(logdir):
    """A fresh interpreter that imports logconf and calls apply() has no loguru in sys.modules."""
    result = run("import sys, logconf\nlogconf.apply()\nassert 'loguru' not in sys.modules, 'imported'\nprint('ok')", logdir)
    assert result.stdout == "ok\n", result.stderr


def test_loguru_default_stderr_sink_is_removed_so_nothing_prints_twice(logdir):
    """A fresh trainer: Loguru imported first, then apply(): a WARNING shows once on stderr, as a logconf line."""
    code = (
        "import loguru, logconf\nlogconf.apply()\nlogconf.apply()\n"
        "code = compile('from loguru import logger\\nlogger.warning(\"low reward\")', '<m>', 'exec')\n"
        "exec(code, {'__name__': 'skyrl.trainer'})"
    )
    result = run(code, logdir)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("low reward") == 1
    assert " WARNING rank=0 MainProcess[" in result.stderr
    assert [(r["logger"], r["message"]) for r in read_records(logdir / "skyrl_rank_0.log")] == [("skyrl.trainer", "low reward")]


def test_records_reach_the_rank_file_under_the_module_name_with_every_level_once(logdir, monkeypatch, capfd):
    """TRACE..CRITICAL from skyrl_train.* modules: each once, with its logger name and level name."""
    monkeypatch.setenv("LOG_LEVEL", "TRACE")
    logconf.apply()
    logconf.apply()  # twice: still one forwarding sink
    levels = ["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]
    for level in levels:
        emit_from("skyrl_train.trainer", level, f"{level.lower()} from trainer")
    emit_from("skyrl_train.utils.io", "INFO", "from a nested module")
    records = read_records(logdir / "skyrl_rank_0.log")
    assert [(r["logger"], r["level"], r["message"]) for r in records] == [
        *[("skyrl_train.trainer", level, f"{level.lower()} from trainer") for level in levels],
        ("skyrl_train.utils.io", "INFO", "from a nested module"),
    ]
    err = capfd.readouterr().err
    assert err.count("warning from trainer") == 1  # the console handler, WARNING and up
    assert "info from trainer" not in err


def test_levels_trace_and_success_are_registered_stdlib_level_names():
    """TRACE is 5 and SUCCESS is 25, as in Loguru, and stdlib knows them by name after install()."""
    loguru_bridge.install()
    assert (loguru_bridge.TRACE, loguru_bridge.SUCCESS) == (5, 25)
    assert logging.getLevelName(5) == "TRACE"
    assert logging.getLevelName("SUCCESS") == 25


def test_loguru_imported_after_apply_still_writes_success_by_its_name(logdir):
    """A fresh trainer that imports Loguru after apply(): the import hook installs the bridge, which names level 25."""
    code = (
        "import logconf\nlogconf.apply()\n"
        "code = compile('from loguru import logger\\nlogger.success(\"step done\")', '<m>', 'exec')\n"
        "exec(code, {'__name__': 'skyrl_train.trainer'})"
    )
    result = run(code, logdir)
    assert result.returncode == 0, result.stderr
    records = read_records(logdir / "skyrl_rank_0.log")
    assert [(r["logger"], r["level"], r["message"]) for r in records] == [("skyrl_train.trainer", "SUCCESS", "step done")]

def test_line_number_exception_and_extra_fields_are_kept(logdir, monkeypatch):
    """A Loguru exception() call: stdlib record with the caller's line, the traceback and bound extras."""
    monkeypatch.setenv("LOGCONF_FORMAT", "json")
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logconf.apply()
    logging.getLogger(__name__).addHandler(Keep())
    from loguru import logger

    try:
        raise ValueError("bad reward")
    except ValueError:
        line = sys._getframe().f_lineno + 1
        logger.bind(step=7, message="shadow").exception("reward failed")
    (record,) = seen
    assert record.name == __name__
    assert record.levelname == "ERROR"
    assert record.lineno == line
    assert record.pathname == __file__
    assert record.funcName == "test_line_number_exception_and_extra_fields_are_kept"
    assert record.exc_info is not None and record.exc_info[0] is ValueError
    assert record.step == 7  # type: ignore[attr-defined]
    assert record.extra_message == "shadow"  # type: ignore[attr-defined]  # a reserved name is renamed


def test_exception_and_extras_appear_in_the_json_rank_file(logdir, monkeypatch):
    """In JSON lines the forwarded record carries exc_info and the extra fields."""
    monkeypatch.setenv("LOGCONF_FORMAT", "json")
    logconf.apply()
    try:
        raise KeyError("missing")
    except KeyError:
        exec(
            compile("from loguru import logger\nlogger.bind(step=3).exception('lookup failed')", "<skyrl_train.x>", "exec"),
            {"__name__": "skyrl_train.data"},
        )
    (record,) = read_records(logdir / "skyrl_rank_0.jsonl")
    assert record["logger"] == "skyrl_train.data"
    assert record["level"] == "ERROR"
    assert record["step"] == 3
    assert "KeyError: 'missing'" in record["exc_info"]


def test_levels_below_the_stdlib_logger_level_are_dropped_before_forwarding(logdir):
    """With LOG_LEVEL unset (INFO), Loguru DEBUG and TRACE calls write nothing."""
    logconf.apply()
    emit_from("skyrl_train.trainer", "DEBUG", "hidden")
    emit_from("skyrl_train.trainer", "TRACE", "hidden too")
    emit_from("skyrl_train.trainer", "INFO", "shown")
    assert [r["message"] for r in read_records(logdir / "skyrl_rank_0.log")] == ["shown"]


def test_an_intercept_handler_sending_stdlib_back_to_loguru_does_not_loop(logdir, capfd):
    """SkyRL's InterceptHandler on root forwards stdlib to Loguru: a record still arrives once, file and console."""
    logconf.apply()
    from loguru import logger

    class InterceptHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logger.opt(depth=6).log(record.levelname, record.getMessage())

    logging.root.addHandler(InterceptHandler())
    emit_from("skyrl_train.trainer", "INFO", "round trip")
    logging.getLogger("skyrl_train.trainer").warning("from stdlib")  # stdlib -> root's intercept -> Loguru: not back
    assert [r["message"] for r in read_records(logdir / "skyrl_rank_0.log")] == ["round trip", "from stdlib"]
    assert capfd.readouterr().err.count("from stdlib") == 1

def test_a_sink_the_program_added_itself_is_kept(logdir):
    """apply() removes only Loguru's default sink; the program's own sinks keep receiving."""
    from loguru import logger

    got: list[str] = []
    logger.add(lambda m: got.append(m.record["message"]), level="INFO")
    logconf.apply()
    emit_from("skyrl_train.trainer", "INFO", "to both")
    assert got == ["to both"]
    assert [r["message"] for r in read_records(logdir / "skyrl_rank_0.log")] == ["to both"]


def test_bound_fields_named_like_a_records_own_are_kept_beside_them_in_json(logdir, monkeypatch):
    """logger.bind(rank=3, time=...) cannot rewrite the JSON record's rank or time: they become extra_rank, extra_time."""
    monkeypatch.setenv("LOGCONF_FORMAT", "json")
    monkeypatch.setenv("LOGCONF_RANK", "1")
    logconf.apply()
    forged = {"rank": 3, "time": "yesterday", "logger": "forged", "pid": 1, "level": "LOW"}
    code = compile("from loguru import logger\nlogger.bind(**forged).info('bound')", "<skyrl_train.trainer>", "exec")
    exec(code, {"__name__": "skyrl_train.trainer", "forged": forged})
    (record,) = read_records(logdir / "skyrl_rank_1.jsonl")
    assert (record["rank"], record["logger"], record["level"], record["pid"]) == ("1", "skyrl_train.trainer", "INFO", os.getpid())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"]), record["time"]
    assert {k: v for k, v in record.items() if k.startswith("extra_")} == {
        "extra_rank": 3,
        "extra_time": "yesterday",
        "extra_logger": "forged",
        "extra_pid": 1,
        "extra_level": "LOW",
    }
