"""Redaction masks real secrets, exactly, in text and JSON lines and the stdio copy; leaves
look-alikes and vLLM's own lines alone; stays linear.

Every case is logged through the handlers of the shipped vLLM config, loaded as vLLM loads
it, and read back from the rank file; the table of tests/redaction_cases.py also goes through
a real stdio tee.
"""

from __future__ import annotations

import json
import logging
import re
import time

import pytest
from helpers import load_like_vllm, read_records
from redaction_cases import BENIGN, SECRETS
from test_capture import run_child, stdio_lines

from logconf.redact import StreamRedactor, redact

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


# Every case of tests/redaction_cases.py, by name: the line as logged and as it must be written.
TABLE = {**SECRETS, **{name: (line, line) for name, line in BENIGN.items()}}
EXPECTED = {name: expected for name, (_, expected) in TABLE.items()}
# The start of a text record of the shipped vLLM config, logged by vllm.engine.
TEXT_HEAD = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO rank=0 \S+ vllm\.engine: ", re.MULTILINE)


def test_the_table_holds_60_secrets_and_30_lines_to_leave_alone():
    """The issue asks for at least 60 real-world secrets and 30 real lines without one; every name is unique."""
    assert len(SECRETS) >= 60
    assert len(BENIGN) >= 30
    assert len(TABLE) == len(SECRETS) + len(BENIGN)


def test_every_table_line_through_the_text_formatter(logdir):
    """Each secret masked whole, the rest of its line as it was; each line vLLM, Ray, SkyRL or transformers prints unchanged."""
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    for line, _ in TABLE.values():
        log.info("%s", line)
    text = (logdir / "vllm_rank_0.log").read_text(encoding="utf-8")
    messages = [message.removesuffix("\n") for message in TEXT_HEAD.split(text)[1:]]
    assert dict(zip(TABLE, messages, strict=True)) == EXPECTED


def test_every_table_line_through_the_json_formatter_as_message_and_extra(logdir, monkeypatch, json_encoder):
    """The same table in JSON lines, as the message and as a string extra: the same exact text in both."""
    monkeypatch.setenv("LOGCONF_FORMAT", "json")
    load_like_vllm()
    log = logging.getLogger("vllm.engine")
    for line, _ in TABLE.values():
        log.info("%s", line, extra={"detail": line})
    lines = (logdir / "vllm_rank_0.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert {name: record["message"] for name, record in zip(TABLE, records, strict=True)} == EXPECTED
    assert {name: record["detail"] for name, record in zip(TABLE, records, strict=True)} == EXPECTED


def test_every_table_line_through_the_stdio_tee(logdir):
    """The table printed by a captured process: the .stdio.log copy masked exactly, each line prefixed; the real fd untouched."""
    code = (
        "from redaction_cases import BENIGN, SECRETS\n"
        "load_like_vllm()\n"
        "for name, line in [*((n, line) for n, (line, _) in SECRETS.items()), *BENIGN.items()]:\n"
        "    print('=== ' + name)\n"
        "    print(line, flush=True)\n"
    )
    result = run_child(code, logdir)
    assert result.returncode == 0, result.stderr
    printed = "".join(f"=== {name}\n{line}\n" for name, (line, _) in TABLE.items())
    assert result.stdout.decode() == printed
    copied: dict[str, list[str]] = {}
    case: list[str] = []
    for _, _, text in stdio_lines(logdir):
        if text.startswith("=== "):
            copied[text[4:]] = case = []
        else:
            case.append(text)
    # The tee drops blank lines and reads a tab as it comes: compare line by line, blank lines left out.
    expected = {name: [line for line in text.split("\n") if line] for name, text in EXPECTED.items()}
    assert copied == expected


def test_a_private_key_printed_line_by_line_is_masked_in_the_stdio_copy(logdir):
    """BEGIN, body and END lines written apart, each copied by the tee before the next: the body never reaches the copy."""
    code = """
        import os, time
        load_like_vllm()
        copy = os.path.join(os.environ["LOGCONF_DIR"], "vllm_rank_0.stdio.log")

        def write_and_wait(data, seen):
            os.write(1, data)
            deadline = time.monotonic() + 60
            while not (os.path.exists(copy) and seen in open(copy, "rb").read()):
                assert time.monotonic() < deadline, "the tee never copied " + repr(seen)
                time.sleep(0.005)

        write_and_wait(b"-----BEGIN OPENSSH PRIVATE KEY-----\\n", b"BEGIN OPENSSH")
        write_and_wait(b"b3BlbnNzaC1rZXktdjEAAAAABG5vbmU\\n", b"***")
        write_and_wait(b"QyNTUxOQAAACDxExampleBodyLine2\\n-----END OPENSSH PRIVATE KEY-----\\nafter the key\\n", b"after")
        """
    result = run_child(code, logdir)
    assert result.returncode == 0, result.stderr
    assert b"b3BlbnNzaC1" in result.stdout  # the real fd gets every byte
    assert [text for _, _, text in stdio_lines(logdir)] == [
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "***",
        "***",
        "-----END OPENSSH PRIVATE KEY-----",
        "after the key",
    ]


def test_a_stream_redactor_masks_a_key_split_between_pieces_and_forgets_it_after_the_end():
    """Piece by piece, as the tee reads a pipe: the body masked in every piece up to END; the pieces after it as redact() does."""
    stream = StreamRedactor()
    pieces = [
        "loading\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2",
        "mr7SZiAMfQyuvBjM9Oi\nZ1BjP5CE",
        "Wm/Rr500\n-----END RSA PRIVATE KEY-----\ntoken=abc123 and BEGIN again",
        "MIIEpAIBAAKCAQEA3Tz2 is text again",
    ]
    assert [stream.redact(piece) for piece in pieces] == [
        "loading\n-----BEGIN RSA PRIVATE KEY-----\n***",
        "***",
        "***\n-----END RSA PRIVATE KEY-----\ntoken=*** and BEGIN again",
        "MIIEpAIBAAKCAQEA3Tz2 is text again",
    ]
    assert not stream.needed("MIIE body-like text")


# JSON extras are masked by key: a number under a token name is a count or an id, not a credential.
KEPT = [
    {"time_to_first_token": 0.035, "num_prompt_token": 17, "last_token": 128001},
    {"token": 128001, "eos_token": 2, "bos_token": "<s>", "pad_token": None},
    {"sampled_token": "hello", "first_token": "The", "tool_call_start_token": "<tool_call>"},
    {"image_token": "<image>", "cls_token": "[CLS]", "hf_token": None, "use_auth_token": True},
    {"ssh_private_key": "~/.ssh/id_rsa", "pwd": "/home/ann"},
]
MASKED_EXTRAS = [
    {"access_token": "ya29.a0Af", "hf_token": "hf_x", "token": "abc123", "SessionToken": "FwoGZX"},
    {"passwd": "hunter2", "DB_PASSWD": 1234, "api_key": None, "private_key": "-----BEGIN PRIVATE KEY-----\nMIIE"},
    {"token": b"raw bytes", "x-api-key": ["k1", "k2"]},
]


def _json_extras(logdir, monkeypatch, extra: dict) -> dict:
    monkeypatch.setenv("LOGCONF_FORMAT", "json")
    load_like_vllm()
    logging.getLogger("vllm.engine").info("stats", extra=extra)
    (line,) = (logdir / "vllm_rank_0.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(line)
    return {key: record[key] for key in extra}


@pytest.mark.parametrize("extra", KEPT)
def test_json_extras_under_token_names_holding_numbers_or_vocabulary_are_kept(logdir, monkeypatch, json_encoder, extra):
    """Extras named *_token holding a number, None, a bool or vocabulary, and paths under pwd/private_key: written as given."""
    assert _json_extras(logdir, monkeypatch, extra) == extra


@pytest.mark.parametrize("extra", MASKED_EXTRAS)
def test_json_extras_under_credential_names_are_masked_whatever_their_type(logdir, monkeypatch, json_encoder, extra):
    """A credential's value becomes "***", a string, bytes, a number, None or a list alike."""
    assert _json_extras(logdir, monkeypatch, extra) == dict.fromkeys(extra, "***")


def test_json_extras_mask_headers_given_as_pairs(logdir, monkeypatch, json_encoder):
    """A list of (name, value) pairs, tuples or lists in a list, masks the value of a credential's name; other pairs are kept."""
    monkeypatch.setenv("LOGCONF_FORMAT", "json")
    load_like_vllm()
    headers = [("authorization", "3f9a1c0e7b2d"), (b"x-api-key", b"k3y"), ("accept", "*/*")]
    logging.getLogger("vllm.engine").info("request", extra={"headers": headers, "grpc": [["token", "abc 123"], ["n", "1"]]})
    (line,) = (logdir / "vllm_rank_0.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(line)
    # bytes are written as python-json-logger writes them: base64
    assert record["headers"] == [["authorization", "***"], ["eC1hcGkta2V5", "***"], ["accept", "*/*"]]
    assert record["grpc"] == [["token", "***"], ["n", "1"]]


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
    # the patterns added for whole values, pairs, private keys, wandb, sk- in paths, token names
    "password='",  # a quote never closed: masked to the end of the line, once
    'password="\\"',
    'token: \\"',  # an escaped quote never closed
    "token: \\\\\\\\\\\\\\\\\\\\\"x",  # a long escape compared at each backslash
    "secret={ {",
    "token: b'",
    "('token', (",
    "(b'x-api-key', '",
    "-----BEGIN PRIVATE KEY-----",  # markers without their END, each one's body up to the next
    "-----BEGIN RSA PRIVATE KEY-----\nMIIE A\n",
    "-----BEGIN PRIVATE KEY----- -----END ",
    "-----BEGIN ",
    "wandb login x ",  # the key looked for within a bounded stretch after each
    " sk-abcdefgh/",  # a path's sk- backs off at every start
    "://a:@@",
    "&sig=",
    "first_token: x ",
    "Sampled token: ",
    "token: 35",
    "a_b_c_d_e_f_",  # one long name, its prefix words tried once
    "accessaccess",
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
