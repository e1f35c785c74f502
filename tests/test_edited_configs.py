"""A user's edit of a shipped config, whatever it breaks, gets one clear ConfigError or works.

The edits are generated from the shipped files (tests/edited_configs.py): every key removed,
every key misspelt, every value replaced by one of another type or by an unknown template
variable; about 950 in all. They run in two processes of their own (an accepted edit may start
a real stdio tee, which must not sit on pytest's stdout), each writing the edits that went wrong.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import edited_configs
from logwriters import REPO

PARTS = 2  # two processes: the edits take about 3 s of CPU in all


def test_every_generated_edit_of_a_shipped_config_is_refused_clearly_or_works(tmp_path):
    """``logconf check`` and ``apply()`` agree on each edit; a refusal names file, key, value and what is valid
    (a misspelt key: the name it stood for), and leaves the configuration applied before writing where it did;
    an accepted edit writes every logger's records to the rank files it names. Nothing else is ever raised."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO)])}
    blocked = tmp_path / "no-cache"
    blocked.write_text("")  # XDG_CACHE_HOME under a file: no YAML cache writes, which the edits do not test
    env["XDG_CACHE_HOME"] = str(blocked / "cache")
    workers = []
    for part in range(PARTS):
        work = tmp_path / f"part{part}"
        work.mkdir()
        with open(work / "output", "w") as output:
            worker = subprocess.Popen(
                [sys.executable, str(REPO / "tests" / "edited_configs.py"), str(work), str(part), str(PARTS)],
                env=env,
                cwd=work,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        workers.append((work, worker))
    counts = {"cases": 0, "refused": 0, "accepted": 0, "crashed": 0, "bad": 0}
    bad = []
    for work, worker in workers:
        worker.wait(timeout=300)
        output = (work / "output").read_text(errors="replace")
        assert worker.returncode == 0, f"the case runner failed: {output[-3000:]}"
        for name, count in json.loads((work / "counts.json").read_text()).items():
            counts[name] += count
        bad += [json.loads(line) for line in (work / "bad.jsonl").read_text().splitlines()]
    listing = "\n".join(
        f"{b['case']['shipped']} {b['case']['op']} {'.'.join(map(str, b['case']['path']))} {b['case']['value']}: "
        f"{b['outcome']}: {b['problem']}"
        for b in bad
    )
    assert not bad, f"{len(bad)} of {counts['cases']} edits went wrong:\n{listing}"
    assert counts["cases"] == len(edited_configs.cases()) > 900
    assert counts["refused"] > 700 and counts["accepted"] > 100, counts  # both outcomes are really judged
    print(f"\nFIGURES edited configs: {counts}")
