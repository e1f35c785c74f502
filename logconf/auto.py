"""``LOGCONF_AUTO=1``: apply logconf in the processes of a training job, and leave every other process alone.

For a trainer whose code is not the user's (SkyRL installed from a wheel), the environment is
the whole set-up: ``export LOGCONF_AUTO=1`` (in the shell for a local cluster, before
``ray start`` on each node, or in a Ray ``runtime_env``). Every Python process that has
logconf installed and inherits the variable runs :func:`start` from the ``logconf_auto.pth``
start-up file that the wheel installs, as coverage.py's ``COVERAGE_PROCESS_START`` does. Which
processes are the job's:

- a Ray worker (Ray starts it as ``.../ray/_private/workers/default_worker.py``): logconf is
  applied at once, so that an actor holds its records from its first line until it knows its rank;
- a process that imports a job framework, :data:`FRAMEWORKS` and the module names that
  ``LOGCONF_AUTO_FRAMEWORKS`` adds (comma-separated): the trainer's driver, vLLM's engine, and
  vLLM's EngineCore and workers, which import vLLM when they start. logconf is applied when the
  framework's first module is about to run, before any of its code: vLLM up to 0.30 configures
  its logging at ``import vllm``. A module only looked for (``importlib.util.find_spec``, as
  libraries probe for vLLM) does not count;
- never one of Ray's own processes (dashboard, its agent, log monitor, runtime-env agent, client
  server, the ``ray`` command line), however it was started: by its script's path, or with
  ``python -m`` (then it is recognised when it imports a framework).

Any other process (pip, a notebook, the user's own scripts, Loguru scripts) keeps the logging,
output and exit code it has without logconf: until a framework is imported, the only trace of
logconf is an import hook that compares each new module's name with a few names. To apply
logconf is to set ``VLLM_LOGGING_CONFIG_PATH`` to this install's ``vllm_logging.json`` (unless it
is set, or ``VLLM_CONFIGURE_LOGGING=0``), so vLLM loads logconf's config here and in its
children, and to call :func:`logconf.apply` with the trainer's config (the shipped YAML, or the
file that ``LOGCONF_AUTO_CONFIG`` names). A failure is reported on stderr in one line and never
stops the program: it runs with the logging it would have had without logconf.

This module runs in every Python process that inherits ``LOGCONF_AUTO``: it imports nothing
but ``os`` and ``sys`` (and :mod:`logconf.raycontext` when ``sys.argv[0]`` names a path with
``ray`` in it) until the process turns out to be the job's.
"""

import os
import sys

TYPE_CHECKING = False  # not typing's: this module runs in every process, and imports only os and sys
if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from types import ModuleType

__all__ = ["ENV", "FRAMEWORKS", "enabled", "frameworks", "start", "wanted"]

ENV = "LOGCONF_AUTO"
CONFIG_ENV = "LOGCONF_AUTO_CONFIG"
FRAMEWORKS_ENV = "LOGCONF_AUTO_FRAMEWORKS"
FRAMEWORKS = frozenset({"vllm", "skyrl", "skyrl_train", "skyrl_gym"})
_OFF = ("", "0", "false", "no", "off")
_started = False
_joined = False


def enabled(environ: "dict[str, str] | os._Environ[str] | None" = None) -> bool:
    """Tell whether ``LOGCONF_AUTO`` asks for logconf in the job's processes."""
    env = os.environ if environ is None else environ
    return env.get(ENV, "0").strip().lower() not in _OFF


def wanted(argv0: str) -> bool:
    """Tell whether a process started as ``argv0`` may be the job's: any but one of Ray's own."""
    from logconf.raycontext import is_ray_daemon

    return not is_ray_daemon(argv0)


def frameworks(environ: "dict[str, str] | os._Environ[str] | None" = None) -> "frozenset[str]":
    """Return the module names whose import makes a process the job's."""
    env = os.environ if environ is None else environ
    extra = (name.strip() for name in env.get(FRAMEWORKS_ENV, "").split(","))
    return FRAMEWORKS.union(name for name in extra if name)


def _argv0() -> str:
    return sys.argv[0] if getattr(sys, "argv", None) else ""


def _join_job() -> None:
    """Apply logconf to this process, which turned out to be the job's; at most once."""
    global _joined
    if _joined:
        return
    _joined = True
    if not wanted(_argv0()):  # a Ray daemon started with `python -m`: its module path is known by now
        return
    try:
        from logconf.config import apply, vllm_config_path

        if os.environ.get("VLLM_CONFIGURE_LOGGING") != "0":
            os.environ.setdefault("VLLM_LOGGING_CONFIG_PATH", vllm_config_path())
        apply(os.environ.get(CONFIG_ENV) or None)
    except Exception as exc:
        from logconf.reports import tell

        tell(f"logconf: {ENV}=1 but logconf was not applied in this process: {exc}\n")


class _FrameworkWatch:
    """An import hook that finds nothing itself: it applies logconf before a job framework's first module runs."""

    def __init__(self, names: "frozenset[str]") -> None:
        self.names = names

    def find_spec(self, fullname: str, path: object = None, target: "ModuleType | None" = None) -> "ModuleSpec | None":
        if fullname not in self.names:
            return None
        meta_path = sys.meta_path
        after = meta_path[meta_path.index(self) + 1 :] if self in meta_path else []
        for finder in after:  # where the import would have found it, had this hook not been asked
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None  # not installed: a probe that fails changes nothing
        exec_module = getattr(spec.loader, "exec_module", None)
        if exec_module is None:
            return None

        def exec_in_the_job(module: "ModuleType") -> None:
            self.leave()
            _join_job()
            exec_module(module)

        spec.loader.exec_module = exec_in_the_job  # the loader object this find made for this module alone
        return spec

    def leave(self) -> None:
        """Stop watching imports."""
        while self in sys.meta_path:
            sys.meta_path.remove(self)


def start() -> None:
    """Apply logconf now in a Ray worker, or when a job framework is imported; called by ``logconf_auto.pth``."""
    global _started
    if _started or not enabled():
        return
    _started = True
    argv0 = _argv0()
    if "ray" in argv0:  # only a path in Ray's package is a worker or a daemon: others skip loading raycontext
        from logconf.raycontext import is_ray_daemon, is_ray_worker

        if is_ray_worker(argv0):
            _join_job()  # an actor holds its records from its first line, before its rank is known
            return
        if is_ray_daemon(argv0):
            return
    sys.meta_path.insert(0, _FrameworkWatch(frameworks()))
