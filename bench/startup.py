"""Start-up costs, each measured in a fresh interpreter: ``import logconf``, ``apply()``, a vLLM engine.

``python bench/startup.py import|first-use|first-apply|apply|vllm-dictconfig|hook-pip|site OUT``,
``python bench/startup.py framework|framework-apply OUT MODULE`` and, under the vLLM venv, ``python
bench/startup.py engine OUT MODEL`` write one JSON object to OUT. The clock starts before
anything is imported, so the figures are what a user waits for (``site`` runs under ``python
-S``, so that its clock starts before the start-up files). Whole processes, with and without
``LOGCONF_AUTO``, are measured from outside by ``bench/run.py``.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import os  # noqa: E402 - after the clock starts on purpose
import sys  # noqa: E402

TYPE_CHECKING = False  # not typing's: nothing the measured steps would load is imported before them
if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _write(out: str, result: dict[str, object]) -> None:
    import json

    with open(out, "w", encoding="utf-8") as file:
        json.dump(result, file)


def _heavy_modules() -> list[str]:
    return sorted({name.split(".")[0] for name in sys.modules} & {"ray", "vllm", "torch", "loguru"})


def _measure(out: str, step: Callable[[], object]) -> None:
    """Run ``step`` once and write its wall and CPU seconds (CPU: what a busy machine cannot inflate by waiting)."""
    start, cpu = time.perf_counter(), time.process_time()
    step()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    _write(out, {"seconds": elapsed, "cpu_seconds": cpu, "heavy_modules": _heavy_modules()})


def import_time(out: str) -> None:
    _measure(out, lambda: __import__("logconf"))


def first_use_time(out: str) -> None:
    """``import logconf`` and the first look at ``logconf.apply``, which loads every module ``apply()`` needs."""
    _measure(out, lambda: __import__("logconf").apply)


def first_apply_time(out: str) -> None:
    """``import logconf`` and ``logconf.apply()``: all a trainer's first two lines cost."""
    _measure(out, lambda: __import__("logconf").apply())


def apply_time(out: str) -> None:
    """``logconf.apply()`` itself, its modules loaded before the clock starts (``logging.config`` too, which it imports)."""
    import logging.config  # noqa: F401

    import logconf

    _measure(out, logconf.apply)


def vllm_dictconfig_time(out: str) -> None:
    """What vLLM does with the shipped JSON in each of its processes: json.loads, then dictConfig (which loads logconf)."""
    import json
    import logging.config  # vLLM's own import

    def load() -> None:
        path = os.environ.get("VLLM_LOGGING_CONFIG_PATH") or os.path.join(ROOT, "vllm_logging.json")
        with open(path, encoding="utf-8") as file:
            logging.config.dictConfig(json.loads(file.read()))

    _measure(out, load)


def site_time(out: str) -> None:
    """``site.main()`` in an interpreter started with ``-S``: what start-up runs, ``logconf_auto.pth`` among the rest."""
    _measure(out, lambda: __import__("site").main())


def framework_time(out: str, name: str) -> None:
    """``import <name>``: with ``LOGCONF_AUTO=1``, where a job framework's first import applies logconf."""
    _measure(out, lambda: __import__(name))


def framework_apply_time(out: str, name: str) -> None:
    """``import <name>``, then ``import logconf; logconf.apply()``: a job process that applies logconf itself."""

    def step() -> None:
        __import__(name)
        __import__("logconf").apply()

    _measure(out, step)


def hook_time(out: str) -> None:
    """What ``LOGCONF_AUTO``'s import hook costs ``pip --version`` (no part of the job): its calls, times the cost of one.

    The calls are counted while pip runs in this process; one call's cost (a module name that is no
    framework's) is timed apart, over many calls, since a clock read per call would cost more than the call.
    """
    import contextlib
    import io
    import runpy
    import timeit

    from logconf import auto

    class CountedWatch(auto._FrameworkWatch):
        calls = 0

        def find_spec(self, fullname, path=None, target=None):  # type: ignore[no-untyped-def]
            CountedWatch.calls += 1
            return super().find_spec(fullname, path, target)

    sys.meta_path.insert(0, CountedWatch(auto.frameworks()))
    sys.argv = ["pip", "--version"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        runpy.run_module("pip", run_name="__main__", alter_sys=True)
    watch, number = auto._FrameworkWatch(auto.frameworks()), 100_000
    per_call = min(timeit.repeat(lambda: watch.find_spec("pip._internal.cli", None), number=number, repeat=5)) / number
    empty = min(timeit.repeat(lambda: None, number=number, repeat=5)) / number  # timeit's own call of the lambda
    per_call = max(per_call - empty, 0.0)
    _write(out, {"calls": CountedWatch.calls, "call_seconds": per_call, "hook_cpu_seconds": CountedWatch.calls * per_call})


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
    elif what == "framework":
        framework_time(target, sys.argv[3])
    elif what == "framework-apply":
        framework_apply_time(target, sys.argv[3])
    else:
        kinds = {"import": import_time, "first-use": first_use_time, "first-apply": first_apply_time, "apply": apply_time}
        {**kinds, "vllm-dictconfig": vllm_dictconfig_time, "hook-pip": hook_time, "site": site_time}[what](target)
