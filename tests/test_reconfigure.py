"""Whatever a framework does to ``logging`` before or after logconf, logconf's records reach their files, and stderr once.

A matrix: each thing frameworks do to logging (a ``dictConfig`` with and without
``disable_existing_loggers``, one that names the trainer's and vLLM's loggers itself,
``fileConfig``, ``basicConfig(force=True)``, root's handlers cleared or replaced in place or by
assignment, ``disabled = True`` on ``skyrl`` and ``vllm``), done before and after logconf's
configs: ``apply()``, vLLM's own load of the JSON, and both (SkyRL's engine actor, a trainer that
starts an engine). Every case checks each rank file's exact records and how many times each
message reached stderr.
"""

from __future__ import annotations

import logging
import logging.config
import sys

import pytest
from helpers import load_like_vllm, read_records

import logconf
from logconf import keep

TRAINER = [
    ("skyrl.train.trainer", logging.INFO, "trainer info"),
    ("skyrl.train.trainer", logging.WARNING, "trainer warning"),
    ("skyrl", logging.INFO, "skyrl info"),  # logged on the parent itself, which `disabled = True` reaches
    ("skyrl", logging.WARNING, "skyrl warning"),
]
VLLM = [
    ("vllm.engine", logging.INFO, "engine info"),
    ("vllm.engine", logging.WARNING, "engine warning"),
    ("vllm", logging.INFO, "vllm info"),
    ("vllm", logging.WARNING, "vllm warning"),
]
LIBRARY = ("torch.distributed", logging.WARNING, "library warning")
PARENTS = {"skyrl", "vllm"}

# A framework's console: its own format, on stderr, from WARNING.
CONSOLE = {"class": "logging.StreamHandler", "formatter": "plain", "level": "WARNING", "stream": "ext://sys.stderr"}
PLAIN = {"plain": {"format": "FRAMEWORK %(name)s: %(message)s"}}
INI = """[loggers]
keys=root
[handlers]
keys=console
[formatters]
keys=plain
[logger_root]
level=WARNING
handlers=console
[handler_console]
class=StreamHandler
level=WARNING
formatter=plain
args=(sys.stderr,)
[formatter_plain]
format=FRAMEWORK %(name)s: %(message)s
"""


def framework_console() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("FRAMEWORK %(name)s: %(message)s"))
    return handler


def dictconfig(disable: bool | None) -> None:
    root = {"level": "WARNING", "handlers": ["console"]}
    config = {"version": 1, "formatters": PLAIN, "handlers": {"console": CONSOLE}, "root": root}
    if disable is not None:
        config["disable_existing_loggers"] = disable
    logging.config.dictConfig(config)


def dictconfig_naming_ours() -> None:
    """skyrl.utils.log's set-up (DEBUG, its own console, propagate off) and vLLM's default config (stdout), as one dictConfig."""
    logging.config.dictConfig(
        {
            "version": 1,
            "formatters": PLAIN,
            "handlers": {
                "console": CONSOLE,
                "vllm": {"class": "logging.StreamHandler", "formatter": "plain", "level": "INFO", "stream": "ext://sys.stdout"},
            },
            "loggers": {
                "skyrl": {"handlers": ["console"], "level": "DEBUG", "propagate": False},
                "vllm": {"handlers": ["vllm"], "level": "INFO", "propagate": False},
            },
        }
    )


def fileconfig(tmp_path) -> None:
    path = tmp_path / "framework.ini"
    path.write_text(INI)
    logging.config.fileConfig(path)


def replace_in_place() -> None:
    logging.root.handlers[:] = [framework_console()]


def assign() -> None:
    logging.root.handlers = [framework_console()]


def delete_slice() -> None:
    del logging.root.handlers[:]


def disable_parents() -> None:
    for name in PARENTS:
        logging.getLogger(name).disabled = True


OPERATIONS = {
    "dictconfig-default": lambda tmp: dictconfig(None),
    "dictconfig-disable-false": lambda tmp: dictconfig(False),
    "dictconfig-names-skyrl-and-vllm": lambda tmp: dictconfig_naming_ours(),
    "fileconfig": fileconfig,
    "basicconfig-force": lambda tmp: logging.basicConfig(force=True),
    "root-clear": lambda tmp: logging.root.handlers.clear(),
    "root-del-slice": lambda tmp: delete_slice(),
    "root-replace-in-place": lambda tmp: replace_in_place(),
    "root-assign": lambda tmp: assign(),
    "disable-parents": lambda tmp: disable_parents(),
}
DISABLES_EXISTING = {"dictconfig-default", "dictconfig-names-skyrl-and-vllm", "fileconfig"}
SETUPS = {
    "apply": ("apply",),
    "vllm-json": ("vllm",),
    "apply-then-vllm-json": ("apply", "vllm"),
}


def expected_stderr(setup: tuple[str, ...], operation: str, when: str, records: list[tuple[str, int, str]]) -> dict[str, int]:
    """How many times each message reaches stderr: once for a warning, never twice, and nowhere when silenced."""
    counts = {}
    for name, level, message in records:
        if (name, level, message) == LIBRARY:
            # Another library's logger: a framework's dictConfig or fileConfig disables it, and logconf leaves that be.
            # logconf's own configs (disable_existing_loggers: false) enable it again when they come after.
            counts[message] = 0 if operation in DISABLES_EXISTING and when == "after" else 1
        elif operation == "disable-parents" and when == "after" and name in PARENTS:
            counts[message] = 0  # silenced by the framework: it reaches logconf's file only
        elif level >= logging.WARNING:
            counts[message] = 1
        else:
            # INFO reaches stderr only through basicConfig's handler (no level), on root after logconf's config.
            counts[message] = int(operation == "basicconfig-force" and when == "after" and name.startswith("skyrl"))
    return counts


def fresh_root() -> None:
    """Root as in a fresh interpreter: no handlers (pytest's capture, added for the test's call, removed), WARNING."""
    logging.root.handlers = []
    logging.root.setLevel(logging.WARNING)


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("setup", list(SETUPS))
def test_framework_reconfiguration_keeps_files_and_prints_each_record_once(logdir, tmp_path, capfd, setup, operation, when):
    """Rank files hold exactly their records, and each warning reaches stderr once, whatever the framework did when."""
    fresh_root()
    steps = SETUPS[setup]
    records = [*(TRAINER if "apply" in steps else []), *(VLLM if "vllm" in steps else []), LIBRARY]
    for name, _, _ in records:
        logging.getLogger(name)  # the modules that log are imported before anyone configures logging
    if when == "before":
        OPERATIONS[operation](tmp_path)
    for step in steps:
        logconf.apply() if step == "apply" else load_like_vllm()
    if when == "after":
        OPERATIONS[operation](tmp_path)
    for name, level, message in records:
        logging.getLogger(name).log(level, message)
    err = capfd.readouterr().err
    if "apply" in steps:
        assert [(r["logger"], r["message"]) for r in read_records(logdir / "skyrl_rank_0.log")] == [(n, m) for n, _, m in TRAINER]
    if "vllm" in steps:
        assert [(r["logger"], r["message"]) for r in read_records(logdir / "vllm_rank_0.log")] == [(n, m) for n, _, m in VLLM]
    assert {message: err.count(message) for _, _, message in records} == expected_stderr(steps, operation, when, records), err


def test_a_disabled_parent_still_drops_its_records_from_every_handler_but_logconf_files(logdir, capfd):
    """`skyrl.disabled = True`: the framework's own handler on it and the console stay silent; the rank file still gets it."""
    fresh_root()
    logconf.apply()
    skyrl = logging.getLogger("skyrl")
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    skyrl.addHandler(Collect())
    skyrl.disabled = True
    skyrl.warning("quiet")
    skyrl.debug("below the level")
    assert seen == [] and "quiet" not in capfd.readouterr().err
    assert [r["message"] for r in read_records(logdir / "skyrl_rank_0.log")] == ["quiet"]
    assert not skyrl.isEnabledFor(logging.DEBUG)
    skyrl.disabled = False
    skyrl.warning("heard")
    assert seen == ["heard"]


def test_a_foreign_dictconfig_leaves_other_libraries_disabled_and_logconf_loggers_enabled(logdir):
    """Only loggers at or under logconf's names are enabled again; the framework's choice stands for the rest."""
    fresh_root()
    torch, trainer = logging.getLogger("torch.distributed"), logging.getLogger("skyrl.train.trainer")
    logconf.apply()
    dictconfig(None)
    assert torch.disabled and not trainer.disabled and not logging.getLogger("skyrl").disabled
    assert set(keep.kept()) == {"skyrl_train", "skyrl", "skyrl_gym", "harbor", "examples"}


def test_a_later_logconf_config_decides_what_is_kept(logdir, tmp_path):
    """apply() of a config without a logger drops it from what is kept: a foreign dictConfig then leaves it alone."""
    fresh_root()
    logconf.apply()
    config = tmp_path / "only_skyrl.yaml"
    config.write_text(
        "version: 1\ndisable_existing_loggers: false\nhandlers:\n  f:\n    (): logconf.handlers.RankFileHandler\n"
        "    directory: ${LOGCONF_DIR}\n    filename: mine.log\nloggers:\n  skyrl: {handlers: [f]}\n"
        "  harbor: {handlers: []}\n"
    )
    logconf.apply(config)
    assert set(keep.kept()) == {"skyrl_train", "skyrl", "skyrl_gym", "examples"}  # harbor has no logconf handler now
    harbor = logging.getLogger("harbor")
    dictconfig(None)
    assert harbor.disabled and harbor.handlers == []
    assert type(harbor) is logging.Logger and type(logging.getLogger("skyrl")) is keep.KeptLogger


def test_the_guard_follows_a_second_framework_setup_after_the_rank_changed(logdir, monkeypatch):
    """Two set-ups in one process (a worker reused for another rank): each moves the files to the rank set before it."""
    fresh_root()
    logconf.apply()
    trainer = logging.getLogger("skyrl.train.trainer")
    monkeypatch.setenv("RANK", "3")
    logging.root.handlers = [logging.NullHandler()]
    trainer.info("as rank 3")
    monkeypatch.setenv("RANK", "5")
    logging.root.handlers.clear()
    trainer.info("as rank 5")
    assert [r["message"] for r in read_records(logdir / "skyrl_rank_3.log")] == ["as rank 3"]
    assert [(r["rank"], r["message"]) for r in read_records(logdir / "skyrl_rank_5.log")] == [("5", "as rank 5")]


def test_root_list_changes_that_keep_logconf_console_in_place(logdir):
    """remove, pop, *= 0 and removeHandler take away only the framework's handlers; appending works as on a list."""
    fresh_root()
    logconf.apply()
    ours = list(logging.root.handlers)
    extra = framework_console()
    logging.root.addHandler(extra)
    logging.root.handlers.remove(ours[0])
    logging.root.removeHandler(ours[0])
    assert logging.root.handlers == [*ours, extra]
    assert logging.root.handlers.pop() is extra
    logging.root.handlers.pop(0)
    assert logging.root.handlers == ours
    logging.root.handlers *= 0
    assert logging.root.handlers == ours


def test_logconf_console_yields_only_what_the_other_console_prints(logdir, capfd):
    """A framework's stderr console at ERROR: WARNING is printed by logconf's console, ERROR by the framework's, each once."""
    fresh_root()
    logconf.apply()
    theirs = framework_console()
    theirs.setLevel(logging.ERROR)
    logging.root.handlers = [theirs]
    logging.getLogger("skyrl.train.trainer").warning("a warning")
    logging.getLogger("skyrl.train.trainer").error("an error")
    err = capfd.readouterr().err
    assert err.count("a warning") == 1 and " WARNING rank=0 " in err
    assert err.count("an error") == 1 and "FRAMEWORK skyrl.train.trainer: an error" in err


def test_two_logconf_consoles_on_one_way_print_a_record_once(logdir, capfd):
    """A framework makes `vllm` propagate: vLLM's console and the trainer's on root both see its records; the nearer prints."""
    fresh_root()
    logconf.apply()
    load_like_vllm()
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False, "loggers": {"vllm": {"propagate": True}}})
    logging.getLogger("vllm.engine").warning("engine warning")
    logging.getLogger("skyrl.train.trainer").warning("trainer warning")
    err = capfd.readouterr().err
    assert err.count("engine warning") == 1 and err.count("trainer warning") == 1
    assert [r["message"] for r in read_records(logdir / "vllm_rank_0.log")] == ["engine warning"]


def test_a_foreign_dictconfig_after_logconf_check_is_still_foreign(logdir):
    """`logconf check` builds logconf's console to resolve it: a framework's dictConfig after that is not taken for logconf's."""
    from logconf.config import check, load, skyrl_config_path

    fresh_root()
    trainer = logging.getLogger("skyrl.train.trainer")
    logconf.apply()
    check(load(skyrl_config_path()), skyrl_config_path())
    dictconfig(None)
    trainer.info("still filed")
    assert [r["message"] for r in read_records(logdir / "skyrl_rank_0.log")] == ["still filed"]
