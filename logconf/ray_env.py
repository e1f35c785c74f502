"""Ray settings that carry logconf's environment to every actor and vLLM process.

Nothing here imports Ray: these functions build the plain dicts that ``ray.init`` and
``.options()`` take.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from typing import Any

from logconf.config import vllm_config_path
from logconf.errors import ConfigError
from logconf.linebase import resolve_rank
from logconf.templating import log_format

__all__ = ["CARRIED", "SETUP_HOOK", "engine_options", "ray_runtime_env", "setup_worker"]

# What every process of the job must see the same: these, and every other LOGCONF_* setting
# of this process. LOGCONF_RANK is per actor (engine_options); LOGCONF_STDIO_TEE is capture's own.
CARRIED = (
    "LOGCONF_DIR",
    "LOGCONF_FORMAT",
    "LOGCONF_CONSOLE_LEVEL",
    "LOGCONF_REDACT",
    "LOGCONF_FILE_MODE",
    "LOGCONF_DIR_MODE",
    "LOGCONF_CAPTURE_STDIO",
    "LOGCONF_RANK_HOLD_S",
    "LOGCONF_AUTO",
    "LOGCONF_AUTO_CONFIG",
    "LOG_LEVEL",
    "VLLM_LOGGING_LEVEL",
    "VLLM_LOGGING_CONFIG_PATH",
)
_NEXT_HOOK_ENV = "LOGCONF_NEXT_SETUP_HOOK"  # a dotted worker_process_setup_hook of the user's, run after ours
_NOT_CARRIED = ("LOGCONF_RANK", "LOGCONF_STDIO_TEE", _NEXT_HOOK_ENV)
SETUP_HOOK = "logconf.ray_env.setup_worker"


def setup_worker() -> None:
    """Point VLLM_LOGGING_CONFIG_PATH at this worker's own install of the shipped JSON; then run the user's hook.

    ``ray_runtime_env`` names this as the ``worker_process_setup_hook``: Ray runs it in every
    worker process before any task or actor code, so vLLM (at ``import vllm`` up to 0.30, at
    engine creation from 0.31) and the EngineCore and workers it starts read a file that
    exists on this node, wherever logconf is installed here (a Ray ``pip`` or ``py_modules``
    environment puts it at another path on each node).
    """
    if os.environ.get("VLLM_CONFIGURE_LOGGING") != "0":
        os.environ["VLLM_LOGGING_CONFIG_PATH"] = vllm_config_path()
    after = os.environ.get(_NEXT_HOOK_ENV)
    if after:
        module, _, name = after.rpartition(".")
        getattr(importlib.import_module(module), name)()


class _Chained:
    """A callable setup hook that runs :func:`setup_worker` first, then the user's own callable hook."""

    def __init__(self, hook: Callable[[], Any]) -> None:
        self.hook = hook
        self.__name__ = f"logconf_then_{getattr(hook, '__name__', 'hook')}"  # Ray shows the hook by name

    def __call__(self) -> Any:
        setup_worker()
        return self.hook()


def _shipped(path: str) -> bool:
    try:
        return os.path.samefile(path, vllm_config_path())
    except OSError:
        return False


def ray_runtime_env(runtime_env: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return ``runtime_env`` (for ``ray.init``) with logconf's settings added to its ``env_vars``.

    Values come from ``runtime_env["env_vars"]`` first, then this process's environment.
    ``LOGCONF_DIR`` is carried only when one of them sets it, made absolute here (a worker's
    working directory is not the driver's); unset, each node keeps its own (the ``LOGCONF_DIR``
    its raylet was started with, else logconf's default there), and vLLM's workers are not
    told to copy it from one node to another.
    ``VLLM_LOGGING_CONFIG_PATH`` is carried only when it names a file of the user's own (which
    must then exist at that path on every node); unset or naming the shipped JSON, each worker
    sets it to its own install's copy instead, through the ``worker_process_setup_hook``
    :func:`setup_worker` (run before a hook already in ``runtime_env``). The names are also added to
    ``VLLM_RAY_EXTRA_ENV_VARS_TO_COPY`` so that vLLM's Ray-executor workers get them. Other
    fields of ``runtime_env`` pass through unchanged.
    """
    env = dict(runtime_env or {})
    given = {k: str(v) for k, v in dict(env.get("env_vars") or {}).items()}
    names = [*CARRIED, *sorted(k for k in os.environ if k.startswith("LOGCONF_") and k not in (*CARRIED, *_NOT_CARRIED))]
    merged = {**{k: os.environ[k] for k in names if k in os.environ}, **given}
    if "LOGCONF_DIR" in merged:
        if not merged["LOGCONF_DIR"]:
            expected = "name the log directory, or unset it for each node's own"
            raise ConfigError("ray_runtime_env()", "LOGCONF_DIR", "", "is set but empty", expected)
        merged["LOGCONF_DIR"] = os.path.abspath(os.path.expanduser(merged["LOGCONF_DIR"]))
    if _shipped(merged.get("VLLM_LOGGING_CONFIG_PATH", vllm_config_path())):
        # This path may not exist on another node: each worker finds its own install's file.
        merged.pop("VLLM_LOGGING_CONFIG_PATH", None)
        _add_setup_hook(env, merged)
    log_format(merged, file="ray_runtime_env()")
    if os.environ.get("VLLM_CONFIGURE_LOGGING") == "0" or given.get("VLLM_CONFIGURE_LOGGING") == "0":
        raise ConfigError(
            "ray_runtime_env()",
            "VLLM_CONFIGURE_LOGGING",
            "0",
            "vLLM refuses VLLM_LOGGING_CONFIG_PATH while it is told not to configure logging",
            "unset VLLM_CONFIGURE_LOGGING",
        )
    extra = [
        n
        for n in merged.get("VLLM_RAY_EXTRA_ENV_VARS_TO_COPY", os.environ.get("VLLM_RAY_EXTRA_ENV_VARS_TO_COPY", "")).split(",")
        if n
    ]
    for name in (*names, "LOGCONF_RANK"):
        if name == "LOGCONF_DIR" and name not in merged:
            continue  # each node's own: a node's value must not follow vLLM's workers to other nodes
        if name not in extra and not name.startswith("VLLM_"):
            extra.append(name)
    merged["VLLM_RAY_EXTRA_ENV_VARS_TO_COPY"] = ",".join(extra)
    env["env_vars"] = merged
    return env


def _add_setup_hook(env: dict[str, Any], env_vars: dict[str, str]) -> None:
    hook = env.get("worker_process_setup_hook")
    if hook is None or hook == SETUP_HOOK or isinstance(hook, _Chained):
        env["worker_process_setup_hook"] = SETUP_HOOK if hook is None else hook
    elif isinstance(hook, str):
        env["worker_process_setup_hook"], env_vars[_NEXT_HOOK_ENV] = SETUP_HOOK, hook
    else:
        env["worker_process_setup_hook"] = _Chained(hook)


def engine_options(rank: int | str, **options: Any) -> dict[str, Any]:
    """Return ``.options()`` for an engine actor that gives it (and its vLLM children) ``rank``.

    Ray merges an actor's ``env_vars`` with the job's, so only the rank is set here.
    """
    value = resolve_rank("${LOGCONF_RANK}", file="engine_options()", environ={"LOGCONF_RANK": str(rank)})
    runtime_env = dict(options.pop("runtime_env", None) or {})
    runtime_env["env_vars"] = {**dict(runtime_env.get("env_vars", {})), "LOGCONF_RANK": value}
    return {**options, "runtime_env": runtime_env}
