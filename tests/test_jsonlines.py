"""JSON lines are strict JSON, one per record, whose own fields no extra can overwrite.

Records go through the shipped vLLM config (LOGCONF_FORMAT=json), loaded as vLLM loads it;
every line is read back with a parser that refuses NaN and Infinity, as strict readers do.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import subprocess
import sys
import threading

import pytest
from helpers import load_like_vllm, needs_msgspec
from logwriters import REPO, logconf_cli

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def _refuse(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def strict_records(path) -> list[dict]:
    """Every line of a JSON rank file, parsed as RFC 8259 JSON (no NaN, no Infinity)."""
    return [json.loads(line, parse_constant=_refuse) for line in path.read_text(encoding="utf-8").splitlines()]


def own(record: dict, level: str = "INFO") -> dict:
    """The record's own fields, checked: the time is the record's, the rest as the process gave them."""
    assert TIME.fullmatch(record["time"]), record
    head = {k: record[k] for k in ("level", "process_name", "pid", "logger", "rank", "host")}
    assert head == {
        "level": level,
        "process_name": "MainProcess",
        "pid": os.getpid(),
        "logger": "vllm.engine",
        "rank": "2",
        "host": os.uname().nodename,
    }
    return {k: v for k, v in record.items() if k not in ("time", "level", "process_name", "pid", "logger", "rank", "host")}


@pytest.fixture
def json_logs(logdir, monkeypatch, json_encoder):
    """The shipped vLLM config in JSON mode as rank 2, with each JSON encoder; returns the rank file's path."""
    monkeypatch.setenv("LOGCONF_FORMAT", "json")
    monkeypatch.setenv("LOGCONF_RANK", "2")

    def load(redact: str = "1"):
        monkeypatch.setenv("LOGCONF_REDACT", redact)
        load_like_vllm()
        return logdir / "vllm_rank_2.jsonl"

    return load


def test_extras_named_like_the_records_own_fields_are_kept_beside_them(json_logs, logdir):
    """extra={"time": ..., "rank": ...} cannot rewrite the record: they become extra_time, extra_rank..."""
    path = json_logs()
    forged = {"time": 12.5, "rank": 3, "level": "DEBUG", "logger": "forged", "pid": 1, "process_name": "Forged"}
    logging.getLogger("vllm.engine").info("step done", extra=forged)
    (record,) = strict_records(path)
    assert list(record) == [
        "time",
        "level",
        "process_name",
        "pid",
        "logger",
        "message",
        "rank",
        "host",
        "extra_time",
        "extra_rank",
        "extra_level",
        "extra_logger",
        "extra_pid",
        "extra_process_name",
    ]
    assert own(record) == {
        "message": "step done",
        "extra_time": 12.5,
        "extra_rank": 3,
        "extra_level": "DEBUG",
        "extra_logger": "forged",
        "extra_pid": 1,
        "extra_process_name": "Forged",
    }
    summary = subprocess.run(logconf_cli("summary", str(logdir), "--json"), cwd=REPO, capture_output=True, text=True, timeout=60)
    assert summary.returncode == 0, summary.stdout + summary.stderr
    document = json.loads(summary.stdout)
    assert (document["ok"], document["totals"]["other_rank"], document["files"][0]["first"]) == (True, 0, record["time"])
    merged = subprocess.run(logconf_cli("merge", str(logdir)), cwd=REPO, capture_output=True, text=True, timeout=60)
    assert merged.stdout == f"{record['time']} vllm_rank_2.jsonl INFO rank=2 MainProcess[{os.getpid()}] vllm.engine: step done\n"


def test_a_taken_extra_name_moves_on_until_it_is_free(json_logs):
    """An extra already called extra_time keeps its name; the colliding "time" becomes extra_extra_time."""
    path = json_logs()
    logging.getLogger("vllm.engine").info("x", extra={"extra_time": "mine", "time": "theirs"})
    (record,) = strict_records(path)
    assert own(record) == {"message": "x", "extra_time": "mine", "extra_extra_time": "theirs"}


def test_a_dict_message_gives_the_message_and_cannot_rewrite_the_rest(json_logs):
    """logger.info({...}): its "message" is the message; its "logger" and "rank" keys are kept beside the record's."""
    path = json_logs()
    logging.getLogger("vllm.engine").info({"message": "from a dict", "logger": "forged", "rank": 9, "name": "n", "step": 1})
    (record,) = strict_records(path)
    assert own(record) == {"message": "from a dict", "extra_logger": "forged", "extra_rank": 9, "name": "n", "step": 1}


@pytest.mark.parametrize("redact", ["1", "0"])
def test_nan_and_infinity_are_written_as_strings(json_logs, redact):
    """Python's json writes NaN and Infinity bare, which no strict parser reads; logconf writes strings."""
    path = json_logs(redact)
    nan, inf = math.nan, math.inf
    logging.getLogger("vllm.engine").info("metrics", extra={"loss": nan, "grad": inf, "low": -inf, "hist": {"v": [nan, 1.5]}})
    (record,) = strict_records(path)
    assert own(record) == {
        "message": "metrics",
        "loss": "NaN",
        "grad": "Infinity",
        "low": "-Infinity",
        "hist": {"v": ["NaN", 1.5]},
    }


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


@dataclasses.dataclass
class _Holder:
    lock: object
    token: str = ""


@pytest.mark.parametrize("redact", ["1", "0"])
def test_a_value_json_cannot_hold_costs_only_that_value(json_logs, capfd, redact):
    """Tuple keys, cycles, huge ints, deep nesting and failing conversions: the record and its other fields stay."""
    path = json_logs(redact)
    cycle: list = []
    cycle.append(cycle)
    loop: dict = {"name": "loop"}
    loop["self"] = loop
    deep: list = []
    for _ in range(sys.getrecursionlimit() + 100):
        deep = [deep]
    holder = _Holder(threading.Lock())  # dataclasses.asdict deep-copies the lock, which raises
    extra = {
        "good": "kept",
        "by_pair": {(1, 2): "a", 3: "b", None: "c"},
        "cycle": cycle,
        "loop": loop,
        "huge": 10**5000,
        "deep": deep,
        "holder": holder,
        "odd": _Unprintable(),
    }
    log = logging.getLogger("vllm.engine")
    log.info("with bad extras", extra=extra)
    log.info("next record")
    first, second = strict_records(path)
    assert own(first) == {
        "message": "with bad extras",
        "good": "kept",
        "by_pair": {"(1, 2)": "a", "3": "b", "null": "c"},
        "cycle": ["<circular>"],
        "loop": {"name": "loop", "self": "<circular>"},
        "huge": f"<int of {(10**5000).bit_length()} bits>",
        "deep": "<nested too deeply>",
        "holder": repr(holder),
        "odd": "__could_not_encode__",  # python-json-logger's own marker when str() and repr() fail
    }
    assert own(second) == {"message": "next record"}
    assert capfd.readouterr().err == ""


def test_secrets_in_extras_are_masked_inside_the_json(json_logs):
    """A secret key's value becomes "***" whatever its type; strings, keys and reprs are masked as text; the line stays JSON."""
    path = json_logs()
    holder = _Holder(threading.Lock(), token="abc123")  # asdict fails on the lock: written as its repr, masked
    extra = {
        "passwd": 271828182845,
        "api_key": ["sk-one-AAAAAAAA", "sk-two-BBBBBBBB"],
        "cfg": {"password": True, "pwd": "/home/ann", "WANDB_API_KEY": None, "n": 1},
        "note": "retry with token=abc123 and Bearer eyJ0eXAi.x",
        "eos_token": "</s>",
        "by_header": {"Bearer eyJ0eXAi.y": "seen"},
        "holder": holder,
    }
    logging.getLogger("vllm.engine").info("config", extra=extra)
    text = path.read_text(encoding="utf-8")
    for secret in ("271828182845", "sk-one", "sk-two", "abc123", "eyJ0eXAi"):
        assert secret not in text, secret
    (record,) = strict_records(path)
    assert own(record) == {
        "message": "config",
        "passwd": "***",
        "api_key": "***",
        "cfg": {"password": "***", "pwd": "/home/ann", "WANDB_API_KEY": "***", "n": 1},
        "note": "retry with token=*** and Bearer ***",
        "eos_token": "</s>",
        "by_header": {"Bearer ***": "seen"},
        "holder": repr(holder).replace("token='abc123'", "token='***'"),
    }


def test_secret_and_client_secret_are_masked_at_any_depth_and_look_alikes_are_not(json_logs):
    """secret and client_secret are credentials; tokenizer, a pwd holding ~/ and a list seen twice (not a cycle) are not."""
    path = json_logs()
    shared = ["a", 1]
    extra = {
        "client_secret": "Zk9x",
        "tokenizer": "llama",
        "pwd": "~/runs",
        "PWD": "hunter2",
        "cfg": {"secret": {"nested": 1}, "client_secret": "Zk9x", "steps": [shared, shared]},
    }
    logging.getLogger("vllm.engine").info("auth", extra=extra)
    (record,) = strict_records(path)
    assert own(record) == {
        "message": "auth",
        "client_secret": "***",
        "tokenizer": "llama",
        "pwd": "~/runs",
        "PWD": "***",
        "cfg": {"secret": "***", "client_secret": "***", "steps": [["a", 1], ["a", 1]]},
    }


def test_a_secret_in_the_message_of_a_dict_or_a_traceback_is_masked(json_logs):
    path = json_logs()
    log = logging.getLogger("vllm.engine")
    log.info({"message": "login password=hunter2", "headers": {"Authorization": "Basic dXNlcjpwYXNz"}})
    try:
        raise ConnectionError("401 for https://ann:hunter2@db.example/x")
    except ConnectionError:
        log.exception("connect failed with token=abc123")
    first, second = strict_records(path)
    assert own(first) == {"message": "login password=***", "headers": {"Authorization": "***"}}
    assert own(second, "ERROR")["message"] == "connect failed with token=***"
    assert own(second, "ERROR")["exc_info"].endswith("ConnectionError: 401 for https://ann:***@db.example/x")
    assert "hunter2" not in path.read_text(encoding="utf-8")


def test_lone_surrogates_and_non_utf8_bytes_are_kept_escaped(json_logs):
    """A lone surrogate (a non-UTF-8 byte read with surrogateescape) in the message or an extra: valid JSON, text kept."""
    path = json_logs()
    odd = os.fsdecode(b"\xff\xfe raw") + " lone \ud800"
    logging.getLogger("vllm.engine").info("naive %s", odd, extra={"path": odd, "nested": {odd: [odd]}})
    (record,) = strict_records(path)
    assert own(record) == {"message": f"naive {odd}", "path": odd, "nested": {odd: [odd]}}


@pytest.mark.parametrize("redact", ["1", "0"])
def test_unicode_line_breaks_are_escaped_so_every_reader_sees_one_record_per_line(json_logs, redact):
    """U+0085, U+2028 and U+2029 in the message, an extra, a dict key and a traceback: each line is one record to
    str.splitlines() (which splits on all three), and decodes to exactly the text that was logged."""
    path = json_logs(redact)
    breaks = "a\x85b\u2028c\u2029d"
    try:
        raise ValueError(breaks)
    except ValueError:
        logging.getLogger("vllm.engine").exception("step %s", breaks, extra={"why": breaks, "nested": {breaks: [breaks]}})
    logging.getLogger("vllm.engine").info("next")
    text = path.read_text(encoding="utf-8")
    assert not any(char in text for char in "\x85\u2028\u2029")
    assert "\\u0085" in text and "\\u2028" in text and "\\u2029" in text
    first, second = [json.loads(line) for line in text.splitlines()]
    assert (first["message"], first["why"], first["nested"]) == (f"step {breaks}", breaks, {breaks: [breaks]})
    assert first["exc_info"].endswith(f"ValueError: {breaks}")
    assert second["message"] == "next"


def test_both_encoders_write_the_same_line(monkeypatch):
    """msgspec and json give byte-identical lines, whatever the record holds, but for how a float's exponent is spelled."""
    needs_msgspec()
    from logconf.jsonlines import JsonFormatter

    cycle: list = []
    cycle.append(cycle)
    try:
        raise ValueError("boom token=abc123")
    except ValueError:
        exc_info = sys.exc_info()
    odd = os.fsdecode(b"\xff raw")
    cases = [
        ("Added request %s-%d with %d tokens", ("cmpl-7f3a", 1, 128), None, {}),
        ("naïve \u2028 \x00 \x7f \"quoted\" \\ %s", (odd,), None, {}),
        ("failed", (), exc_info, {"step": 7}),
        ("metrics", (), None, {"loss": math.nan, "lr": 1e-100, "big": 2**80, "huge": 10**5000, "flag": True, "none": None}),
        ("nested", (), None, {"d": {1: [1.5, math.inf], None: "n", (1, 2): cycle}, "t": (1, "two"), "token": "abc", "s": odd}),
        ({"message": "from a dict", "rank": 9, "when": dataclasses.field}, (), None, {}),
    ]
    for redact in (True, False):
        msgspec_fmt = JsonFormatter(rank="3", redact=redact, encoder="msgspec")
        json_fmt = JsonFormatter(rank="3", redact=redact, encoder="json")
        for msg, args, exc, extra in cases:
            record = logging.LogRecord("vllm.engine", logging.INFO, "x.py", 7, msg, args, exc)
            record.__dict__.update(extra)
            line = msgspec_fmt.format(record)
            assert line == json_fmt.format(record), (msg, redact)
            json.loads(line, parse_constant=_refuse)
    # A float with an exponent is the same number, spelled 1e16 by msgspec and 1e+16 by json.
    record = logging.LogRecord("vllm.engine", logging.INFO, "x.py", 7, "x", (), None)
    record.__dict__.update(lr=1.5e-7, big=1e16)
    lines = [JsonFormatter(rank="3", encoder=name).format(record) for name in ("msgspec", "json")]
    assert [line[line.index('"lr"') :] for line in lines] == ['"lr":1.5e-7,"big":1e16}', '"lr":1.5e-07,"big":1e+16}']
    assert json.loads(lines[0]) == json.loads(lines[1])


def test_msgspec_is_used_where_it_imports_and_json_where_it_does_not(logdir):
    """The default encoder: msgspec when importable (every vLLM process has it); without it, json writes the same records."""
    needs_msgspec()
    script = (
        "import sys, logging\n"
        "if sys.argv[1] == 'blocked': sys.modules['msgspec'] = None\n"
        "sys.path.insert(0, 'tests')\n"
        "from helpers import load_like_vllm\n"
        "load_like_vllm()\n"
        "logging.getLogger('vllm.engine').info('hello %s', sys.argv[1], extra={'loss': float('nan')})\n"
        "handler = logging.getLogger('vllm').handlers[0]\n"
        "print(handler.formatter.encoder, 'msgspec' in sys.modules and sys.modules['msgspec'] is not None)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "LOGCONF_DIR": str(logdir), "LOGCONF_FORMAT": "json", "LOGCONF_RANK": "2"}
    seen = {}
    for mode in ("importable", "blocked"):
        done = subprocess.run([sys.executable, "-c", script, mode], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        seen[mode] = done.stdout.split()
    assert seen == {"importable": ["msgspec", "True"], "blocked": ["json", "False"]}
    records = strict_records(logdir / "vllm_rank_2.jsonl")
    assert [(r["message"], r["loss"]) for r in records] == [("hello importable", "NaN"), ("hello blocked", "NaN")]


# The README's schema table: (field, type, since), in the order the lines write them.
SCHEMA = [
    ("time", "string", "0.1.0"),
    ("level", "string", "0.1.0"),
    ("process_name", "string", "0.1.0"),
    ("pid", "integer", "0.1.0"),
    ("logger", "string", "0.1.0"),
    ("message", "string", "0.1.0"),
    ("rank", "string", "0.1.0"),
    ("host", "string", "0.1.0"),
    ("job_id", "string", "0.1.0"),
    ("node_id", "string", "0.1.0"),
    ("worker_id", "string", "0.1.0"),
    ("actor_id", "string", "0.1.0"),
    ("actor_name", "string", "0.1.0"),
    ("task_id", "string", "0.1.0"),
    ("exc_info", "string", "0.1.0"),
    ("stack_info", "string", "0.1.0"),
]


def _readme_schema() -> list[tuple[str, str, str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    table = text.split("## JSON lines for log shippers\n", 1)[1].split("\n\n", 2)[1]
    rows = [line.split(" | ") for line in table.splitlines()[2:]]
    return [(name.strip("| `"), kind, since.rstrip(" |")) for name, kind, _, since in rows if name.startswith("| `")]


def test_the_readme_documents_every_field_in_the_order_lines_write_them(json_logs):
    """The README's table is the schema; a plain record (outside Ray) writes its fields in that order, Ray's
    fields and the traceback's where they belong (tests/real/test_real_stack.py checks Ray's on real actors)."""
    from logconf.raycontext import CONTEXT_FIELDS

    assert _readme_schema() == SCHEMA
    names = [name for name, _, _ in SCHEMA]
    assert names[names.index("host") + 1 : names.index("task_id")] == list(CONTEXT_FIELDS)
    path = json_logs()
    log = logging.getLogger("vllm.engine")
    log.info("plain")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed", stack_info=True)
    plain, failed = strict_records(path)
    assert list(plain) == names[: names.index("host") + 1]
    assert list(failed) == [*names[: names.index("host") + 1], "exc_info", "stack_info"]
    kinds = {"string": str, "integer": int}
    for name, kind, _ in SCHEMA:
        if name in failed:
            assert type(failed[name]) is kinds[kind], name


# Grafana Loki's level detection (pkg/distributor/level_detection.go, Loki 3): in a JSON line, the value of a
# `level` key (or `severity`, `lvl`), compared case-insensitively with these; any other value, and Loki guesses
# the level from words anywhere in the line.
LOKI_LEVELS = {"trace", "trc", "debug", "dbg", "info", "inf", "warn", "wrn", "warning", "error", "err", "critical", "fatal"}


def test_every_stdlib_level_and_loguru_trace_is_a_level_loki_detects_and_success_is_not(json_logs, monkeypatch):
    """The README's Loki row: `level` as is, for the stdlib's five levels and Loguru's TRACE; Loguru's SUCCESS and a
    number with no name are no level Loki knows, as the README says."""
    from logconf import loguru_bridge

    monkeypatch.setattr(logging, "_levelToName", dict(logging._levelToName))  # the names registered below go with the test
    monkeypatch.setattr(logging, "_nameToLevel", dict(logging._nameToLevel))
    loguru_bridge.register_levels()
    path = json_logs()
    log = logging.getLogger("vllm.engine")
    log.setLevel(1)
    levels = (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL, loguru_bridge.TRACE)
    for level in (*levels, loguru_bridge.SUCCESS, 7):
        log.log(level, "a record")
    written = [record["level"] for record in strict_records(path)]
    assert written == ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "TRACE", "SUCCESS", "Level 7"]
    assert [name for name in written if name.lower() not in LOKI_LEVELS] == ["SUCCESS", "Level 7"]
    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    assert "Loguru's `SUCCESS` and `Level N` are no level Loki knows" in readme


def test_host_is_logconf_hostname_when_set_and_a_bad_one_is_refused_when_the_config_loads(json_logs, monkeypatch):
    monkeypatch.setenv("LOGCONF_HOSTNAME", "gpu-node-7")
    path = json_logs()
    logging.getLogger("vllm.engine").info("x")
    (record,) = strict_records(path)
    assert record["host"] == "gpu-node-7"
    monkeypatch.setenv("LOGCONF_HOSTNAME", "bad/host")
    with pytest.raises(ValueError) as caught:  # dictConfig's, with logconf's ConfigError as its cause
        load_like_vllm()
    cause = caught.value.__cause__
    assert type(cause).__name__ == "ConfigError"
    assert "LOGCONF_HOSTNAME" in str(cause) and "'bad/host'" in str(cause)
