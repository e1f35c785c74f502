"""The one exception logconf raises for bad configuration, and which config file is being applied."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

__all__ = ["ConfigError", "applying", "current_source"]


class PerThread(threading.local):
    """A value of each thread, set and put back as a ContextVar's is.

    Not a ContextVar: contextvars is one more C extension for every applying process to load, and
    a config is applied in one thread from start to end.
    """

    value: str | None = None

    def set(self, value: str | None) -> str | None:
        """Set the value; return the token that :meth:`reset` takes to put the previous one back."""
        previous, self.value = self.value, value
        return previous

    def reset(self, token: str | None) -> None:
        self.value = token

    def get(self) -> str | None:
        return self.value


_SOURCE = PerThread()


class ConfigError(ValueError):
    """A logging config, template or environment value that logconf refuses.

    The message names where the bad value came from (``file``), the key inside it
    (``key``), the value itself and what would be valid, so one line is enough to fix it.
    """

    def __init__(self, file: str, key: str, value: object, problem: str, expected: str = "") -> None:
        self.file = file
        self.key = key
        self.value = value
        self.problem = problem
        self.expected = expected
        message = f"{file}: {key}: {problem} (got {value!r})"
        if expected:
            message += f"; {expected}"
        super().__init__(message)

    def __reduce__(self):  # stays picklable across process boundaries (Ray, spawn)
        return (type(self), (self.file, self.key, self.value, self.problem, self.expected))


@contextlib.contextmanager
def applying(source: str) -> Iterator[None]:
    """Name ``source`` as the file whose config the factories are building, for error messages."""
    token = _SOURCE.set(source)
    try:
        yield
    finally:
        _SOURCE.reset(token)


def current_source() -> str:
    """Return the config file being applied: logconf's own, else vLLM's, else a placeholder."""
    return _SOURCE.get() or os.environ.get("VLLM_LOGGING_CONFIG_PATH") or "<dictConfig>"
