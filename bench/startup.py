"""Start-up costs, each measured in a fresh interpreter: ``import logconf``, ``apply()``, a vLLM engine.

``python bench/startup.py import|apply|vllm-dictconfig OUT`` and, under the vLLM venv,
``python bench/startup.py engine OUT MODEL`` write one JSON object to OUT. The clock starts
before anything is imported, so the figures are what a user waits for.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import os  # noqa: E402 - after the clock starts on purpose
import sys  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _write(out: str, result: dict[str, object]) -> None:
    import json

    with open(out, "w", encoding="utf-8") as file:
        json.dump(result, file)


def _heavy_modules() -> list[str]:
    return sorted({name.split(".")[0] for name in sys.modules} & {"ray", "vllm", "torch", "loguru"})


def import_time(out: str) -> None:
    start = time.perf_counter()
    import logconf  # noqa: F401

    elapsed = time.perf_counter() - start
    _write(out, {"seconds": elapsed, "heavy_modules": _heavy_modules()})


def apply_time(out: str) -> None:
    import logconf

    start = time.perf_counter()
    logconf.apply()
    elapsed = time.perf_counter() - start
    _write(out, {"seconds": elapsed, "heavy_modules": _heavy_modules()})


def vllm_dictconfig_time(out: str) -> None:
    """What vLLM does with the shipped JSON in each of its processes: json.loads, then dictConfig."""
    import json
    import logging.config

    import logconf

    start = time.perf_counter()
    with open(logconf.vllm_config_path(), encoding="utf-8") as file:
        logging.config.dictConfig(json.loads(file.read()))
    elapsed = time.perf_counter() - start
    _write(out, {"seconds": elapsed, "heavy_modules": _heavy_modules()})


def engine_time(out: str, model: str) -> None:
    """Import vLLM and build an offline engine (EngineCore and its worker included) on the tiny model."""
    from vllm import LLM

    llm = LLM(model=model, skip_tokenizer_init=True, enforce_eager=True, max_model_len=128, dtype="float32")
    ready = time.perf_counter() - _T0
    _write(out, {"seconds": ready, "config": os.environ.get("VLLM_LOGGING_CONFIG_PATH", "")})
    del llm


if __name__ == "__main__":
    what, target = sys.argv[1], sys.argv[2]
    if what == "engine":
        engine_time(target, sys.argv[3])
    else:
        {"import": import_time, "apply": apply_time, "vllm-dictconfig": vllm_dictconfig_time}[what](target)
