"""Log files are safe to keep: private modes, no planted symlinks followed, secrets masked."""

from __future__ import annotations

import json
import logging
import logging.config
import os
import stat

import pytest
from helpers import load_like_vllm, read_records

import logconf
from logconf import ConfigError

HF = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567"
SK = "sk-proj-Zx9Yw8Vu7Ts6Rq5Po4Nm"


@pytest.fixture
def umask():
    """Set the process umask for one test, and put the old one back."""
    saved = os.umask(0o022)
    os.umask(saved)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(saved)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize(
    ("mask", "env", "file_mode", "dir_mode"),
    [
        (0o022, {}, 0o640, 0o750),
        (0o002, {}, 0o640, 0o750),
        (0o077, {}, 0o600, 0o700),  # the umask still narrows
        (0o000, {"LOGCONF_FILE_MODE": "0600", "LOGCONF_DIR_MODE": "0700"}, 0o600, 0o700),
        (0o002, {"LOGCONF_FILE_MODE": "0664", "LOGCONF_DIR_MODE": "0775"}, 0o664, 0o775),
    ],
    ids=["umask022", "umask002", "umask077", "env-private", "env-group-writable"],
)
def test_new_files_and_directories_get_the_configured_modes_under_umask(
    logdir, umask, monkeypatch, mask, env, file_mode, dir_mode
):
    """Defaults 0640 and 0750; LOGCONF_FILE_MODE and LOGCONF_DIR_MODE change them; the umask applies."""
    umask(mask)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    load_like_vllm()
    logconf.apply()
    logging.getLogger("vllm.engine").info("x")
    for name in ("vllm_rank_0.log", "skyrl_rank_0.log"):
        assert oct(mode(logdir / name)) == oct(file_mode)
    assert oct(mode(logdir)) == oct(dir_mode)


def test_a_symlink_planted_at_the_log_path_is_refused_with_a_clear_message(logdir, tmp_path):
    """In a shared directory, someone links vllm_rank_0.log to a file of yours: logconf refuses it."""
    logdir.mkdir(mode=0o750)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (logdir / "vllm_rank_0.log").symlink_to(victim)
    with pytest.raises(ConfigError) as caught:
        logconf.apply(logconf.vllm_config_path())
    message = str(caught.value)
    assert "vllm_rank_0.log" in message and "is a symbolic link" in message, message
    assert "logconf does not follow links planted at a log file's path" in message
    assert "remove the link, or set follow_symlinks: true on the handler" in message
    with pytest.raises(ValueError) as vllm_error:  # vLLM's own load: dictConfig's error carries it
        load_like_vllm()
    chain, error = [], vllm_error.value
    while error is not None:
        chain.append(str(error))
        error = error.__cause__ or error.__context__
    assert any("is a symbolic link" in text for text in chain), chain
    assert victim.read_text() == "precious\n"


def test_a_symlink_planted_mid_run_is_not_written_through(logdir, tmp_path, capfd):
    """The file is deleted and replaced by a link while the run goes on: records are dropped, reported once."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    handler = {"()": "logconf.handlers.RankFileHandler", "directory": str(logdir), "filename": "vllm_rank_0.log"}
    handler["reopen_check_s"] = "0"  # check the file's identity before every record
    logging.config.dictConfig(
        {"version": 1, "disable_existing_loggers": False, "handlers": {"f": handler}, "loggers": {"vllm": {"handlers": ["f"]}}}
    )
    log = logging.getLogger("vllm.engine")
    log.warning("before")
    (logdir / "vllm_rank_0.log").unlink()
    (logdir / "vllm_rank_0.log").symlink_to(victim)
    for i in range(10):
        log.warning("after %d", i)
    assert victim.read_text() == "precious\n"
    err = capfd.readouterr().err
    assert err.count("logconf: cannot write") == 1 and "is a symbolic link" in err, err


SECRETS = {
    "bearer": ("request failed: Authorization: Bearer eyJhbGciOi.J9-abc_def", "eyJhbGciOi.J9-abc_def"),
    "hf_token": (f"downloading with token {HF}", HF),
    "sk_key": (f"OpenAI client uses {SK}", SK),
    "password_query": ("GET https://db.example/x?user=ann&password=hunter2&x=1", "hunter2"),
    "token_query": ("callback https://h.example/cb?token=t0k3nV4lue;next", "t0k3nV4lue"),
    "password_kv": ("connecting with password=s3cr3t! to db", "s3cr3t!"),
}


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("kind", list(SECRETS))
def test_secrets_in_messages_are_masked_in_both_formats(logdir, monkeypatch, fmt, kind):
    monkeypatch.setenv("LOGCONF_FORMAT", fmt)
    message, secret = SECRETS[kind]
    load_like_vllm()
    logging.getLogger("vllm.engine").warning("%s", message)
    path = logdir / f"vllm_rank_0.{'jsonl' if fmt == 'json' else 'log'}"
    text = path.read_text(encoding="utf-8")
    assert secret not in text and "***" in text
    if fmt == "json":
        assert "***" in json.loads(text)["message"]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_in_exception_text_are_masked(logdir, monkeypatch, fmt):
    """The traceback (message and the source lines it quotes) is masked too, chained causes included."""
    monkeypatch.setenv("LOGCONF_FORMAT", fmt)
    load_like_vllm()
    try:
        try:
            raise ConnectionError(f"401 for Bearer {SK} at https://h/?token=abcdef123")
        except ConnectionError as inner:
            raise RuntimeError(f"download with {HF} failed") from inner
    except RuntimeError:
        logging.getLogger("vllm.model_loader").exception("load failed")
    text = (logdir / f"vllm_rank_0.{'jsonl' if fmt == 'json' else 'log'}").read_text(encoding="utf-8")
    for secret in (SK, HF, "abcdef123"):
        assert secret not in text
    assert "ConnectionError: 401 for Bearer ***" in (json.loads(text)["exc_info"] if fmt == "json" else text)


def test_vllm_non_default_args_line_with_an_api_key_is_masked(logdir):
    """The exact call vLLM makes (vllm/entrypoints/serve/utils/api_utils.py, log_non_default_args):
    ``logger.info("non-default args: %s", args)``; the api_key is a list, as `--api-key` gives it.
    vLLM >= 0.30 masks api_key and hf_token itself; custom launchers and older releases do not."""
    args = {
        "model_tag": "/models/llama",
        "api_key": ["my-server-key-123", "second-key-456"],
        "hf_token": "plain-token-value",
        "served_model_name": ["policy"],
        "port": 8001,
    }
    load_like_vllm()
    logging.getLogger("vllm.entrypoints.serve.utils.api_utils").info("non-default args: %s", args)
    (record,) = read_records(logdir / "vllm_rank_0.log")
    assert record["message"] == (
        "non-default args: {'model_tag': '/models/llama', 'api_key': [***], 'hf_token': '***', "
        "'served_model_name': ['policy'], 'port': 8001}"
    )


def test_vllm_non_default_args_line_in_json_mode_stays_valid_json(logdir, monkeypatch):
    monkeypatch.setenv("LOGCONF_FORMAT", "json")
    load_like_vllm()
    logging.getLogger("vllm.entrypoints.serve.utils.api_utils").info("non-default args: %s", {"api_key": ['k"1\\'], "model": "m"})
    record = json.loads((logdir / "vllm_rank_0.jsonl").read_text(encoding="utf-8"))
    assert record["message"] == "non-default args: {'api_key': [***], 'model': 'm'}"


def test_logconf_redact_0_switches_masking_off(logdir, monkeypatch):
    monkeypatch.setenv("LOGCONF_REDACT", "0")
    load_like_vllm()
    logconf.apply()
    logging.getLogger("vllm.engine").warning("token=%s", HF)
    logging.getLogger("skyrl_train.x").warning("Bearer %s", SK)
    assert HF in (logdir / "vllm_rank_0.log").read_text()
    assert SK in (logdir / "skyrl_rank_0.log").read_text()
