"""Redaction masks real secrets, exactly, in text and JSON lines; leaves look-alikes alone; stays linear.

Every case is logged through the handlers of the shipped vLLM config, loaded as vLLM loads
it, and read back from the rank file.
"""

from __future__ import annotations

import json
import logging
import time

import pytest
from helpers import load_like_vllm, read_records

from logconf.redact import redact

GHP = "ghp_" + "aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI3kM5"  # ghp_ + 36, as GitHub issues them
PAT = "github_pat_11ABCDEFG0" + "x" * 12 + "_" + "Y7" * 29  # github_pat_ + 82
HF = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567"

MASKED = {
    "wandb_api_key": ("WANDB_API_KEY=0123456789abcdef0123456789abcdef", "WANDB_API_KEY=***"),
    "aws_secret_access_key": ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCY", "AWS_SECRET_ACCESS_KEY=***"),
    "github_token_key": (f"env GITHUB_TOKEN: {GHP} set", "env GITHUB_TOKEN: *** set"),
    "ghp_alone": (f"cloning with {GHP} now", "cloning with ghp_*** now"),
    "github_pat_alone": (f"push using {PAT}", "push using github_pat_***"),
    "x_api_key_header": ("x-api-key: 5f2b8c1d9e", "x-api-key: ***"),
    "x_api_key_in_headers_dict": (
        "headers={'X-Api-Key': '5f2b8c1d9e', 'Accept': '*/*'}",
        "headers={'X-Api-Key': '***', 'Accept': '*/*'}",
    ),
    "cli_api_key": (
        "vllm serve /models/llama --api-key my-server-key-123 --port 8001",
        "vllm serve /models/llama --api-key *** --port 8001",
    ),
    "cli_hf_token_equals": (f"args: --hf-token={HF} --seed 0", "args: --hf-token=*** --seed 0"),
    "cli_argv_list": (
        "argv: ['vllm', 'serve', '--api-key', 'my-server-key-123', '--port', '8001']",
        "argv: ['vllm', 'serve', '--api-key', '***', '--port', '8001']",
    ),
    "url_password": (
        "connecting to postgresql://ann:hunter2@db.example:5432/runs",
        "connecting to postgresql://ann:***@db.example:5432/runs",
    ),
    "url_password_without_user": ("cache at redis://:s3cr3t@cache:6379/0", "cache at redis://:***@cache:6379/0"),
    "authorization_basic": ("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic ***"),
    "authorization_bearer_capitals": ("AUTHORIZATION: BEARER eyJhbGciOi.J9-abc", "AUTHORIZATION: BEARER ***"),
    "bearer_capitals": ("sent BEARER eyJhbGciOi.J9-abc upstream", "sent BEARER *** upstream"),
    "secret_key": ("secret=s3cr3t-value and more", "secret=*** and more"),
    "secret_in_a_dict": ("{'secret': 'abc', 'n': 1}", "{'secret': '***', 'n': 1}"),
    "client_secret_key": ("oauth client_secret: Zk9x-7 id=42", "oauth client_secret: *** id=42"),
    "client_secret_in_a_dict": ("{'client_id': 'app', 'client_secret': 'Zk9x'}", "{'client_id': 'app', 'client_secret': '***'}"),
    "pwd_password": ("login user=ann pwd=hunter22", "login user=ann pwd=***"),
    "password_that_starts_with_a_scheme_word": ("password: Basic hunter2", "password: ***"),
}

UNCHANGED = {
    "hf_overrides": "non-default args: {'hf_overrides': {'rope_scaling': {'type': 'dynamic', 'factor': 2.0}}}",
    "hf_transfer": "HF_HUB_ENABLE_HF_TRANSFER=1: hf_transfer is enabled",
    "pwd_directory": "pwd: /home/ann/skyrl",
    "PWD_directory": "env PWD=/home/ann/skyrl SHELL=/bin/bash",
    "tokenizer_special_tokens": "special tokens: {'eos_token': '</s>', 'pad_token': '<pad>', 'bos_token': '<s>'}",
    "tokens_word": "Added request cmpl-7f3a-0 with 128 tokens",
    "max_tokens": "SamplingParams(max_tokens=128, temperature=1.0)",
    "url_without_password": "GET https://huggingface.co/api/models/org/model@main from user@example.com",
    "basic_in_prose": "Basic scheduling: 4 requests",
}


def _logged(logdir, monkeypatch, fmt: str, line: str) -> str:
    monkeypatch.setenv("LOGCONF_FORMAT", fmt)
    load_like_vllm()
    logging.getLogger("vllm.engine").info("%s", line)
    if fmt == "json":
        (record,) = [json.loads(text) for text in (logdir / "vllm_rank_0.jsonl").read_text(encoding="utf-8").splitlines()]
    else:
        (record,) = read_records(logdir / "vllm_rank_0.log")
    return record["message"]


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("name", list(MASKED))
def test_secret_is_masked_exactly(logdir, monkeypatch, fmt, name):
    line, expected = MASKED[name]
    assert _logged(logdir, monkeypatch, fmt, line) == expected


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("name", list(UNCHANGED))
def test_a_look_alike_that_is_not_a_secret_is_written_unchanged(logdir, monkeypatch, fmt, name):
    assert _logged(logdir, monkeypatch, fmt, UNCHANGED[name]) == UNCHANGED[name]


def test_a_secret_only_in_a_traceback_is_masked_in_a_text_record(logdir):
    """The message holds nothing to mask, the exception does: the traceback's last line is masked."""
    load_like_vllm()
    try:
        raise ConnectionError("401 for https://ann:hunter2@db.example/x")
    except ConnectionError:
        logging.getLogger("vllm.engine").exception("connect failed")
    first, *rest = (logdir / "vllm_rank_0.log").read_text(encoding="utf-8").splitlines()
    assert first.endswith(" vllm.engine: connect failed")
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ConnectionError: 401 for https://ann:***@db.example/x"


ADVERSARIAL = [
    "token=[ ",  # an unclosed list after every key: each one used to scan to the end of the line
    "'api_key': [",
    "token: [ [",
    "--api-key ",
    "--a-b-c-",
    "://user:pass",
    "Authorization: Bearer ",
    "eos_token=",
    "x_api_key_",
]


def _seconds(text: str) -> float:
    # This thread's CPU time: time spent waiting for a core on a loaded machine does not count.
    start = time.thread_time()
    redact(text)
    return time.thread_time() - start


@pytest.mark.parametrize("unit", ADVERSARIAL)
def test_masking_time_grows_linearly_with_the_line(unit):
    """Eight times the text takes about eight times as long, not sixty-four (a ratio, not an absolute time).

    Each size keeps its best of seven runs of this thread's CPU time, so other processes on a busy
    machine do not count.
    """
    redact("token=x")  # compile the pattern outside the measurement
    small = min(_seconds(unit * 1000) for _ in range(7))
    large = float("inf")
    for _ in range(7):
        large = min(large, _seconds(unit * 8000))
        if large < 24 * small:
            break
    assert large < 24 * small, f"{unit!r}: {small * 1e3:.2f} ms for 1,000, {large * 1e3:.2f} ms for 8,000"
