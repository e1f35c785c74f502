"""Test-only observer, NOT part of logconf: what a process's logging looks like, seen from inside it.

tests/real/test_real_auto.py puts this directory on PYTHONPATH for a whole local Ray cluster, so
every Python process of it (driver, Ray's daemons, workers) runs this file at start, after the
``.pth`` files. If ``OBSERVE_LOGGING_DIR`` is set, a daemon thread writes, every half second once
``<dir>/go`` exists, ``<dir>/<pid>.json``: the process's ``sys.argv``, how long it has run, the
logconf modules it has loaded, whether ``VLLM_LOGGING_CONFIG_PATH`` is set, and every handler on
any logger with its class. It reads that state and changes none of it; it never imports logging.
"""

import os
import sys
import threading
import time

_DIR = os.environ.get("OBSERVE_LOGGING_DIR")
_STARTED = time.monotonic()


def _handlers() -> dict:
    logging = sys.modules.get("logging")  # imported by the process itself, or not at all
    if logging is None:
        return {}
    found = {"<root>": logging.root.handlers}
    found.update((name, getattr(lg, "handlers", [])) for name, lg in list(logging.root.manager.loggerDict.items()))
    return {name: [f"{type(h).__module__}.{type(h).__qualname__}" for h in hs] for name, hs in found.items() if hs}


def _report() -> None:
    import json

    state = {
        "pid": os.getpid(),
        "argv": list(sys.argv),
        "age_s": round(time.monotonic() - _STARTED, 1),
        "logconf_modules": sorted(m for m in list(sys.modules) if m == "logconf" or m.startswith("logconf.")),
        "vllm_config_path": os.environ.get("VLLM_LOGGING_CONFIG_PATH"),
        "handlers": _handlers(),
    }
    path = os.path.join(_DIR, f"{os.getpid()}.json")
    with open(path + ".tmp", "w") as file:
        json.dump(state, file)
    os.replace(path + ".tmp", path)


def _watch() -> None:
    while True:
        time.sleep(0.5)
        if os.path.exists(os.path.join(_DIR, "go")):
            try:
                _report()
            except Exception:  # a process shutting down; the last report stands
                pass


if _DIR:
    threading.Thread(target=_watch, name="logconf-test-observer", daemon=True).start()
