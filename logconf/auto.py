"""``LOGCONF_AUTO=1``: apply logconf at interpreter start, in every Python process of a job.

For a trainer whose code is not the user's (SkyRL installed from a wheel), the environment is
the whole set-up: ``export LOGCONF_AUTO=1`` (in the shell for a local cluster, before
``ray start`` on each node, or in a Ray ``runtime_env``), and every Python process that has
logconf installed and inherits it runs :func:`start` from the ``logconf_auto.pth`` start-up
file that the wheel installs, as coverage.py's ``COVERAGE_PROCESS_START`` does:

- ``VLLM_LOGGING_CONFIG_PATH`` is set to this install's ``vllm_logging.json`` if it is unset,
  so vLLM loads logconf's config in this process and in every child it starts;
- :func:`logconf.apply` applies the trainer's config (the shipped YAML, or the file that
  ``LOGCONF_AUTO_CONFIG`` names), which also installs the framework integrations.

Ray's own Python processes (dashboard, its agent, log monitor, runtime-env agent, ``ray``
command line) are left as they were. Without ``LOGCONF_AUTO`` the start-up file does nothing
but read one environment variable. A failure is reported on stderr in one line and never stops
the interpreter: the program runs with the logging it would have had without logconf.
"""

from __future__ import annotations

import os
import sys

__all__ = ["ENV", "enabled", "start", "wanted"]

ENV = "LOGCONF_AUTO"
CONFIG_ENV = "LOGCONF_AUTO_CONFIG"
_OFF = ("", "0", "false", "no", "off")
_started = False


def enabled(environ: dict[str, str] | os._Environ[str] | None = None) -> bool:
    """Tell whether ``LOGCONF_AUTO`` asks for logconf in every process."""
    env = os.environ if environ is None else environ
    return env.get(ENV, "0").strip().lower() not in _OFF


def wanted(argv0: str) -> bool:
    """Tell whether a process started as ``argv0`` is one that logconf configures."""
    from logconf.raycontext import is_ray_daemon

    return not is_ray_daemon(argv0)


def start() -> None:
    """Apply logconf to this process, once; called by ``logconf_auto.pth`` when LOGCONF_AUTO is on."""
    global _started
    if _started or not enabled():
        return
    _started = True
    if not wanted(sys.argv[0] if sys.argv else ""):
        return
    try:
        from logconf.config import apply, vllm_config_path

        if os.environ.get("VLLM_CONFIGURE_LOGGING") != "0":
            os.environ.setdefault("VLLM_LOGGING_CONFIG_PATH", vllm_config_path())
        apply(os.environ.get(CONFIG_ENV) or None)
    except Exception as exc:
        from logconf.handlers import tell

        tell(f"logconf: {ENV}=1 but logconf was not applied in this process: {exc}\n")
