"""A rank is one printable word: it goes into every text line and every file name.

A rank holding a line break could forge another rank's records, a blank would split the
text line's ``rank=`` field, and a lone surrogate (a non-UTF-8 byte in the environment)
cannot be written at all; each is refused with a ConfigError that names the variable.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time

import pytest
from helpers import load_like_vllm, read_records

import logconf
from logconf import ConfigError

FORGED = "0\n2026-11-26T08:47:47.123Z INFO rank=1 EngineCore[1] vllm.engine: forged"

BAD_RANKS = {
    "line_break": (FORGED, "a blank or a line break (U+000A)"),
    "blank": ("dp 0", "a blank or a line break (U+0020)"),
    "escape_sequence": ("0\x1b[31m", "a control or other unprintable character (U+001B)"),
    "nul": ("0\x00", "a control or other unprintable character (U+0000)"),
    "unicode_line_separator": ("0\u20281", "a blank or a line break (U+2028)"),
    "lone_surrogate": ("0\ud800", "a lone surrogate, which UTF-8 cannot hold (U+D800)"),
    "at_sign": ("0@node1", "'@'"),  # it separates rank and host in per-host file names
}
VALID = "without '/', '..', '@', blanks or control characters, such as 0, driver or dp0-tp1"


@pytest.mark.parametrize("name", list(BAD_RANKS))
def test_set_rank_refuses_a_rank_that_is_not_one_printable_word(logdir, name):
    """set_rank names the variable, the value and the fault; the process keeps its rank and its files."""
    value, fault = BAD_RANKS[name]
    logconf.apply()
    with pytest.raises(ConfigError) as caught:
        logconf.set_rank(value)
    assert str(caught.value) == (
        f"set_rank(): rank: ${{LOGCONF_RANK}} = {value!r} is not a valid rank: it holds {fault} "
        f"(got '${{LOGCONF_RANK}}'); give ${{LOGCONF_RANK}} a value {VALID}"
    )
    assert "LOGCONF_RANK" not in os.environ
    logging.getLogger("skyrl_train.trainer").info("still rank 0")
    assert [(r["rank"], r["message"]) for r in read_records(logdir / "skyrl_rank_0.log")] == [("0", "still rank 0")]
    assert sorted(p.name for p in logdir.iterdir()) == ["skyrl_rank_0.log"]


@pytest.mark.parametrize("variable", ["LOGCONF_RANK", "RANK"])
@pytest.mark.parametrize("name", ["line_break", "blank", "escape_sequence"])
def test_a_bad_rank_in_the_environment_fails_vllms_own_load(logdir, monkeypatch, variable, name):
    """vLLM's json.loads + dictConfig of the shipped file raises, naming the variable; no file is made."""
    value, fault = BAD_RANKS[name]
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError) as caught:
        load_like_vllm()
    chain, error = [], caught.value
    while error is not None:
        chain.append(str(error))
        error = error.__cause__ or error.__context__
    expected = f"${{{variable}}} = {value!r} is not a valid rank: it holds {fault}"
    assert any(expected in text and f"give ${{{variable}}} a value {VALID}" in text for text in chain), chain
    assert not logdir.exists() or list(logdir.iterdir()) == []


def test_a_non_utf8_byte_in_rank_is_refused(logdir, monkeypatch):
    """RANK=b'0\\xff' reaches Python as '0\\udcff' (surrogateescape): refused, not written as '?' or crashing emit."""
    monkeypatch.setenv("RANK", "0\udcff")
    with pytest.raises(ConfigError) as caught:
        logconf.apply()
    assert "${RANK} = '0\\udcff' is not a valid rank: it holds a lone surrogate, which UTF-8 cannot hold (U+DCFF)" in str(
        caught.value
    )


@pytest.mark.parametrize("rank", ["0", "driver", "dp0-tp1", "50%"])
def test_printable_ranks_are_kept_and_a_percent_is_written_as_is(logdir, monkeypatch, rank):
    """'%' in a rank is escaped in the text format: unescaped, every text record would fail to format."""
    monkeypatch.setenv("LOGCONF_RANK", rank)
    load_like_vllm()
    logging.getLogger("vllm.engine").info("hello %s", "world")
    line = (logdir / f"vllm_rank_{rank}.log").read_text(encoding="utf-8")
    prefix = rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z INFO rank={re.escape(rank)} MainProcess\[{os.getpid()}\] "
    assert re.fullmatch(prefix + r"vllm\.engine: hello world\n", line), line
    assert [(r["rank"], r["message"]) for r in read_records(logdir / f"vllm_rank_{rank}.log")] == [(rank, "hello world")]


def test_set_rank_to_a_percent_rank_keeps_text_records(logdir):
    """set_rank rebuilds the text format with the new rank: '50%' must not turn every record into an error."""
    load_like_vllm()
    logconf.set_rank("50%")
    logging.getLogger("vllm.engine").info("after set_rank")
    assert [(r["rank"], r["message"]) for r in read_records(logdir / "vllm_rank_50%.log")] == [("50%", "after set_rank")]


def test_set_rank_refuses_a_rank_that_would_make_a_path(logdir):
    """set_rank("a/b") would name a file in a subdirectory: refused, naming the value; nothing moves."""
    load_like_vllm()
    with pytest.raises(ConfigError) as caught:
        logconf.set_rank("a/b")
    assert str(caught.value) == (
        "set_rank(): rank: ${LOGCONF_RANK} = 'a/b' is not a valid rank: it holds '/' or '..' "
        f"(got '${{LOGCONF_RANK}}'); give ${{LOGCONF_RANK}} a value {VALID}"
    )
    assert "LOGCONF_RANK" not in os.environ
    logging.getLogger("vllm.engine").info("still rank 0")
    assert [(r["rank"], r["message"]) for r in read_records(logdir / "vllm_rank_0.log")] == [("0", "still rank 0")]
    assert sorted(p.name for p in logdir.iterdir()) == ["vllm_rank_0.log"]


def test_set_rank_in_json_mode_moves_the_file_and_the_rank_field(logdir, monkeypatch):
    monkeypatch.setenv("LOGCONF_FORMAT", "json")
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    log.info("as rank 0")
    logconf.set_rank(5)
    log.info("as rank 5")
    assert [(r["rank"], r["message"]) for r in read_records(logdir / "vllm_rank_0.jsonl")] == [("0", "as rank 0")]
    assert [(r["rank"], r["message"]) for r in read_records(logdir / "vllm_rank_5.jsonl")] == [("5", "as rank 5")]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_set_rank_while_another_thread_logs_never_puts_a_rank_in_another_ranks_file(logdir, monkeypatch, fmt):
    """The formatters and the files switch together: every line's rank is its file's rank."""
    monkeypatch.setenv("LOGCONF_FORMAT", fmt)
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    stop, count = threading.Event(), [0]

    def keep_logging() -> None:
        while not stop.is_set():
            log.info("n %d", count[0])
            count[0] += 1

    thread = threading.Thread(target=keep_logging)
    thread.start()
    try:
        for rank in range(1, 21):
            seen = count[0]
            while count[0] < seen + 50 and thread.is_alive():  # let it log under the old rank first
                time.sleep(0)
            logconf.set_rank(rank)
    finally:
        stop.set()
        thread.join()
    suffix = ".jsonl" if fmt == "json" else ".log"
    files = sorted(logdir.iterdir())
    assert [p.name for p in files] == sorted(f"vllm_rank_{r}{suffix}" for r in range(21))
    total = 0
    for path in files:
        rank = path.name.removeprefix("vllm_rank_").removesuffix(suffix)
        ranks = [r["rank"] for r in read_records(path)]
        assert ranks and set(ranks) == {rank}, (path.name, sorted(set(ranks)))
        total += len(ranks)
    assert total == count[0]
