"""SkyRL (``skyrl`` 0.4; ``skyrl_train`` 0.3 needs only the generic parts): the split holds inside SkyRL's processes.

What SkyRL does, and what logconf does about it:

- ``configure_ray_worker_logging()`` (trainer and every worker actor, after setting ``RANK``):
  ``logger.remove()``, a coloured Loguru stderr sink, ``logging.root.handlers =
  [an intercept into Loguru]``. Handled for any framework by :mod:`logconf.loguru_bridge` (the
  bridge survives ``remove()``, console sinks stay muted, intercepted stdlib records are not
  forwarded twice) and :mod:`logconf.guard` (root keeps logconf's console; the rank is re-read,
  so a worker writes to ``skyrl_rank_<RANK>``).
- ``skyrl.utils.log`` at import: logger ``skyrl`` to DEBUG, ``propagate = False`` and a
  RichHandler. :func:`restore_skyrl_logger` gives the logger back what ``apply()`` set.
- ``VLLMServerActor(vllm_cli_args, start_port, server_idx, ...)``: an engine actor with no user
  code. :func:`rank_from_server_idx` makes ``server_idx`` its rank before ``__init__`` runs, so
  its records, its EngineCore's and its uvicorn's go to ``vllm_rank_<server_idx>``.
- ``redirect_actor_output_to_file()``: ``dup2`` of fds 1 and 2 onto SkyRL's infra log.
  :func:`follow_output_redirect` lets stdio capture (``LOGCONF_CAPTURE_STDIO=1``) tee the new
  destination, so the infra log and the rank's ``.stdio.log`` both keep receiving bytes.
"""

from __future__ import annotations

import functools
import inspect
from types import ModuleType
from typing import Any

from logconf import guard
from logconf.handlers import tell

__all__ = ["follow_output_redirect", "rank_from_server_idx", "restore_skyrl_logger"]

_WRAPPED = "__logconf_wrapped__"


def restore_skyrl_logger(module: ModuleType) -> None:
    """Undo what ``skyrl.utils.log`` did to logger ``skyrl`` at import, where ``apply()`` configured it."""
    guard.restore_logger("skyrl")


def follow_output_redirect(module: ModuleType) -> None:
    """After SkyRL moves fds 1 and 2 to its infra log, tee the infra log instead of the old console."""
    original = module.redirect_actor_output_to_file
    if getattr(original, _WRAPPED, False):
        return

    @functools.wraps(original)
    def redirect_actor_output_to_file(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        from logconf import capture

        capture.follow_redirect()
        return result

    setattr(redirect_actor_output_to_file, _WRAPPED, True)
    setattr(module, "redirect_actor_output_to_file", redirect_actor_output_to_file)  # noqa: B010


def rank_from_server_idx(module: ModuleType) -> None:
    """Make an engine actor's ``server_idx`` its rank, before its ``__init__`` starts anything."""
    cls = module.VLLMServerActor
    original = cls.__init__
    if getattr(original, _WRAPPED, False):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            from logconf.ranks import set_rank

            set_rank(bound.arguments["server_idx"])
        except Exception as exc:  # the engine must start even if its rank cannot be set
            tell(f"logconf: {cls.__name__}: cannot take server_idx as the rank: {exc}\n")
        original(self, *args, **kwargs)

    setattr(__init__, _WRAPPED, True)
    cls.__init__ = __init__
