"""Trainer code that logs with Loguru, as most SkyRL modules do (imported by hooks.loguru_module)."""

from __future__ import annotations

from loguru import logger


def ready() -> None:
    logger.info("loguru: trainer ready")
    logger.debug("loguru: below LOG_LEVEL, never written")


def step(number: int, reward: float) -> None:
    logger.success(f"loguru: step {number} reward {reward:.3f}")


def finished(steps: int) -> None:
    logger.warning(f"loguru: training finished after {steps} steps")
