"""Ray settings that carry logconf's environment to every actor and vLLM process.

Nothing here imports Ray: these functions build the plain dicts that ``ray.init`` and
``.options()`` take.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from logconf.config import vllm_config_path
from logconf.errors import ConfigError
from logconf.formatters import resolve_rank
from logconf.templating import log_format

__all__ = ["CARRIED", "engine_options", "ray_runtime_env"]

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
_NOT_CARRIED = ("LOGCONF_RANK", "LOGCONF_STDIO_TEE")
DEFAULT_DIR = "/tmp/logconf"


def ray_runtime_env(runtime_env: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return ``runtime_env`` (for ``ray.init``) with logconf's settings added to its ``env_vars``.

    Values come from ``runtime_env["env_vars"]`` first, then this process's environment.
    ``LOGCONF_DIR`` is made absolute here (a worker's working directory is not the driver's)
    and ``VLLM_LOGGING_CONFIG_PATH`` defaults to the shipped JSON. The names are also added to
    ``VLLM_RAY_EXTRA_ENV_VARS_TO_COPY`` so that vLLM's Ray-executor workers get them. Other
    fields of ``runtime_env`` pass through unchanged.
    """
    env = dict(runtime_env or {})
    given = {k: str(v) for k, v in dict(env.get("env_vars") or {}).items()}
    names = [*CARRIED, *sorted(k for k in os.environ if k.startswith("LOGCONF_") and k not in (*CARRIED, *_NOT_CARRIED))]
    merged = {**{k: os.environ[k] for k in names if k in os.environ}, **given}
    merged["LOGCONF_DIR"] = os.path.abspath(os.path.expanduser(merged.get("LOGCONF_DIR", DEFAULT_DIR)))
    merged.setdefault("VLLM_LOGGING_CONFIG_PATH", vllm_config_path())
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
        if name not in extra and not name.startswith("VLLM_"):
            extra.append(name)
    merged["VLLM_RAY_EXTRA_ENV_VARS_TO_COPY"] = ",".join(extra)
    env["env_vars"] = merged
    return env


def engine_options(rank: int | str, **options: Any) -> dict[str, Any]:
    """Return ``.options()`` for an engine actor that gives it (and its vLLM children) ``rank``.

    Ray merges an actor's ``env_vars`` with the job's, so only the rank is set here.
    """
    value = resolve_rank("${LOGCONF_RANK}", file="engine_options()", environ={"LOGCONF_RANK": str(rank)})
    runtime_env = dict(options.pop("runtime_env", None) or {})
    runtime_env["env_vars"] = {**dict(runtime_env.get("env_vars", {})), "LOGCONF_RANK": value}
    return {**options, "runtime_env": runtime_env}
