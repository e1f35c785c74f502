"""apply() and vLLM's own load of the JSON, in every order, any number of times."""

from __future__ import annotations

import json
import logging
import logging.config
import os
import pwd
import re
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import load_like_vllm, read_records

import logconf
from logconf.config import check, load
from logconf.handlers import ConsoleHandler, RankFileHandler

REPO = Path(__file__).resolve().parent.parent


def log_both(tag: str) -> None:
    logging.getLogger("vllm.engine").info("vllm %s", tag)
    logging.getLogger("skyrl_train.trainer").info("trainer %s", tag)
    logging.getLogger("harbor.rollout").info("harbor %s", tag)


def messages(path) -> list[str]:
    return [r["message"] for r in read_records(path)]


ORDERS = {
    "vllm_then_apply": ["vllm", "apply"],
    "apply_then_vllm": ["apply", "vllm"],
    "vllm_apply_vllm": ["vllm", "apply", "vllm"],
    "apply_vllm_apply": ["apply", "vllm", "apply"],
}


@pytest.mark.parametrize("order", list(ORDERS.values()), ids=list(ORDERS))
def test_order_does_not_matter(logdir, order):
    """Whatever order the two configs arrive in, each subsystem's records reach its own file once."""
    for i, step in enumerate(order):
        load_like_vllm() if step == "vllm" else logconf.apply()
        log_both(f"after-{i}")
    vllm_lines = messages(logdir / "vllm_rank_0.log")
    trainer_lines = messages(logdir / "skyrl_rank_0.log")
    first_vllm = order.index("vllm")
    first_apply = order.index("apply")
    assert vllm_lines == [f"vllm after-{i}" for i in range(first_vllm, len(order))]
    assert trainer_lines == [line for i in range(first_apply, len(order)) for line in (f"trainer after-{i}", f"harbor after-{i}")]


def test_trainer_handlers_survive_a_later_dictconfig_that_closes_them(logdir):
    """vLLM's dictConfig closes every handler in the process; logconf's reopen and keep every record."""
    logconf.apply()
    handler = next(h for h in logging.getLogger("skyrl_train").handlers if isinstance(h, RankFileHandler))
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})  # closes all handlers
    assert handler._fd is None
    logging.getLogger("skyrl_train.x").info("after close")
    assert messages(logdir / "skyrl_rank_0.log") == ["after close"]


def test_apply_is_idempotent(logdir):
    """After N calls there is one handler per destination and every record is written once."""
    for _ in range(5):
        logconf.apply()
    for name in ("skyrl_train", "skyrl", "harbor", "examples"):
        assert len(logging.getLogger(name).handlers) == 1
    assert [type(h) for h in logging.root.handlers] == [ConsoleHandler]
    logging.getLogger("skyrl.x").info("once")
    assert messages(logdir / "skyrl_rank_0.log") == ["once"]


def test_same_json_applied_twice_neither_duplicates_nor_truncates(logdir):
    """uvicorn applies the same JSON a second time under `vllm serve`."""
    load_like_vllm()
    logging.getLogger("vllm.a").info("first")
    load_like_vllm()
    logging.getLogger("vllm.a").info("second")
    logging.getLogger("uvicorn.access").info("GET /health 200")
    assert messages(logdir / "vllm_rank_0.log") == ["first", "second", "GET /health 200"]
    assert len(logging.getLogger("vllm").handlers) == 2


def test_disabled_debug_is_rejected_by_the_logger_level(logdir, monkeypatch):
    """No DEBUG logger with a filtering handler: the vllm logger itself carries the level."""
    load_like_vllm()
    assert logging.getLogger("vllm").level == logging.INFO
    assert not logging.getLogger("vllm.engine").isEnabledFor(logging.DEBUG)
    monkeypatch.setenv("VLLM_LOGGING_LEVEL", "DEBUG")
    load_like_vllm()
    assert logging.getLogger("vllm").level == logging.DEBUG
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    logconf.apply()
    assert logging.getLogger("skyrl_train").level == logging.WARNING


def test_json_config_leaves_root_and_existing_loggers_alone(logdir):
    """disable_existing_loggers is false, and no handler is shared with root."""
    existing = logging.getLogger("torch.distributed")
    root_handlers = list(logging.root.handlers)
    load_like_vllm()
    assert not existing.disabled
    assert logging.root.handlers == root_handlers
    assert not set(logging.getLogger("vllm").handlers) & set(logging.root.handlers)


def test_yaml_never_configures_vllm_loggers(logdir):
    load_like_vllm()
    vllm_handlers = list(logging.getLogger("vllm").handlers)
    logconf.apply()
    assert logging.getLogger("vllm").handlers == vllm_handlers
    assert logging.getLogger("vllm").propagate is False


def test_console_gets_warning_and_up_only(logdir, capsys):
    load_like_vllm()
    logconf.apply()
    logging.getLogger("vllm.engine").info("quiet vllm info")
    logging.getLogger("vllm.engine").warning("loud vllm warning")
    logging.getLogger("skyrl_train.t").info("quiet trainer info")
    logging.getLogger("skyrl_train.t").error("loud trainer error")
    logging.getLogger("some.library").warning("library warning")
    err = capsys.readouterr().err
    assert "quiet" not in err
    for text in ("loud vllm warning", "loud trainer error", "library warning"):
        assert err.count(text) == 1, err


def test_console_level_comes_from_the_environment(logdir, monkeypatch, capsys):
    monkeypatch.setenv("LOGCONF_CONSOLE_LEVEL", "INFO")
    load_like_vllm()
    logging.getLogger("vllm.engine").info("now visible")
    assert "now visible" in capsys.readouterr().err


def test_console_on_stdout_writes_to_whatever_stdout_is_at_emit_time(capsys):
    """stream: stdout sends records to sys.stdout as it is when each record arrives, and nothing to stderr."""
    console = {"()": "logconf.handlers.ConsoleHandler", "stream": "stdout", "threshold": "INFO"}
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"console": console},
            "loggers": {"app": {"handlers": ["console"], "level": "INFO", "propagate": False}},
        }
    )
    logging.getLogger("app").info("to stdout")
    logging.getLogger("app").debug("below the threshold")
    assert capsys.readouterr() == ("to stdout\n", "")


def test_shipped_paths_are_absolute_files():
    import os

    for path in (logconf.vllm_config_path(), logconf.skyrl_config_path()):
        assert os.path.isabs(path) and os.path.isfile(path)
    assert logconf.vllm_config_path().endswith("vllm_logging.json")
    assert logconf.skyrl_config_path().endswith("skyrl_logging.yaml")


def test_apply_accepts_json_and_writes_to_the_default_dir_without_logconf_dir(tmp_path):
    """apply() takes JSON too; without LOGCONF_DIR the records land in the documented /tmp/logconf-<user name>.

    The child runs in a mount namespace of its own (CI runs as root) whose /tmp is a fresh tmpfs:
    the host's /tmp is never touched and the default directory starts out missing. This checkout and the
    interpreter's venv may sit under /tmp (a CI clone): those are bound back at their own paths.
    """
    default = f"/tmp/logconf-{pwd.getpwuid(os.geteuid()).pw_name}"
    code = (
        "import json, logging, os, logconf\n"
        "logconf.apply(logconf.vllm_config_path())\n"
        "logging.getLogger('vllm.engine').info('to the default dir')\n"
        "logging.getLogger('vllm.engine').debug('below the level')\n"
        f"text = open('{default}/vllm_rank_0.log').read()\n"
        f"print(json.dumps([logconf.__file__, os.getpid(), os.listdir('{default}'), oct(os.stat('{default}').st_mode), text]))\n"
    )
    shell = (
        'new="$1/tmp" python="$2" code="$3" && shift 3 && mkdir "$new" && mount -t tmpfs tmpfs "$new"'
        ' && for kept in "$@"; do mkdir -p "$new${kept#/tmp}" && mount --bind "$kept" "$new${kept#/tmp}" || exit 1; done'
        ' && mount --move "$new" /tmp && exec "$python" -c "$code"'
    )
    repo = os.path.realpath(REPO)
    # The interpreter by its venv's real path, so that a venv directory linked from elsewhere still counts
    python = os.path.join(os.path.realpath(os.path.dirname(sys.executable)), os.path.basename(sys.executable))
    kept = sorted({path for path in (repo, os.path.realpath(sys.prefix)) if path.startswith("/tmp/")})
    kept = [path for path in kept if not any(path.startswith(outer + "/") for outer in kept)]
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", shell, "sh", str(tmp_path), python, code, *kept],
        env={**os.environ, "PYTHONPATH": repo},
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"cannot run in a private mount namespace here: {done.stderr}"
    module, pid, names, mode, text = json.loads(done.stdout)
    assert module == os.path.join(repo, "logconf", "__init__.py")  # this checkout's logconf, not an installed one
    assert names == ["vllm_rank_0.log"]
    assert mode == oct(stat.S_IFDIR | 0o750)  # LOGCONF_DIR_MODE's default, as logconf created it
    assert re.fullmatch(
        rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z INFO rank=0 MainProcess\[{pid}\] vllm\.engine: to the default dir\n", text
    ), text


ROLLBACK = {
    # dictConfig builds filters before handlers and loggers: the loggers are still untouched when it fails
    "filter_factory_raises": (
        {"boom": {"()": "logging.Filter", "name": 5}},  # len(5): a TypeError that only building the filter shows
        {"skyrl_train": {"handlers": ["new"], "level": "DEBUG", "propagate": False}},
    ),
    # loggers are configured in order: "a_rollback_probe" and "skyrl_train" are done when "zz_last" fails
    "logger_fails_after_others_are_configured": (
        {},
        {
            "a_rollback_probe": {"handlers": ["new"], "level": "DEBUG", "propagate": False},
            "skyrl_train": {"handlers": ["new"], "level": "DEBUG", "propagate": False},
            "zz_last": {"level": "5"},  # check() reads "5" as level 5, as logconf's own levels; dictConfig refuses it
        },
    ),
}


@pytest.mark.parametrize("case", list(ROLLBACK))
def test_a_config_that_fails_inside_dictconfig_leaves_the_previous_one_working(logdir, tmp_path, case):
    """The config passes check(), then dictConfig fails half-way: every logger is as it was, records reach the old files."""
    logconf.apply()
    logging.getLogger("skyrl_train.trainer").info("before")
    filters, loggers = ROLLBACK[case]
    handler = {"()": "logconf.handlers.RankFileHandler", "directory": str(tmp_path / "new"), "filename": "new.log"}
    config = {"version": 1, "disable_existing_loggers": False, "filters": filters, "handlers": {"new": handler}}
    config["loggers"] = loggers
    bad = tmp_path / "half.json"
    bad.write_text(json.dumps(config))
    assert check(load(bad), str(bad)) == [str(tmp_path / "new" / "new.log")]
    with pytest.raises(logconf.ConfigError) as caught:
        logconf.apply(bad)
    assert (caught.value.file, caught.value.key) == (str(bad), "<dictConfig>")
    logging.getLogger("skyrl_train.trainer").info("after")
    logging.getLogger("skyrl_train.trainer").debug("below the old level")
    assert messages(logdir / "skyrl_rank_0.log") == ["before", "after"]
    new = tmp_path / "new" / "new.log"
    assert not new.exists() or new.read_text() == ""
    if "a_rollback_probe" in loggers:  # a logger that only the failed config created is blank again
        created = logging.getLogger("a_rollback_probe")
        assert (created.handlers, created.level, created.propagate) == ([], logging.NOTSET, True)


def test_each_rank_file_handler_writes_its_own_file_with_its_own_settings(tmp_path):
    """apply() resolves each handler once (check's plan is reused): handlers that differ in one argument stay apart."""

    def handler(filename: str, mode: str) -> dict[str, str]:
        directory = str(tmp_path / "logs")
        return {"()": "logconf.handlers.RankFileHandler", "directory": directory, "filename": filename, "file_mode": mode}

    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": {"()": "logconf.formatters.make_formatter"}},
        "handlers": {"a": handler("a.log", "0640"), "b": handler("b.log", "0600"), "c": handler("a.log", "0600")},
        "loggers": {name: {"handlers": [h], "level": "INFO"} for name, h in (("one", "a"), ("two", "b"), ("three", "c"))},
    }
    for entry in config["handlers"].values():
        entry["formatter"] = "line"
    path = tmp_path / "three.json"
    path.write_text(json.dumps(config))
    logconf.apply(path)
    for name in ("one", "two", "three"):
        logging.getLogger(name).info("to %s", name)
    assert messages(tmp_path / "logs" / "a.log") == ["to one", "to three"]
    assert messages(tmp_path / "logs" / "b.log") == ["to two"]
    assert stat.S_IMODE((tmp_path / "logs" / "b.log").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "logs" / "a.log").stat().st_mode) == 0o640  # created by handler a, the first


def test_set_rank_moves_handlers_and_formatters(logdir):
    logconf.apply()
    load_like_vllm()
    logging.getLogger("vllm.a").info("as rank 0")
    logconf.set_rank(3)
    logging.getLogger("vllm.a").info("as rank 3")
    logging.getLogger("skyrl.a").info("trainer as rank 3")
    import os

    assert os.environ["LOGCONF_RANK"] == "3"
    assert [(r["rank"], r["message"]) for r in read_records(logdir / "vllm_rank_0.log")] == [("0", "as rank 0")]
    assert [(r["rank"], r["message"]) for r in read_records(logdir / "vllm_rank_3.log")] == [("3", "as rank 3")]
    assert [(r["rank"], r["message"]) for r in read_records(logdir / "skyrl_rank_3.log")] == [("3", "trainer as rank 3")]


def test_the_file_named_in_errors_is_the_one_its_own_thread_applies(monkeypatch):
    """A config applied in one thread is not named by another thread's errors (vLLM configuring itself meanwhile)."""
    from logconf.errors import applying, current_source

    monkeypatch.delenv("VLLM_LOGGING_CONFIG_PATH", raising=False)
    inside, done = threading.Event(), threading.Event()

    def apply_elsewhere() -> None:
        with applying("/configs/a.yaml"):
            inside.set()
            done.wait(10)

    thread = threading.Thread(target=apply_elsewhere)
    thread.start()
    try:
        assert inside.wait(10)
        seen_here = current_source()
        with applying("/configs/b.yaml"):
            with applying("/configs/c.json"):
                innermost = current_source()
            after_inner = current_source()
    finally:
        done.set()
        thread.join()
    assert (seen_here, innermost, after_inner, current_source()) == (
        "<dictConfig>",
        "/configs/c.json",
        "/configs/b.yaml",
        "<dictConfig>",
    )
