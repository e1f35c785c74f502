"""Runs for the report tests, written by real handlers in spawn children (tests/logwriters.py).

``write_timeline(directory)``: three rank files over four minutes from T0, through the shipped configs:

Each file is written in time order.

- ``vllm_rank_0.log`` (text, EngineActor-0): INFO every 4 s from T0 to T0+240 s, a WARNING at
  T0+50 s whose message holds markup, an ERROR with its traceback at T0+100 s;
- ``vllm_rank_1.jsonl`` (JSON, EngineActor-1): INFO every 4 s up to T0+80 s, then nothing (a
  process gone quiet while the others log); the run's first ERROR at T0+30 s;
- ``skyrl_rank_0.log`` (text, the trainer's apply(), TrainerActor): INFO every 10 s, a WARNING at T0+150 s.
"""

from __future__ import annotations

import calendar
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from logwriters import run, scripted

T0 = calendar.timegm((2026, 11, 26, 9, 0, 0))
MARKUP = 'slow step </script><script>document.title="owned"</script> <b>bold</b>'

def _in_time_order(*records: tuple[int, str, str, str]) -> tuple[tuple[int, str, str, str], ...]:
    return tuple(sorted(records, key=lambda record: record[0]))  # stable: an INFO before the ERROR of its second


RANK0 = _in_time_order(
    *((T0 + s, "vllm.v1.engine.core", "INFO", f"step {s // 4} done") for s in range(0, 241, 4)),
    (T0 + 50, "vllm.v1.engine.core", "WARNING", MARKUP),
    (T0 + 100, "vllm.v1.engine.core", "ERROR", "step 25 failed"),
)
RANK1 = _in_time_order(
    *((T0 + s, "vllm.v1.engine.core", "INFO", f"step {s // 4} done") for s in range(0, 81, 4)),
    (T0 + 30, "vllm.v1.engine.core", "ERROR", "step 7 failed"),
)
TRAINER = _in_time_order(
    *((T0 + s, "skyrl_train.trainer", "INFO", f"trainer step {s // 10}") for s in range(0, 241, 10)),
    (T0 + 150, "skyrl_train.trainer", "WARNING", "reward is flat"),
)


@contextlib.contextmanager
def log_dir(directory: Path) -> Iterator[Path]:
    """Point LOGCONF_DIR at ``directory`` for the children started inside."""
    before = os.environ.get("LOGCONF_DIR")
    os.environ["LOGCONF_DIR"] = str(directory)
    try:
        yield directory
    finally:
        if before is None:
            del os.environ["LOGCONF_DIR"]
        else:
            os.environ["LOGCONF_DIR"] = before


def write_timeline(directory: Path) -> Path:
    """Write the three files above into ``directory``; return it."""
    with log_dir(directory):
        run(scripted, "0", "text", RANK0, name="EngineActor-0")
        run(scripted, "1", "json", RANK1, name="EngineActor-1")
        run(scripted, "0", "text", TRAINER, True, name="TrainerActor")
    return directory
