"""Per-rank, per-subsystem logs for RL training stacks, with nothing but stdlib logging.

Point ``VLLM_LOGGING_CONFIG_PATH`` at :func:`vllm_config_path` and call :func:`apply` once
in the trainer; the environment (``LOGCONF_DIR``, ``LOGCONF_RANK``, ``LOGCONF_FORMAT``,
``LOGCONF_CONSOLE_LEVEL``) decides the rest, in every process that inherits it.
"""

from __future__ import annotations

from logconf.config import apply, set_rank, skyrl_config_path, vllm_config_path
from logconf.errors import ConfigError
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
