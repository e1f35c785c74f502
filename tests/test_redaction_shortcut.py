"""Redaction's cheap pre-check skips only lines that the full pattern would leave unchanged."""

from __future__ import annotations

import random

import pytest

from logconf.redact import _mask, _pattern, redact

VLLM_LINE = (
    "2026-11-26T08:47:47.123Z INFO rank=0 EngineCore[4242] vllm.v1.engine.async_llm: Added request cmpl-7f3a-0 with 128 tokens"
)


def test_vllm_request_line_that_mentions_tokens_is_unchanged():
    """'tokens' is a word, not a key: the line comes back as it went in."""
    assert redact(VLLM_LINE) == VLLM_LINE


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("token=abc123 and 128 tokens", "token=*** and 128 tokens"),
        ("token: abc123", "token: ***"),
        ("TOKEN = abc123", "TOKEN = ***"),
        ('{"access_token": "abc123"}', '{"access_token": "***"}'),
        ('{"message": "token=\\"abc123\\""}', '{"message": "token=\\"***\\""}'),
        ("token\t=abc123", "token\t=***"),
        ("pwd=hunter22 with 5 tokens", "pwd=*** with 5 tokens"),
        ("apikey: abc123", "apikey: ***"),
    ],
)
def test_token_and_short_keys_are_still_masked(line, expected):
    """Every form in which 'token', 'pwd' or 'apikey' is a key still reaches the pattern."""
    assert redact(line) == expected


def test_shortcut_agrees_with_the_full_pattern_on_random_lines():
    """On 50,000 seeded random lines built from keys, words and separators, redact() equals the full substitution."""
    words = [
        "token",
        "tokens",
        "Token",
        "TOKEN",
        "access_token",
        "=",
        ":",
        " ",
        '"',
        "'",
        "\\",
        "\t",
        "abc123",
        "secret",
        "pwd",
        "apikey",
        "api_key",
        "Bearer",
        "hf_abcdefghij",
        "sk-abcdefghijk",
        "password",
        "x",
        "{",
        "}",
        ",",
        "WANDB_API_KEY",
        "x-api-key",
        "--api-key",
        "--",
        "-",
        "_",
        "Authorization",
        "Basic",
        "BEARER",
        "https://",
        "user:pass",
        "@",
        "ghp_abcdefghijklmnopqrst",
        "github_pat_abcdefghijklmnopqrstu",
        "hf_overrides",
        "hf_abcdefghijklmnopqrstuvwxyz0123",
        "eos_token",
        "/home",
        "[",
        "]",
    ]
    rng = random.Random(4)
    for _ in range(50_000):
        line = "".join(rng.choice(words) for _ in range(rng.randint(1, 8)))
        assert redact(line) == _pattern().sub(_mask, line), line
