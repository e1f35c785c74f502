"""apply() reads a YAML config it parsed before from the per-user cache, without importing PyYAML.

Each test has its own empty XDG_CACHE_HOME (conftest). A process that must not import PyYAML runs
with ``sys.modules["yaml"] = None``, so that any import of it fails.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from logwriters import REPO

import logconf
from logconf import ConfigError, yamlcache
from logconf.config import load

NO_YAML = "import sys; sys.modules['yaml'] = None\n"


def _user_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "trainer.yaml"
    shutil.copy(logconf.skyrl_config_path(), path)
    return path


def _entries() -> list[Path]:
    return sorted(Path(yamlcache.directory() or "/nonexistent").glob("*.json"))


def _load_without_pyyaml(path: Path) -> subprocess.CompletedProcess[str]:
    """Load ``path`` in a fresh interpreter where PyYAML cannot be imported; print the config as JSON."""
    script = NO_YAML + "import json, sys\nfrom logconf.config import load\nprint(json.dumps(load(sys.argv[1])))\n"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", script, str(path)], env=env, capture_output=True, text=True, timeout=60)


def _yaml_parse(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_a_file_parsed_once_loads_later_without_pyyaml(tmp_path):
    path = _user_yaml(tmp_path)
    cold = _load_without_pyyaml(path)
    assert cold.returncode == 1 and "ModuleNotFoundError" in cold.stderr  # nothing cached yet: PyYAML is needed
    assert load(path) == _yaml_parse(path)
    (entry,) = _entries()
    assert entry.stat().st_mode & 0o777 == 0o600 and entry.parent.stat().st_mode & 0o777 == 0o700
    warm = _load_without_pyyaml(path)
    assert warm.returncode == 0, warm.stderr
    assert json.loads(warm.stdout) == _yaml_parse(path)


def test_two_configs_keep_an_entry_each_and_both_load_without_pyyaml(tmp_path):
    """Entries are named by a checksum of the file's real path: two configs of one name in two directories, parsed
    in turn, keep one entry each."""
    first = _user_yaml(tmp_path)
    second = tmp_path / "engine" / first.name
    second.parent.mkdir()
    shutil.copy(first, second)
    assert load(first) == load(second) == _yaml_parse(first)
    assert len(_entries()) == 2
    for path in (first, second, first):
        warm = _load_without_pyyaml(path)
        assert warm.returncode == 0, warm.stderr


def test_the_shipped_config_is_applied_from_the_cache(logdir):
    """The second process to apply() the shipped YAML imports neither PyYAML nor multiprocessing, and logs as the first."""
    logconf.apply()
    script = (
        "import logging, sys, logconf\n"
        "logconf.apply()\n"
        "logging.getLogger('skyrl_train.x').info('from the cache')\n"
        "print(sorted({'yaml', 'multiprocessing'} & set(sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "[]\n"), done.stderr
    assert (logdir / "skyrl_rank_0.log").read_text(encoding="utf-8").endswith("skyrl_train.x: from the cache\n")


def test_an_edit_is_seen_even_with_the_same_size_and_mtime(tmp_path):
    """The entry holds the file's text: an edit that keeps size and mtime still misses the cache."""
    path = _user_yaml(tmp_path)
    assert load(path)["root"]["level"] == "WARNING"
    before = path.stat()
    path.write_text(path.read_text(encoding="utf-8").replace("level: WARNING", "level: ERROR__"), encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns
    assert load(path)["root"]["level"] == "ERROR__"
    warm = _load_without_pyyaml(path)
    assert json.loads(warm.stdout)["root"]["level"] == "ERROR__"  # the entry was rewritten for the new text


def test_a_corrupt_entry_is_parsed_again_and_replaced(tmp_path):
    path = _user_yaml(tmp_path)
    load(path)
    (entry,) = _entries()
    entry.write_text('{"format": "logconf-yaml-cache/1", "file": tru', encoding="utf-8")
    assert load(path) == _yaml_parse(path)
    assert json.loads(entry.read_text(encoding="utf-8"))["config"] == _yaml_parse(path)


@pytest.mark.parametrize("change", ["other_file", "other_format", "other_text", "not_a_mapping", "group_writable", "other_user"])
def test_an_entry_that_does_not_match_is_never_used(tmp_path, change):
    """An entry is used only for the same real path, the same text, this format, and written by this user alone."""
    path = _user_yaml(tmp_path)
    load(path)
    (entry,) = _entries()
    document = json.loads(entry.read_text(encoding="utf-8"))
    document["config"]["root"]["level"] = "FORGED"
    if change == "other_file":
        document["file"] = str(tmp_path / "elsewhere.yaml")
    elif change == "other_format":
        document["format"] = "logconf-yaml-cache/0"
    elif change == "other_text":
        document["text"] += "\n# another version\n"
    elif change == "not_a_mapping":
        document["config"] = [document["config"]]
    entry.write_text(json.dumps(document), encoding="utf-8")
    entry.chmod(0o620 if change == "group_writable" else 0o600)
    if change == "other_user":  # a real one: nobody owns the entry, mode 0600 as ours would be
        if os.geteuid() != 0:
            pytest.fail("giving the entry to the user nobody needs root (CI runs as root)")
        os.chown(entry, pwd.getpwnam("nobody").pw_uid, -1)
    assert load(path)["root"]["level"] == "WARNING"


def test_the_forged_entry_would_be_used_if_it_matched(tmp_path):
    """The control for the test above: the same edit, every check passing, is read from the cache."""
    path = _user_yaml(tmp_path)
    load(path)
    (entry,) = _entries()
    document = json.loads(entry.read_text(encoding="utf-8"))
    document["config"]["root"]["level"] = "FROM_CACHE"
    entry.write_text(json.dumps(document), encoding="utf-8")
    assert load(path)["root"]["level"] == "FROM_CACHE"


def test_an_unusable_cache_directory_costs_only_the_cache(tmp_path, monkeypatch, logdir, capfd):
    """XDG_CACHE_HOME under a regular file (nothing can be created there): apply() works, silently."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "cache"))
    path = _user_yaml(tmp_path)
    logconf.apply(path)
    logconf.apply(path)
    logging.getLogger("skyrl_train.x").info("still logged")
    assert (logdir / "skyrl_rank_0.log").read_text(encoding="utf-8").endswith("skyrl_train.x: still logged\n")
    assert capfd.readouterr().err == ""
    assert list(tmp_path.rglob("*.tmp")) == []


def test_a_relative_xdg_cache_home_is_ignored(tmp_path, monkeypatch):
    """As the XDG spec says: a relative XDG_CACHE_HOME falls back to ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    path = _user_yaml(tmp_path)
    load(path)
    assert [p.parent for p in _entries()] == [tmp_path / "home" / ".cache" / "logconf"]
    assert not (tmp_path / "relative").exists()


def test_no_home_means_no_cache(tmp_path, monkeypatch):
    """Without XDG_CACHE_HOME and with no home to expand "~" to, nothing is written anywhere."""
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setattr(os.path, "expanduser", lambda p: p)  # what expanduser returns for a user with no home
    monkeypatch.chdir(tmp_path)
    assert yamlcache.directory() is None
    path = _user_yaml(tmp_path)
    assert load(path) == _yaml_parse(path)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["trainer.yaml"]


def test_a_config_json_cannot_hold_exactly_is_not_cached(tmp_path):
    """Integer keys and dates would come back changed from JSON: such a file is parsed by PyYAML every time."""
    path = tmp_path / "odd.yaml"
    path.write_text("version: 1\nloggers: {}\nodd: {1: one, when: 2026-11-26}\n", encoding="utf-8")
    assert load(path)["odd"][1] == "one"
    assert _entries() == []


def test_a_config_whose_only_oddity_is_an_integer_key_is_not_cached(tmp_path):
    """json.dumps takes {1: "one"} but gives back {"1": "one"}: only the round trip shows it, so no entry is written."""
    path = tmp_path / "int-key.yaml"
    path.write_text("version: 1\nloggers: {}\nodd: {1: one}\n", encoding="utf-8")
    assert load(path)["odd"] == {1: "one"}
    assert _entries() == []
    assert load(path)["odd"] == {1: "one"}  # and parsed again, with the key it has


def test_bad_yaml_is_reported_with_file_and_line_after_a_good_version_was_cached(tmp_path):
    path = _user_yaml(tmp_path)
    load(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    bad = next(i for i, line in enumerate(lines) if line.startswith("handlers:"))
    lines.insert(bad + 1, "  broken: [unclosed")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        logconf.apply(path)
    message = str(caught.value)
    assert str(path) in message and "malformed YAML" in message
    assert f"line {bad + 3} column 1" in message  # the parser notices at the next line
