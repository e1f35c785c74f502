"""The framework integrations (logconf.integrations) in the fast suite: uvicorn's, and SkyRL's engine actor.

uvicorn is real here (the `test` extra installs it). SkyRL needs vLLM and cannot be imported in
the fast environments: its engine actor's module is stood in for by one registered under the
same name, whose ``VLLMServerActor.__init__`` has the signature of SkyRL 0.4.0's
(``skyrl/backends/skyrl_train/inference_servers/vllm_server_actor.py``).
tests/real/test_real_skyrl.py runs SkyRL's own actor on real engines.
"""

from __future__ import annotations

import importlib
import logging
import sys
from argparse import Namespace
from pathlib import Path

import pytest
from helpers import load_like_vllm, read_records

from logconf import integrations

ACTOR_MODULE = "skyrl.backends.skyrl_train.inference_servers.vllm_server_actor"
ACTOR_SOURCE = '''
import logging, os
from argparse import Namespace
from typing import List, Optional

STARTED = []


class VLLMServerActor:
    def __init__(
        self,
        vllm_cli_args: Namespace,
        start_port: int = 8000,
        server_idx: int = 0,
        bundle_indices: Optional[List[int]] = None,
        dp_size: int = -1,
        dp_master_address: Optional[str] = None,
        dp_rpc_port: Optional[int] = None,
        enable_pd: bool = False,
        nixl_side_channel_base: int = 5600,
        mooncake_bootstrap_base_port: int = 50052,
        colocated_training: bool = False,
        distributed_executor_backend: str = "ray",
        mp_cuda_visible_devices: Optional[str] = None,
        enable_ray_prometheus_stats: bool = True,
    ):
        STARTED.append((server_idx, os.environ.get("LOGCONF_RANK")))  # the rank as __init__ finds it
        logging.getLogger("vllm.entrypoints.openai.api_server").info("server %d starting", server_idx)
'''


def uvicorn_config():
    try:
        return importlib.import_module("uvicorn.config")
    except ImportError:
        pytest.fail("uvicorn is not installed here: pip install -e '.[test]' (the test extra installs it)")


@pytest.mark.parametrize("access_log", [True, False])
def test_uvicorn_default_config_logs_into_the_vllm_rank_file_and_access_log_false_stays_off(
    logdir, monkeypatch, capfd, access_log
):
    """uvicorn.Config without log_config: its lines go to vllm_rank_0, not the console; access_log=False keeps them off."""
    config = uvicorn_config()
    monkeypatch.setattr(config.Config, "configure_logging", config.Config.configure_logging)  # unwrapped after the test
    load_like_vllm()
    integrations.install()  # uvicorn.config is imported: its hook runs now
    config.Config(app="app:app", access_log=access_log)  # applies uvicorn's LOGGING_CONFIG, as `vllm serve` and SkyRL do
    logging.getLogger("uvicorn.error").info("Started server process")
    logging.getLogger("uvicorn.access").info('127.0.0.1:5000 - "POST /v1/completions HTTP/1.1" 200')
    logging.getLogger("uvicorn.error").warning("shutting down")
    expected = [("uvicorn.error", "Started server process")]
    if access_log:
        expected.append(("uvicorn.access", '127.0.0.1:5000 - "POST /v1/completions HTTP/1.1" 200'))
    expected.append(("uvicorn.error", "shutting down"))
    assert [(r["logger"], r["message"]) for r in read_records(logdir / "vllm_rank_0.log")] == expected
    out, err = capfd.readouterr()
    assert out == ""
    assert err.count("shutting down") == 1 and "Started server process" not in err
    access = logging.getLogger("uvicorn.access")
    assert (access.handlers == [] and not access.propagate) if not access_log else access.propagate


def test_uvicorn_explicit_log_config_is_left_as_the_caller_chose(logdir, monkeypatch):
    """A log_config of the caller's own is not rerouted: uvicorn's loggers keep its handlers."""
    config = uvicorn_config()
    monkeypatch.setattr(config.Config, "configure_logging", config.Config.configure_logging)
    load_like_vllm()
    integrations.install()
    own = {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"null": {"class": "logging.NullHandler"}},
        "loggers": {"uvicorn.error": {"handlers": ["null"], "propagate": False}},
    }
    config.Config(app="app:app", log_config=own)
    error = logging.getLogger("uvicorn.error")
    assert [type(h).__name__ for h in error.handlers] == ["NullHandler"] and not error.propagate


def _stand_in_actor_module(tmp_path, monkeypatch, source: str):
    """Write SkyRL's engine actor module under its own name, apply the config and install the hooks; then clean up."""
    package = tmp_path / "pkgs" / Path(*ACTOR_MODULE.split(".")[:-1])
    package.mkdir(parents=True)
    for parent in [package, *package.relative_to(tmp_path / "pkgs").parents][:-1]:
        (tmp_path / "pkgs" / parent / "__init__.py").write_text("")
    (package / "vllm_server_actor.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    monkeypatch.setenv("LOGCONF_RANK", "9")  # not any server's: set_rank changes it (restored after the test)
    before = set(sys.modules)
    load_like_vllm()
    integrations.install()
    yield
    for name in set(sys.modules) - before:
        if name == "skyrl" or name.startswith("skyrl."):
            del sys.modules[name]


@pytest.fixture
def skyrl_actor_module(tmp_path, monkeypatch):
    """SkyRL's engine actor module, stood in for under its own name, imported after the hook is installed."""
    for _ in _stand_in_actor_module(tmp_path, monkeypatch, ACTOR_SOURCE):
        yield importlib.import_module(ACTOR_MODULE)


def test_a_hook_that_fails_leaves_the_frameworks_import_working_and_says_so_once(tmp_path, monkeypatch, capfd):
    """A SkyRL release without VLLMServerActor: the hook fails (AttributeError), the module still imports."""
    for _ in _stand_in_actor_module(tmp_path, monkeypatch, ACTOR_SOURCE.replace("class VLLMServerActor", "class Renamed")):
        module = importlib.import_module(ACTOR_MODULE)
        assert hasattr(module, "Renamed")
        integrations.install()  # again (apply() does): the failed hook is not run twice
    err = capfd.readouterr().err
    assert err.count(f"logconf: the {ACTOR_MODULE} integration is off in this process: AttributeError") == 1, err


@pytest.mark.parametrize(
    ("args", "kwargs", "rank"),
    [
        ((Namespace(), 8000, 3), {}, "3"),
        ((Namespace(),), {"server_idx": 4, "start_port": 8100}, "4"),
        ((Namespace(),), {}, "0"),
    ],
    ids=["by-position", "by-keyword", "default"],
)
def test_skyrl_engine_actor_takes_server_idx_as_its_rank_before_init(logdir, skyrl_actor_module, args, kwargs, rank):
    """VLLMServerActor(..., server_idx=N): the rank is N before __init__ runs, and its vLLM records go to vllm_rank_N."""
    actor_class = skyrl_actor_module.VLLMServerActor
    actor_class(*args, **kwargs)
    assert skyrl_actor_module.STARTED == [(int(rank), rank)]
    records = read_records(logdir / f"vllm_rank_{rank}.log")
    assert [(r["rank"], r["message"]) for r in records] == [(rank, f"server {rank} starting")]
    wrapped = actor_class.__init__
    assert wrapped.__name__ == "__init__" and wrapped.__wrapped__.__qualname__ == "VLLMServerActor.__init__"


def test_skyrl_engine_actor_starts_even_when_its_rank_cannot_be_set(logdir, skyrl_actor_module, capfd):
    """An unknown keyword is the actor's own error to raise, not logconf's: one line on stderr, then __init__'s TypeError."""
    with pytest.raises(TypeError):
        skyrl_actor_module.VLLMServerActor(Namespace(), server_index=2)
    assert "VLLMServerActor: cannot take server_idx as the rank" in capfd.readouterr().err
