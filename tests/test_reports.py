"""What a handler says on stderr: a caller's bad logging call as stdlib logging says it, a write failure once."""

from __future__ import annotations

import logging
import logging.config
import os
import sys

from helpers import load_like_vllm, read_records

import logconf


def _bad_call(log: logging.Logger) -> int:
    log.info("%s %s", 1)  # one argument for two: the caller's bug
    return sys._getframe().f_lineno - 1


def _expect_caller_report(err: str, line: int) -> None:
    assert err.startswith("--- Logging error ---\nTraceback (most recent call last):\n"), err
    assert "TypeError: not enough arguments for format string\n" in err
    assert f'File "{__file__}", line {line}, in _bad_call\n    log.info("%s %s", 1)' in err  # the call stack
    assert f"Logged from file {__file__}, line {line}\n" in err
    # as stdlib's handleError: the call stack ends at the caller's logging call, not inside logging or logconf
    stack = err.partition("Call stack:\n")[2].partition("Logged from file")[0].splitlines()
    assert stack[-2].endswith(f"line {line}, in _bad_call"), err
    assert err.endswith("Message: '%s %s'\nArguments: (1,)\n"), err
    assert "cannot write" not in err


def test_a_bad_logging_call_is_reported_as_the_callers_error_with_its_call_site(logdir, capfd):
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    line = _bad_call(log)
    _expect_caller_report(capfd.readouterr().err, line)
    log.info("fine")  # writing never failed: no "writing again" report, no dropped count
    assert capfd.readouterr().err == ""
    assert [r["message"] for r in read_records(logdir / "vllm_rank_0.log")] == ["fine"]


def test_a_bad_logging_call_is_reported_each_time_and_never_counted_as_a_dropped_write(logdir, capfd):
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    _bad_call(log)
    _bad_call(log)
    assert capfd.readouterr().err.count("--- Logging error ---") == 2
    handler = logging.getLogger("vllm").handlers[0]
    assert (handler._failing, handler._dropped) == (False, 0)


def test_a_bad_logging_call_says_nothing_when_logging_raise_exceptions_is_off(logdir, capfd, monkeypatch):
    """logging.raiseExceptions = False is stdlib's production switch: its handlers stay silent, and so does logconf."""
    monkeypatch.setattr(logging, "raiseExceptions", False)
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    _bad_call(log)
    log.info("fine")
    assert capfd.readouterr().err == ""
    assert [r["message"] for r in read_records(logdir / "vllm_rank_0.log")] == ["fine"]

def test_a_bad_logging_call_while_records_are_held_is_reported_at_the_call(logdir, capfd, monkeypatch):
    """Held records are frozen when logged, so the caller's error shows at its call, not at set_rank."""
    # A Ray worker that has not imported Ray yet, and has no rank: its script name tells.
    monkeypatch.delitem(sys.modules, "ray", raising=False)
    monkeypatch.setattr(sys, "argv", ["/v/lib/python3.11/site-packages/ray/_private/workers/default_worker.py"])
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    line = _bad_call(log)
    _expect_caller_report(capfd.readouterr().err, line)
    log.info("fine")
    logconf.set_rank(1)
    assert capfd.readouterr().err == ""
    assert [r["message"] for r in read_records(logdir / "vllm_rank_1.log")] == ["fine"]


def test_a_write_failure_is_still_told_as_one(tmp_path, capfd):
    """A file that cannot be written (/dev/full) keeps its own report: cannot write, once."""
    os.symlink("/dev/full", tmp_path / "app.log")
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "file": {
                    "()": "logconf.handlers.RankFileHandler",
                    "directory": str(tmp_path),
                    "filename": "app.log",
                    "follow_symlinks": "true",
                }
            },
            "loggers": {"app": {"handlers": ["file"], "level": "INFO", "propagate": False}},
        }
    )
    log = logging.getLogger("app")
    log.info("one")
    log.info("two")
    err = capfd.readouterr().err
    assert err == (
        f"logconf: cannot write {tmp_path / 'app.log'}: [Errno 28] No space left on device; records are dropped "
        "and this error is not repeated until writing works again\n"
    )
