"""Per-rank, per-subsystem logs for RL training stacks, with nothing but stdlib logging.

Point ``VLLM_LOGGING_CONFIG_PATH`` at :func:`vllm_config_path` and call :func:`apply` once
in the trainer; the environment (``LOGCONF_DIR``, ``LOGCONF_RANK``, ``LOGCONF_FORMAT``,
``LOGCONF_CONSOLE_LEVEL``) decides the rest, in every process that inherits it.

``import logconf`` loads none of this: each public name loads its module on first use, so the
start-up hook (:mod:`logconf.auto`) and vLLM's processes pay only for what they use.
"""

TYPE_CHECKING = False  # not typing's: importing typing would cost more than everything else here
if TYPE_CHECKING:
    from typing import Any

    from logconf.config import apply, skyrl_config_path, vllm_config_path
    from logconf.errors import ConfigError
    from logconf.ranks import set_rank
    from logconf.ray_env import engine_options, ray_runtime_env

__all__ = [
    "ConfigError",
    "__version__",
    "apply",
    "engine_options",
    "ray_runtime_env",
    "set_rank",
    "skyrl_config_path",
    "vllm_config_path",
]

__version__ = "0.1.0"

_HOMES = {
    "ConfigError": "logconf.errors",
    "apply": "logconf.config",
    "engine_options": "logconf.ray_env",
    "ray_runtime_env": "logconf.ray_env",
    "set_rank": "logconf.ranks",
    "skyrl_config_path": "logconf.config",
    "vllm_config_path": "logconf.config",
}


def __getattr__(name: str) -> "Any":
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'logconf' has no attribute {name!r}")
    value = getattr(__import__(home, fromlist=[name]), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
