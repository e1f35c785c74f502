"""Code that the capture tests run in child processes (spawn children import it from here)."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import sys

from helpers import load_like_vllm


def c_write(fd: int, text: str) -> None:
    """Write through libc, below Python's sys.stdout, as torch's C++ warnings do."""
    data = text.encode()
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.write(fd, data, len(data)) == len(data)


def engine_core(tag: str, with_worker: bool) -> None:
    """Act as vLLM's spawned EngineCore: apply the JSON again, write raw lines, maybe start a worker."""
    load_like_vllm()
    c_write(2, f"[W {tag} core C-level]\n")
    print(f"{tag} core print", flush=True)
    if with_worker:
        child = multiprocessing.get_context("spawn").Process(target=worker, args=(tag,), name="VllmWorker-0")
        child.start()
        child.join()
        assert child.exitcode == 0


def worker(tag: str) -> None:
    load_like_vllm()
    c_write(1, f"{tag} worker C-level\n")


def fork_child(tag: str) -> None:
    """A fork child that does not apply anything: the tee it inherited must still copy its lines."""
    c_write(2, f"[W {tag} fork C-level]\n")
    sys.stderr.write(f"{tag} fork python\n")
    sys.stderr.flush()


def run_family(tag: str) -> None:
    """An engine actor: apply the JSON, then a spawned EngineCore with a worker, and a fork child."""
    load_like_vllm()
    c_write(1, f"{tag} actor C-level\n")
    spawned = multiprocessing.get_context("spawn").Process(target=engine_core, args=(tag, True), name="EngineCore")
    spawned.start()
    spawned.join()
    forked = multiprocessing.get_context("fork").Process(target=fork_child, args=(tag,), name="EngineCore_DP0")
    forked.start()
    forked.join()
    assert (spawned.exitcode, forked.exitcode) == (0, 0)
    os.write(1, f"{tag} actor done\n".encode())


def pose_as_unranked_ray_actor() -> None:
    """Make logconf see a Ray actor without a rank: a stand-in ``ray`` module with an actor id."""
    import types

    context = types.SimpleNamespace(get_actor_id=lambda: "f" * 32)
    ray = types.ModuleType("ray")
    ray.is_initialized = lambda: True  # type: ignore[attr-defined]
    ray.get_runtime_context = lambda: context  # type: ignore[attr-defined]
    sys.modules["ray"] = ray
