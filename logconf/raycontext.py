"""What Ray says about this process: a worker, an actor, which actor class. Ray is never imported here.

Only a process that already runs Ray (``ray`` in ``sys.modules``) is asked; everything else is
read from ``sys.argv``, which Ray sets for its worker processes before any user code runs.
"""

import os
import sys

__all__ = ["CONTEXT_FIELDS", "actor_class", "context", "is_ray_daemon", "is_ray_worker", "task_id_reader", "unranked_actor"]

# Ray's own names for them (ray.LoggingConfig's CoreContextFilter), in the order JSON lines write them.
CONTEXT_FIELDS = ("job_id", "node_id", "worker_id", "actor_id", "actor_name")

_WORKER_SCRIPT = os.path.join("ray", "_private", "workers", "default_worker.py")
_PACKAGE_DIRS = ("site-packages", "dist-packages")


def is_ray_worker(argv0: str | None = None) -> bool:
    """Tell whether this is a Ray worker process (one that runs tasks and actors)."""
    path = os.path.normpath(sys.argv[0] if argv0 is None and sys.argv else argv0 or "")
    return path.endswith(os.sep + _WORKER_SCRIPT)


def is_ray_daemon(argv0: str) -> bool:
    """Tell whether ``argv0`` starts one of Ray's own Python processes, or its command line.

    The dashboard, its agent, the log monitor, the runtime-env agent and the autoscaler's
    monitor are scripts inside the installed ``ray`` package; ``ray start`` is the ``ray``
    console script. A worker (``default_worker.py``) is not a daemon: it runs the job's code.
    """
    path = os.path.normpath(argv0)
    if is_ray_worker(path):
        return False
    parts = path.split(os.sep)
    if parts[-1] == "ray":
        return True  # the `ray` command line (ray start, ray stop, ray status)
    return any(part in _PACKAGE_DIRS and parts[i + 1 : i + 2] == ["ray"] for i, part in enumerate(parts[:-1]))


def _runtime_context():
    ray = sys.modules.get("ray")  # only a process already running Ray counts
    if ray is None or not ray.is_initialized():
        return None
    return ray.get_runtime_context()


def context() -> dict[str, str]:
    """Return Ray's ids for this process as ``ray.LoggingConfig`` adds them to records ({} outside Ray).

    ``job_id``, ``node_id`` and ``worker_id`` in any process connected to Ray (the driver too);
    ``actor_id`` and ``actor_name`` (the name given at creation, as Ray has it; an unnamed actor
    has none) in an actor's worker. Values Ray leaves empty are left out, as Ray does.
    """
    try:
        found = _runtime_context()
        if found is None:
            return {}
        fields = {"job_id": found.get_job_id(), "node_id": found.get_node_id(), "worker_id": found.get_worker_id()}
        if _in_worker(found):  # the actor getters warn and return None in a driver
            actor_id = found.get_actor_id()
            if actor_id:
                fields["actor_id"] = actor_id
                fields["actor_name"] = found.get_actor_name()
        return {key: str(value) for key, value in fields.items() if value}
    except Exception:
        return {}  # another Ray version, or a process that is shutting Ray down


def _in_worker(found) -> bool:
    ray = sys.modules["ray"]
    return bool(found.worker.mode == ray.WORKER_MODE)


def task_id_reader():
    """Return a function that gives the hex id of the Ray task this process runs now (None between tasks),
    or None where there is no such thing (outside a Ray worker)."""
    try:
        found = _runtime_context()
        if found is None or not _in_worker(found):
            return None
        current = found.worker.core_worker.get_current_task_id
    except Exception:
        return None

    def task_id() -> str | None:
        try:
            task = current()
            return None if task.is_nil() else task.hex()
        except Exception:
            return None

    return task_id


def actor_class() -> str | None:
    """Return the class name of the Ray actor this process hosts, or None outside an actor."""
    try:
        context = _runtime_context()
        if context is None or not context.get_actor_id():
            return None
        return str(context.current_actor._ray_actor_creation_function_descriptor.class_name) or None
    except Exception:
        return None  # another Ray version, or a process that is shutting Ray down


def unranked_actor() -> bool:
    """Tell whether this process is a Ray actor (or a Ray worker not yet given work) without a rank.

    Such a process may learn its rank in ``__init__`` (``logconf.set_rank``, or a framework
    integration): its records are held until then. A worker that ``LOGCONF_AUTO`` configured at
    interpreter start has not imported Ray yet, so its script name tells.
    """
    if "LOGCONF_RANK" in os.environ or "RANK" in os.environ:
        return False
    try:
        context = _runtime_context()
        if context is not None:
            return bool(context.get_actor_id())
    except Exception:
        return False
    return "ray" not in sys.modules and is_ray_worker()
