"""Ray code for test_real_auto.py: a worker actor and a task of a job set up by LOGCONF_AUTO=1 alone."""

from __future__ import annotations

import logging
import os

import ray


@ray.remote(num_cpus=0)
class PolicyWorker:
    """Learns its rank in __init__ and re-does the logging set-up there, as a framework's worker does."""

    def __init__(self, rank: int) -> None:
        logging.getLogger("skyrl.train.worker").info("policy before its rank")
        os.environ["RANK"] = str(rank)
        logging.root.handlers = [logging.NullHandler()]
        logging.getLogger("skyrl.train.worker").info("policy ready")

    def work(self) -> int:
        logging.getLogger("skyrl.train.worker").warning("policy step")
        return os.getpid()


@ray.remote(num_cpus=0)
def rollout() -> int:
    """A task never told a rank: its record is held, then written when the hold time ends."""
    logging.getLogger("skyrl_gym.rollout").info("rollout done")
    return os.getpid()
