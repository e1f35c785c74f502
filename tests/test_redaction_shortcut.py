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


HF_30 = "hf_" + "a1" * 15  # the shortest hf_ token: 30 letters and digits
GHP_20 = "ghp_" + "A1b2C3d4E5" * 2  # the shortest GitHub token: 20 after the prefix


# One line per cheap pre-check in may_hold_secret (the substring that lets it reach the pattern), each
# with the exact line that must come back: a pre-check that skipped it would return the line unmasked.
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("sent Bearer abc123 upstream", "sent Bearer *** upstream"),  # "earer"
        ("using sk-abcdefgh now", "using sk-*** now"),  # "sk-", 8 characters after it: the shortest
        ("using sk-abcdefg now", "using sk-abcdefg now"),  # 7: not a key
        ("login password=abc123 ok", "login password=*** ok"),  # "assw"
        ("login passwd=abc123 ok", "login passwd=*** ok"),
        ("passphrase: 'a b c'", "passphrase: '***'"),  # "phrase"
        ("+ wandb login 0123456789abcdef0123456789abcdef01234567", "+ wandb login ***"),  # "login"
        ("GET /x?sig=abc%2B&se=1", "GET /x?sig=***&se=1"),  # "sig=" after "="
        ("GET /x?X-Amz-Signature=5d67", "GET /x?X-Amz-Signature=***"),  # "signature="
        ("secret=abc123 and more", "secret=*** and more"),  # "ecret"
        ("oauth client_secret: Zk9x-7 id=42", "oauth client_secret: *** id=42"),
        ("{'secret': 'abc'}", "{'secret': '***'}"),
        ("apikey: abc123", "apikey: ***"),  # "key"
        ("pwd=hunter22 with 5 tokens", "pwd=*** with 5 tokens"),  # "pwd"
        ("pwd: ~/runs/today", "pwd: ~/runs/today"),  # a directory, not a password
        ("pwd=/home/ann", "pwd=/home/ann"),
        ("authorization: Basic dXNlcg", "authorization: Basic ***"),  # "uthoriz": the scheme word stays
        ("password: Basic hunter2", "password: ***"),  # only authorization keeps a scheme word
        ("to https://ann:pw0@host/x", "to https://ann:***@host/x"),  # "@" and "://"
        (f"using {HF_30} now", "using hf_*** now"),  # "hf_"
        (f"using {HF_30[:-1]} now", f"using {HF_30[:-1]} now"),  # 29: hf_overrides-like words stay
        ("push github_pat_" + "a" * 20 + " done", "push github_pat_*** done"),  # "hub_pat_"
        (f"clone {GHP_20}", "clone ghp_***"),
        (f"clone gho_{GHP_20[4:]} ghu_{GHP_20[4:]}", "clone gho_*** ghu_***"),
        (f"clone ghs_{GHP_20[4:]} ghr_{GHP_20[4:]}", "clone ghs_*** ghr_***"),
        ("token=abc123 and 128 tokens", "token=*** and 128 tokens"),  # "oken" then each character that may follow a key
        ("token: abc123", "token: ***"),
        ("{'token': 'abc123'}", "{'token': '***'}"),
        ('{"token": "abc123"}', '{"token": "***"}'),
        ('payload {\\"token\\": \\"abc123\\"}', 'payload {\\"token\\": \\"***\\"}'),  # JSON escaped in a message
        ("token = abc123", "token = ***"),
        ("token\t=abc123", "token\t=***"),
        ("token\x0c: abc123", "token\x0c: ***"),  # any blank, not only space and tab
        ("token\n: abc123", "token\n: abc123"),  # but not a line break: the next line is not this key's value
        ("api_key: ['a', 'b'] set", "api_key: [***] set"),  # a list value is masked whole
        ("eos_token: </s> pad_token=<pad>", "eos_token: </s> pad_token=<pad>"),  # tokenizer vocabulary
        ("eos_token: EOS pad_token=PAD", "eos_token: EOS pad_token=PAD"),  # by its name, whatever it holds
        ("Added request cmpl-1 with 128 tokens", "Added request cmpl-1 with 128 tokens"),
    ],
)
def test_each_pre_check_lets_its_secrets_through_to_exact_masks(line, expected):
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
        # the forms added for whole values, pairs, private keys, wandb and token names
        "wandb login ",
        "0123456789abcdef0123456789abcdef01234567",
        "passphrase",
        "b'",
        "(",
        ")",
        "\\n",
        "\n",
        "-----BEGIN PRIVATE KEY-----",
        "-----END PRIVATE KEY-----",
        "MIIEpAIBAAKCAQEA",
        "?sig=",
        "&",
        "accessToken",
        "AccountKey",
        "--key",
        "Sampled ",
        "API ",
        "35",
        "<s>",
        "None",
        "~/.ssh/id_rsa",
        "sk-learn-experiment",
    ]
    rng = random.Random(4)
    for _ in range(50_000):
        line = "".join(rng.choice(words) for _ in range(rng.randint(1, 8)))
        assert redact(line) == _pattern().sub(_mask, line), line
