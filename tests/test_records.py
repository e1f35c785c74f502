"""Every line carries time (ms), level, rank, process name, pid, logger and message."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import types

import pytest
from helpers import load_like_vllm, read_records

import logconf


def test_text_line_carries_every_field(logdir, monkeypatch):
    monkeypatch.setenv("LOGCONF_RANK", "4")
    load_like_vllm()
    logging.getLogger("vllm.engine").info("hello %s", "world")
    line = (logdir / "vllm_rank_4.log").read_text()
    pattern = rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z INFO rank=4 MainProcess\[{os.getpid()}\] vllm\.engine: hello world\n"
    assert re.fullmatch(pattern, line), line


def test_a_text_line_reads_back_with_the_same_fields_and_types_as_a_json_line(logdir, monkeypatch):
    """parse_line gives a text record the JSON record's fields, pid a number in both: readers compare them as one."""
    monkeypatch.setenv("LOGCONF_RANK", "4")
    load_like_vllm()
    logging.getLogger("vllm.engine").info("hello")
    monkeypatch.setenv("LOGCONF_FORMAT", "json")
    load_like_vllm()
    logging.getLogger("vllm.engine").info("hello")
    (text,) = read_records(logdir / "vllm_rank_4.log")
    (line,) = read_records(logdir / "vllm_rank_4.jsonl")
    fields = ("level", "rank", "process_name", "pid", "logger", "message")
    assert {k: text[k] for k in fields} == {k: line[k] for k in fields} == {
        "level": "INFO", "rank": "4", "process_name": "MainProcess", "pid": os.getpid(), "logger": "vllm.engine",
        "message": "hello",
    }

def test_json_lines_are_objects_with_fields_and_exceptions(logdir, monkeypatch):
    monkeypatch.setenv("LOGCONF_FORMAT", "json")
    monkeypatch.setenv("LOGCONF_RANK", "2")
    logconf.apply()
    log = logging.getLogger("skyrl_train.trainer")
    log.info("line one\nline two", extra={"step": 7})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    lines = (logdir / "skyrl_rank_2.jsonl").read_text().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "line one\nline two"
    assert first["step"] == 7
    assert {k: first[k] for k in ("level", "rank", "process_name", "pid", "logger")} == {
        "level": "INFO",
        "rank": "2",
        "process_name": "MainProcess",
        "pid": os.getpid(),
        "logger": "skyrl_train.trainer",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["time"])
    assert "ValueError: boom" in second["exc_info"] and "Traceback" in second["exc_info"]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_times_are_utc_truncated_to_the_millisecond_whatever_order_records_come_in(logdir, monkeypatch, fmt):
    """1700000000.9996 is 22:13:20.999Z, not 22:13:21; a later and an earlier second each get their own text."""
    monkeypatch.setenv("LOGCONF_FORMAT", fmt)
    load_like_vllm()
    log = logging.getLogger("vllm.clock")
    # (created, msecs as LogRecord computes it: truncated, never rounded)
    for created, msecs in ((1700000000.9996, 999.0), (1700000001.0004, 0.0), (1699999999.5, 500.0)):
        record = logging.makeLogRecord({"name": log.name, "levelno": logging.INFO, "levelname": "INFO", "msg": "tick"})
        record.created, record.msecs = created, msecs
        log.handle(record)
    path = logdir / ("vllm_rank_0.log" if fmt == "text" else "vllm_rank_0.jsonl")
    assert [r["time"] for r in read_records(path)] == [
        "2023-11-14T22:13:20.999Z",
        "2023-11-14T22:13:21.000Z",
        "2023-11-14T22:13:19.500Z",
    ]


def test_text_traceback_follows_its_record(logdir):
    load_like_vllm()
    try:
        raise KeyError("k")
    except KeyError:
        logging.getLogger("vllm.x").exception("lookup failed")
    text = (logdir / "vllm_rank_0.log").read_text()
    first, *rest = text.splitlines()
    assert first.endswith("vllm.x: lookup failed")
    assert rest[0] == "Traceback (most recent call last):" and rest[-1] == "KeyError: 'k'"


def test_unicode_and_lone_surrogates_never_raise(logdir):
    load_like_vllm()
    logging.getLogger("vllm.x").info("naïve \udcff bytes")
    assert read_records(logdir / "vllm_rank_0.log")[0]["message"] == "naïve \\udcff bytes"


class _ActorContext:
    """What Ray's runtime context tells inside an actor of class ``PolicyWorker`` (only the calls logconf makes)."""

    descriptor = types.SimpleNamespace(class_name="PolicyWorker")
    current_actor = types.SimpleNamespace(_ray_actor_creation_function_descriptor=descriptor)

    def get_actor_id(self) -> str:
        return "a1b2c3"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_an_actors_main_process_shows_the_actor_class_and_its_children_their_own_names(logdir, monkeypatch, fmt):
    """In a Ray actor, MainProcess is written as the actor's class; a child process (EngineCore_DP0) keeps its name."""
    ray = types.ModuleType("ray")
    ray.is_initialized = lambda: True  # type: ignore[attr-defined]
    ray.get_runtime_context = _ActorContext  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ray", ray)
    monkeypatch.setenv("LOGCONF_RANK", "1")  # ranked: nothing is held
    monkeypatch.setenv("LOGCONF_FORMAT", fmt)
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    log.info("from the actor")
    child = logging.makeLogRecord({"name": log.name, "levelno": logging.INFO, "levelname": "INFO", "msg": "from the child"})
    child.processName = "EngineCore_DP0"
    log.handle(child)
    path = logdir / ("vllm_rank_1.log" if fmt == "text" else "vllm_rank_1.jsonl")
    assert [(r["process_name"], r["message"]) for r in read_records(path)] == [
        ("PolicyWorker", "from the actor"),
        ("EngineCore_DP0", "from the child"),
    ]
