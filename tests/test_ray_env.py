"""The runtime_env and actor options that carry logconf's environment through Ray (plain dicts)."""

from __future__ import annotations

import os

import pytest

import logconf
from logconf import ray_env
from logconf.errors import ConfigError


def test_runtime_env_carries_settings_with_an_absolute_dir(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOGCONF_FORMAT", "json")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    env = logconf.ray_runtime_env({"env_vars": {"LOGCONF_DIR": "logs", "LOGCONF_CONSOLE_LEVEL": "ERROR"}})["env_vars"]
    assert env["LOGCONF_DIR"] == str(tmp_path / "logs")
    assert env["LOGCONF_FORMAT"] == "json"
    assert env["LOGCONF_CONSOLE_LEVEL"] == "ERROR"
    assert env["LOG_LEVEL"] == "DEBUG"
    assert "VLLM_LOGGING_CONFIG_PATH" not in env  # each worker sets its own install's path: see below
    copied = env["VLLM_RAY_EXTRA_ENV_VARS_TO_COPY"].split(",")
    assert {"LOGCONF_DIR", "LOGCONF_FORMAT", "LOGCONF_CONSOLE_LEVEL", "LOG_LEVEL", "LOGCONF_RANK"} <= set(copied)
    assert not [name for name in copied if name.startswith("VLLM_")]  # vLLM copies its own


def test_runtime_env_s_own_env_vars_win_over_the_drivers_environment(monkeypatch, tmp_path):
    """The job asks for JSON lines and DEBUG in its runtime_env; the driver's own text and INFO do not override that."""
    monkeypatch.setenv("LOGCONF_FORMAT", "text")
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    monkeypatch.setenv("LOGCONF_DIR", str(tmp_path / "driver"))
    given = {"LOGCONF_FORMAT": "json", "LOG_LEVEL": "DEBUG", "LOGCONF_DIR": str(tmp_path / "job")}
    env = logconf.ray_runtime_env({"env_vars": given})["env_vars"]
    assert {k: env[k] for k in given} == given

def test_runtime_env_carries_every_logconf_setting_but_the_rank(monkeypatch):
    """LOGCONF_RANK_HOLD_S, LOGCONF_AUTO and any other LOGCONF_* reach the workers; the rank is per actor."""
    monkeypatch.setenv("LOGCONF_RANK_HOLD_S", "5")
    monkeypatch.setenv("LOGCONF_AUTO", "1")
    monkeypatch.setenv("LOGCONF_SOMETHING_NEW", "x")
    monkeypatch.setenv("LOGCONF_RANK", "3")
    monkeypatch.setenv("LOGCONF_STDIO_TEE", "123:1=4/5")
    env = logconf.ray_runtime_env()["env_vars"]
    assert {k: env[k] for k in env if k.startswith("LOGCONF_")} == {
        "LOGCONF_RANK_HOLD_S": "5",
        "LOGCONF_AUTO": "1",
        "LOGCONF_SOMETHING_NEW": "x",
    }
    copied = env["VLLM_RAY_EXTRA_ENV_VARS_TO_COPY"].split(",")
    assert {"LOGCONF_RANK_HOLD_S", "LOGCONF_AUTO", "LOGCONF_SOMETHING_NEW", "LOGCONF_RANK"} <= set(copied)


def test_runtime_env_keeps_other_fields_and_existing_copy_list(monkeypatch):
    env = logconf.ray_runtime_env({"pip": ["x"], "env_vars": {"OTHER": "1", "VLLM_RAY_EXTRA_ENV_VARS_TO_COPY": "MY_VAR"}})
    assert env["pip"] == ["x"]
    assert env["env_vars"]["OTHER"] == "1"
    assert env["env_vars"]["VLLM_RAY_EXTRA_ENV_VARS_TO_COPY"].split(",")[0] == "MY_VAR"


def test_a_driver_without_logconf_dir_leaves_each_node_its_own(monkeypatch, tmp_path):
    """Unset on the driver: not pinned into the workers (each node's raylet LOGCONF_DIR, or the default there, applies),
    nor copied by vLLM from an engine's node to its workers on other nodes."""
    env = logconf.ray_runtime_env({"env_vars": {"OTHER": "1"}})["env_vars"]
    assert "LOGCONF_DIR" not in env
    assert "LOGCONF_DIR" not in env["VLLM_RAY_EXTRA_ENV_VARS_TO_COPY"].split(",")
    assert "LOGCONF_RANK" in env["VLLM_RAY_EXTRA_ENV_VARS_TO_COPY"].split(",")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOGCONF_DIR", "~/run42")
    env = logconf.ray_runtime_env()["env_vars"]
    assert env["LOGCONF_DIR"] == os.path.expanduser("~/run42")
    assert "LOGCONF_DIR" in env["VLLM_RAY_EXTRA_ENV_VARS_TO_COPY"].split(",")


def test_an_empty_logconf_dir_is_refused_rather_than_pinned_to_the_drivers_working_directory(monkeypatch):
    with pytest.raises(ConfigError, match=r"ray_runtime_env\(\): LOGCONF_DIR: is set but empty"):
        logconf.ray_runtime_env({"env_vars": {"LOGCONF_DIR": ""}})
    monkeypatch.setenv("LOGCONF_DIR", "")
    with pytest.raises(ConfigError, match="LOGCONF_DIR: is set but empty"):
        logconf.ray_runtime_env()


def test_runtime_env_refuses_what_vllm_would_refuse(monkeypatch):
    with pytest.raises(ConfigError, match="LOGCONF_FORMAT: unknown log format"):
        logconf.ray_runtime_env({"env_vars": {"LOGCONF_FORMAT": "xml"}})
    monkeypatch.setenv("VLLM_CONFIGURE_LOGGING", "0")
    with pytest.raises(ConfigError, match="VLLM_CONFIGURE_LOGGING"):
        logconf.ray_runtime_env()


def test_engine_options_set_only_the_rank_and_keep_other_options():
    options = logconf.engine_options(1, num_cpus=1, runtime_env={"env_vars": {"A": "b"}})
    assert options == {"num_cpus": 1, "runtime_env": {"env_vars": {"A": "b", "LOGCONF_RANK": "1"}}}


@pytest.mark.parametrize("rank", ["", "../1", "a/b"])
def test_engine_options_refuse_a_rank_that_is_not_a_file_name_part(rank):
    with pytest.raises(ConfigError):
        logconf.engine_options(rank)
    assert "LOGCONF_RANK" not in os.environ


def hook_of_the_users() -> None:
    """A worker_process_setup_hook of the user's, named by its dotted path."""
    os.environ["USER_HOOK_SAW"] = os.environ["VLLM_LOGGING_CONFIG_PATH"]


@pytest.mark.parametrize("exported", [None, "driver_env", "env_vars"])
def test_the_shipped_config_path_is_not_pinned_each_worker_finds_its_own(monkeypatch, exported):
    """Unset, exported or given, the driver's path of the shipped JSON stays home; the setup hook sets each worker's."""
    if exported == "driver_env":
        monkeypatch.setenv("VLLM_LOGGING_CONFIG_PATH", logconf.vllm_config_path())
    given = {"VLLM_LOGGING_CONFIG_PATH": logconf.vllm_config_path()} if exported == "env_vars" else {}
    env = logconf.ray_runtime_env({"env_vars": given})
    assert "VLLM_LOGGING_CONFIG_PATH" not in env["env_vars"]
    assert env["worker_process_setup_hook"] == "logconf.ray_env.setup_worker" == ray_env.SETUP_HOOK
    monkeypatch.setenv("VLLM_LOGGING_CONFIG_PATH", "/on/the/driver/only/vllm_logging.json")
    ray_env.setup_worker()  # what Ray runs first in every worker process
    assert os.environ["VLLM_LOGGING_CONFIG_PATH"] == logconf.vllm_config_path()


def test_a_config_file_of_the_users_own_is_carried_as_given(monkeypatch, tmp_path):
    """A non-shipped file is the user's to place on every node: carried unchanged, no hook added."""
    own = tmp_path / "mine.json"
    own.write_text("{}")
    env = logconf.ray_runtime_env({"env_vars": {"VLLM_LOGGING_CONFIG_PATH": str(own)}})
    assert env["env_vars"]["VLLM_LOGGING_CONFIG_PATH"] == str(own)
    assert "worker_process_setup_hook" not in env
    monkeypatch.setenv("VLLM_LOGGING_CONFIG_PATH", "/nodes/share/this/logging.json")
    env = logconf.ray_runtime_env()
    assert env["env_vars"]["VLLM_LOGGING_CONFIG_PATH"] == "/nodes/share/this/logging.json"
    assert "worker_process_setup_hook" not in env


def test_a_dotted_setup_hook_of_the_users_runs_after_logconfs(monkeypatch):
    env = logconf.ray_runtime_env({"worker_process_setup_hook": "test_ray_env.hook_of_the_users"})
    assert env["worker_process_setup_hook"] == ray_env.SETUP_HOOK
    assert env["env_vars"]["LOGCONF_NEXT_SETUP_HOOK"] == "test_ray_env.hook_of_the_users"
    assert "LOGCONF_NEXT_SETUP_HOOK" not in env["env_vars"]["VLLM_RAY_EXTRA_ENV_VARS_TO_COPY"].split(",")
    monkeypatch.setenv("LOGCONF_NEXT_SETUP_HOOK", "test_ray_env.hook_of_the_users")
    monkeypatch.delenv("USER_HOOK_SAW", raising=False)
    ray_env.setup_worker()
    assert os.environ["USER_HOOK_SAW"] == logconf.vllm_config_path()
    assert logconf.ray_runtime_env(env)["worker_process_setup_hook"] == ray_env.SETUP_HOOK  # applied twice: once


def test_a_callable_setup_hook_of_the_users_runs_after_logconfs(monkeypatch):
    seen = []
    env = logconf.ray_runtime_env({"worker_process_setup_hook": lambda: seen.append(os.environ["VLLM_LOGGING_CONFIG_PATH"])})
    hook = env["worker_process_setup_hook"]
    assert hook.__name__ == "logconf_then_<lambda>"
    monkeypatch.setenv("VLLM_LOGGING_CONFIG_PATH", "/on/the/driver/only/vllm_logging.json")
    hook()
    assert seen == [logconf.vllm_config_path()]
    assert logconf.ray_runtime_env(env)["worker_process_setup_hook"] is hook


def test_the_setup_hook_leaves_vllms_logging_alone_when_told_not_to_configure_it(monkeypatch):
    monkeypatch.setenv("VLLM_CONFIGURE_LOGGING", "0")
    ray_env.setup_worker()
    assert "VLLM_LOGGING_CONFIG_PATH" not in os.environ
