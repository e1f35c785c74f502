"""Machines shared by several users: a default directory per user, and nothing written where another user controls it.

The other user is real: ``nobody`` owns the files and directories here (given to it with
``chown``, which needs root: CI runs as root), and ``tests/two_users.py`` runs a job as root, as
``nobody`` and as a uid without a name (``setpriv``), each in its own default directory, in a
mount namespace of its own whose ``/tmp`` is fresh.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import read_records
from logwriters import REPO

import logconf
from logconf import ConfigError
from logconf.config import check, load


def nobody() -> pwd.struct_passwd:
    """The second user; fail loudly where it or the power to give it files is missing."""
    if os.geteuid() != 0:
        pytest.fail("these tests give files to the user nobody with chown, which needs root (CI runs as root)")
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.fail("there is no user 'nobody' here: add one (useradd -r nobody)")


def give(path: Path, mode: int) -> Path:
    """Make ``path`` (an empty file if it does not exist) nobody's, with ``mode``."""
    if not path.exists():
        path.touch()
    other = nobody()
    os.chown(path, other.pw_uid, other.pw_gid)
    path.chmod(mode)
    return path


def refused(config: str = "skyrl") -> ConfigError:
    """Apply the shipped trainer YAML (or the vLLM JSON) and return the ConfigError it must raise."""
    with pytest.raises(ConfigError) as caught:
        logconf.apply(logconf.skyrl_config_path() if config == "skyrl" else logconf.vllm_config_path())
    return caught.value


def test_the_default_directory_is_the_users_own():
    """Without LOGCONF_DIR, both shipped configs write to /tmp/logconf-<user name>, the same for the stdio copy."""
    user = pwd.getpwuid(os.geteuid()).pw_name
    for path in (logconf.skyrl_config_path(), logconf.vllm_config_path()):
        assert check(load(path), path) in (
            [f"/tmp/logconf-{user}/skyrl_rank_0.log"],
            [f"/tmp/logconf-{user}/vllm_rank_0.log"],
        )
    from logconf.capture import check_install

    assert check_install(stdio="1") == f"/tmp/logconf-{user}/vllm_rank_0.stdio.log"
    from logconf import ownership

    assert ownership.default_dir() == f"/tmp/logconf-{user}"


@pytest.mark.parametrize(
    ("owner", "mode", "problem"),
    [
        ("nobody", 0o755, "is owned by another user (owner nobody (uid 65534), mode 0755)"),
        ("nobody", 0o777, "is owned by another user (owner nobody (uid 65534), mode 0777)"),
        ("nobody", 0o1777, "is owned by another user (owner nobody (uid 65534), mode 1777)"),
        ("me", 0o777, "is writable by every user, without the sticky bit (owner root (uid 0), mode 0777)"),
    ],
    ids=["other-user", "other-user-world-writable", "other-user-sticky", "world-writable-no-sticky"],
)
def test_a_directory_another_user_controls_is_refused_naming_path_owner_and_mode(logdir, owner, mode, problem):
    logdir.mkdir()
    if owner == "nobody":
        give(logdir, mode)
    else:
        logdir.chmod(mode)
    error = refused()
    assert (error.key, error.value) == ("handlers.skyrl_file.directory", str(logdir))
    assert problem in error.problem, error
    assert "that user could read every record and write forged lines" in str(error)
    assert "or set LOGCONF_SHARED_DIR=1 to share this one on purpose" in error.expected
    assert list(logdir.iterdir()) == []


@pytest.mark.parametrize(("owner", "mode"), [("me", 0o1777), ("me", 0o770), ("me", 0o700)], ids=["sticky", "group", "private"])
def test_a_directory_of_ones_own_is_used_sticky_or_shared_with_a_group(logdir, owner, mode):
    logdir.mkdir()
    logdir.chmod(mode)
    logconf.apply()
    logging.getLogger("skyrl_train.x").info("written")
    assert [r["message"] for r in read_records(logdir / "skyrl_rank_0.log")] == ["written"]


def test_a_root_owned_sticky_directory_is_used_but_a_file_another_user_planted_there_is_refused(logdir):
    """/tmp-like: root's and sticky passes; a rank file nobody made there, mode 0666, does not."""
    logdir.mkdir()
    logdir.chmod(0o1777)
    logconf.apply()  # root's: root counts as no other user
    planted = give(logdir / "skyrl_rank_1.log", 0o666)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOGCONF_RANK", "1")
        error = refused()
    assert error.value == str(planted)
    assert "is owned by another user (owner nobody (uid 65534), mode 0666)" in error.problem, error
    assert planted.read_text() == ""


def test_a_rank_file_of_ones_own_that_every_user_may_write_is_refused(logdir):
    logdir.mkdir(mode=0o750)
    (logdir / "skyrl_rank_0.log").touch()
    (logdir / "skyrl_rank_0.log").chmod(0o666)
    error = refused()
    assert "is writable by every user (owner root (uid 0), mode 0666)" in error.problem, error


def linked(logdir: Path, tmp_path: Path) -> Path:
    """Make LOGCONF_DIR a symbolic link to a directory of this user's; return the directory."""
    target = tmp_path / "target"
    target.mkdir(mode=0o750)
    logdir.symlink_to(target)
    return target


def test_a_symlinked_directory_that_another_user_planted_is_refused(logdir, tmp_path):
    """nobody links the log directory to one of its own making: the link's owner is checked, not only its target."""
    linked(logdir, tmp_path)
    other = nobody()
    os.lchown(logdir, other.pw_uid, other.pw_gid)
    error = refused()
    assert "is a symbolic link that another user owns (owner nobody (uid 65534)" in error.problem, error


def test_a_symlinked_directory_of_ones_own_is_used(logdir, tmp_path):
    """A link's own mode (0777) means nothing: LOGCONF_DIR may be a link of this user's to a directory of theirs."""
    target = linked(logdir, tmp_path)
    logconf.apply()
    logging.getLogger("skyrl_train.x").info("through the link")
    assert [r["message"] for r in read_records(target / "skyrl_rank_0.log")] == ["through the link"]


def test_a_followed_link_to_another_users_file_is_refused_once_opened(logdir, tmp_path):
    """With follow_symlinks the link (this user's) passes the path check; the file it opens is nobody's, mode 0666."""
    logdir.mkdir(mode=0o750)
    theirs = give(tmp_path / "theirs.log", 0o666)
    (logdir / "vllm_rank_0.log").symlink_to(theirs)
    handler = {"()": "logconf.handlers.RankFileHandler", "directory": str(logdir), "filename": "vllm_rank_0.log"}
    handler["follow_symlinks"] = "1"
    config = {"version": 1, "disable_existing_loggers": False, "handlers": {"f": handler}}
    file = tmp_path / "follow.json"
    file.write_text(json.dumps(config))
    with pytest.raises(ConfigError) as caught:
        logconf.apply(file)
    assert caught.value.value == str(logdir / "vllm_rank_0.log")
    assert "is owned by another user (owner nobody (uid 65534), mode 0666)" in caught.value.problem
    assert theirs.read_text() == ""


@pytest.mark.parametrize("where", ["directory", "file"])
def test_logconf_shared_dir_1_writes_there_anyway(logdir, monkeypatch, where):
    """The opt-in: a team's directory that another user owns, or a rank file another user made writable to all."""
    logdir.mkdir(mode=0o777)
    if where == "directory":
        give(logdir, 0o777)
    else:
        logdir.chmod(0o1777)
        give(logdir / "skyrl_rank_0.log", 0o666)
    refused()
    monkeypatch.setenv("LOGCONF_SHARED_DIR", "1")
    logconf.apply()
    logging.getLogger("skyrl_train.x").info("shared on purpose")
    assert [r["message"] for r in read_records(logdir / "skyrl_rank_0.log")] == ["shared on purpose"]


def test_a_bad_shared_dir_switch_is_a_config_error(logdir, monkeypatch):
    monkeypatch.setenv("LOGCONF_SHARED_DIR", "maybe")
    error = refused()
    assert (error.key, error.value, error.expected) == ("handlers.skyrl_file.shared_dir", "maybe", "use 1 or 0")


def test_a_file_another_user_puts_in_place_mid_run_is_not_written_through(logdir, capfd):
    """The rank file is deleted and recreated by nobody, mode 0666: records are dropped, reported once."""
    handler = {"()": "logconf.handlers.RankFileHandler", "directory": str(logdir), "filename": "vllm_rank_0.log"}
    handler["reopen_check_s"] = "0"
    logging.config.dictConfig(
        {"version": 1, "disable_existing_loggers": False, "handlers": {"f": handler}, "loggers": {"vllm": {"handlers": ["f"]}}}
    )
    log = logging.getLogger("vllm.engine")
    log.warning("before")
    (logdir / "vllm_rank_0.log").unlink()
    (logdir / "vllm_rank_0.log").write_text("forged\n")
    give(logdir / "vllm_rank_0.log", 0o666)
    for i in range(5):
        log.warning("after %d", i)
    assert (logdir / "vllm_rank_0.log").read_text() == "forged\n"
    err = capfd.readouterr().err
    assert err.count("logconf: cannot write") == 1 and "is owned by another user (owner nobody" in err, err


def test_the_stdio_copy_refuses_a_file_another_user_planted(logdir, monkeypatch):
    """logconf check (and so apply) of the vLLM JSON with stdio capture on checks the .stdio.log like a rank file."""
    logdir.mkdir(mode=0o1777)
    give(logdir / "vllm_rank_0.stdio.log", 0o666)
    path = logconf.vllm_config_path()
    assert check(load(path), path) == [str(logdir / "vllm_rank_0.log")]  # capture off: the copy is not written
    monkeypatch.setenv("LOGCONF_CAPTURE_STDIO", "1")
    with pytest.raises(ConfigError) as caught:
        check(load(path), path)
    assert caught.value.key == "filters.logconf_capture.directory"
    assert caught.value.value == str(logdir / "vllm_rank_0.stdio.log")
    assert "is owned by another user (owner nobody (uid 65534), mode 0666)" in caught.value.problem


def test_the_tee_refuses_a_stdio_copy_planted_after_capture_started(logdir):
    """The file appears between capture's check and the tee's first line: the tee checks it again and copies nothing there.

    Also after set_rank: the copy stays in the old rank's file when the new one is another user's.
    """
    script = f"""
import os, sys
from helpers import load_like_vllm
load_like_vllm()
planted = os.path.join(os.environ["LOGCONF_DIR"], "vllm_rank_0.stdio.log")
open(planted, "w").close()
os.chown(planted, {nobody().pw_uid}, {nobody().pw_gid})
os.chmod(planted, 0o666)
other = os.path.join(os.environ["LOGCONF_DIR"], "vllm_rank_3.stdio.log")
open(other, "w").close()
os.chown(other, {nobody().pw_uid}, {nobody().pw_gid})
os.chmod(other, 0o666)
print("a line for the copy", flush=True)
import logconf
logconf.set_rank(3)
print("after set_rank", flush=True)
"""
    env = {**os.environ, "LOGCONF_DIR": str(logdir), "LOGCONF_CAPTURE_STDIO": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "tests")])
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "a line for the copy\nafter set_rank\n"
    assert (logdir / "vllm_rank_0.stdio.log").read_text() == ""
    assert (logdir / "vllm_rank_3.stdio.log").read_text() == ""
    assert "logconf: cannot write" in done.stderr and "is owned by another user (owner nobody" in done.stderr, done.stderr
    assert "logconf: the stdio copy stays in" in done.stderr, done.stderr


def test_two_real_users_each_get_their_own_directory_and_refuse_each_others(tmp_path):
    """root runs first and creates its default directory; nobody's apply() then succeeds in its own, and a uid
    without a name gets one by its number. A world-writable directory owned by the other user, and a rank file
    the other user planted with mode 0666, are refused with path, owner and mode; LOGCONF_SHARED_DIR=1 accepts them."""
    nobody()
    for tool in ("unshare", "setpriv", "mount"):
        if not any(os.access(os.path.join(d, tool), os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep)):
            pytest.fail(f"{tool} (util-linux) is missing: install util-linux")
    script = REPO / "tests" / "two_users.py"
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable, str(script), str(REPO)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"stdout: {done.stdout}\nstderr: {done.stderr}"
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["root default"] == {"dir": "/tmp/logconf-root", "owner": 0, "mode": "0o750", "records": ["root's own"]}
    assert seen["nobody default"] == {"dir": "/tmp/logconf-nobody", "owner": 65534, "mode": "0o750", "records": ["nobody's own"]}
    assert seen["nameless default"] == {"dir": "/tmp/logconf-54321", "owner": 54321, "mode": "0o750", "records": ["no name"]}
    assert seen["root in nobody's world-writable dir"] == (
        "/tmp/nobody-open: is owned by another user (owner nobody (uid 65534), mode 0777)"
    )
    assert seen["root onto nobody's planted 0666 file"] == (
        "/tmp/root-sticky/skyrl_rank_0.log: is owned by another user (owner nobody (uid 65534), mode 0666)"
    )
    assert seen["nobody in root's world-writable dir without sticky bit"] == (
        "/tmp/root-open: is writable by every user, without the sticky bit (owner root (uid 0), mode 0777)"
    )
    assert seen["root, shared, in nobody's dir"] == ["shared on purpose"]
    assert seen["root, shared, onto nobody's file"] == ["shared on purpose"]
    assert seen["nobody, shared, in root's dir"] == ["shared on purpose"]
    assert seen["nobody in root's sticky dir"] == ["root's and sticky, as /tmp"]  # root counts as no other user
