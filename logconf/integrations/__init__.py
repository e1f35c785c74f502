"""Framework integrations: small fixes that run when a framework's own module has been imported.

logconf never imports a framework. :func:`install` (called by ``apply()`` and by the
``LOGCONF_AUTO`` start-up hook) adds an import hook for the few modules named in
:data:`HOOKS`; each hook runs right after its module's code, before anyone can import a name
from it, and a module imported before :func:`install` gets its hook at once. One module per
framework: :mod:`logconf.integrations.skyrl`, :mod:`logconf.integrations.uvicorn`; Loguru's
is :mod:`logconf.loguru_bridge`.

A hook that fails reports one line on stderr and leaves the framework's module as it was: a
logging integration must never break the program's imports.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from logconf.handlers import tell

__all__ = ["HOOKS", "install", "installed"]

Hook = Callable[[ModuleType], None]


def _loguru(module: ModuleType) -> None:
    from logconf import loguru_bridge

    loguru_bridge.install()


def _skyrl(attribute: str) -> Hook:
    def hook(module: ModuleType) -> None:
        from logconf.integrations import skyrl

        getattr(skyrl, attribute)(module)

    return hook


def _uvicorn(module: ModuleType) -> None:
    from logconf.integrations import uvicorn

    uvicorn.patch(module)


HOOKS: dict[str, Hook] = {
    "loguru": _loguru,
    "uvicorn.config": _uvicorn,
    "skyrl.utils.log": _skyrl("restore_skyrl_logger"),
    "skyrl.train.utils.ray_logging": _skyrl("follow_output_redirect"),
    "skyrl.backends.skyrl_train.inference_servers.vllm_server_actor": _skyrl("rank_from_server_idx"),
}

_LOCK = threading.RLock()
_done: set[str] = set()  # modules whose hook has run in this process


def _run(name: str, module: ModuleType) -> None:
    with _LOCK:
        if name in _done:
            return
        _done.add(name)
    try:
        HOOKS[name](module)
    except Exception as exc:
        tell(f"logconf: the {name} integration is off in this process: {type(exc).__name__}: {exc}\n")


class _Finder:
    """Finds nothing itself: it wraps the loader that the other finders return for a hooked module."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        if fullname not in HOOKS or fullname in _done:
            return None
        meta_path = sys.meta_path
        after = meta_path[meta_path.index(self) + 1 :] if self in meta_path else []
        for finder in after:  # where the import would have found it, had this hook not been asked
            find = getattr(finder, "find_spec", None)
            try:
                spec = find(fullname, path, target) if find is not None else None
            except (ImportError, ValueError):
                return None
            if spec is not None:
                break
        else:
            return None
        exec_module = getattr(spec.loader, "exec_module", None)
        if exec_module is None:
            return None

        def exec_then_hook(module: ModuleType) -> None:
            exec_module(module)
            _run(fullname, module)

        spec.loader.exec_module = exec_then_hook  # this module's own loader object
        return spec


_FINDER = _Finder()


def install() -> None:
    """Run the hooks of modules already imported, and hook those imported from now on; idempotent."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    for name in HOOKS:
        module = sys.modules.get(name)
        if module is not None and name not in _done and getattr(module, "__spec__", None) is not None:
            if not getattr(module.__spec__, "_initializing", False):
                _run(name, module)


def installed() -> bool:
    """Tell whether the import hook is in place in this process."""
    return _FINDER in sys.meta_path


def uninstall() -> None:
    """Remove the import hook (tests); hooks already run stay run."""
    while _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
    _done.clear()
