"""Ray actors of the failure tests (``test_real_failures.py``); Ray workers import them from here."""

from __future__ import annotations

import ctypes
import logging
import os
import socket
import threading

import ray


@ray.remote(num_cpus=0)
class TrainerWorker:
    """A trainer rank that applies logconf, then waits where it is told: as its peers, in a C call, holding the GIL."""

    def __init__(self) -> None:
        import logconf

        logconf.apply()
        logging.getLogger("skyrl.train.worker").info("worker ready")

    def pid(self) -> int:
        return os.getpid()

    def wait_for_peers(self) -> None:
        threading.Event().wait()

    def recv_weights(self) -> None:
        left, _right = socket.socketpair()
        left.recv(1)

    def hold_gil(self) -> None:
        libc = ctypes.PyDLL(None)  # a PyDLL call keeps the GIL for its whole length
        while True:
            libc.sleep(3600)


def descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid`` (EngineCore, its workers), by pid, with its command name."""
    children: dict[int, list[int]] = {}
    names = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as file:
                raw = file.read()
        except OSError:
            continue
        parent = int(raw.rsplit(b")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
        names[int(entry)] = raw[raw.index(b"(") + 1 : raw.rindex(b")")].decode()
    found: dict[int, str] = {}
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found[child] = names.get(child, "?")
        todo.extend(children.get(child, []))
    return found


def actor_family(actor) -> dict:
    """The actor's pid and its descendants', asked inside the actor's own process."""
    return {"actor": os.getpid(), "descendants": descendants(os.getpid())}
