"""`logconf summary --top N`: each file's most repeated messages, compared with numbers and ids masked, in bounded memory."""

from __future__ import annotations

import json
import subprocess

import pytest
from logwriters import REPO, logconf_cli, run, scripted
from report_runs import T0

from logconf.repeats import RepeatCounter, mask


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("step 12 took 3.1 s", "step <n> took <n>.<n> s"),
        ("request 0b7c3a1e-9f2d-4c6b-8a5e-1d2f3a4b5c6d done", "request <id> done"),
        ("tensor at 0x7f3a9c2b1e00 freed", "tensor at <addr> freed"),
        ("task c2668a65bda616c1ffffffffffffffffffffffff01000000 started", "task <id> started"),
        ("Added request cmpl-42-0 with 128 tokens", "Added request cmpl-<n>-<n> with <n> tokens"),
        ("no numbers here", "no numbers here"),
        ("deadbeefcafe is a word of hex letters only", "deadbeefcafe is a word of hex letters only"),
    ],
)
def test_mask_replaces_numbers_ids_and_addresses(text, masked):
    assert mask(text) == masked


def test_counts_first_and_last_times_per_logger_and_masked_message():
    counter = RepeatCounter()
    counter.add("step 1 done", "vllm.a", "INFO", "2026-11-26T09:00:02.000Z")
    counter.add("step 2 done\nTraceback ...", "vllm.a", "INFO", "2026-11-26T09:00:01.000Z")  # written late: still first
    counter.add("step 3 done", "vllm.a", "INFO", "2026-11-26T09:00:03.000Z")
    counter.add("step 4 done", "vllm.b", "WARNING", "2026-11-26T09:00:04.000Z")  # another logger: another message
    top = [r.as_dict() for r in counter.top(5)]
    assert top == [
        {
            "logger": "vllm.a",
            "level": "INFO",
            "message": "step <n> done",
            "example": "step 1 done",
            "count": 3,
            "first": "2026-11-26T09:00:01.000Z",
            "last": "2026-11-26T09:00:03.000Z",
        },
        {
            "logger": "vllm.b",
            "level": "WARNING",
            "message": "step <n> done",
            "example": "step 4 done",
            "count": 1,
            "first": "2026-11-26T09:00:04.000Z",
            "last": "2026-11-26T09:00:04.000Z",
        },
    ]
    assert counter.exact


def test_memory_stays_bounded_and_the_noise_is_still_counted_exactly():
    """8 entries at most: one-off messages are dropped to make room, the repeated one keeps its exact count,
    and the counter says by how much any count may be short."""
    counter = RepeatCounter(limit=8)
    for i in range(200):
        counter.add("kv cache usage 42%", "vllm.metrics", "INFO", f"2026-11-26T09:{i // 60:02d}:{i % 60:02d}.000Z")
        counter.add(f"one-off message {chr(65 + i % 26)}{chr(65 + i // 26)}", "vllm.misc", "INFO", "2026-11-26T09:00:00.000Z")
        assert len(counter.seen) <= 8
    (noise,) = counter.top(1)
    assert (noise.message, noise.count, noise.first, noise.last) == (
        "kv cache usage <n>%",
        200,
        "2026-11-26T09:00:00.000Z",
        "2026-11-26T09:03:19.000Z",
    )
    assert not counter.exact and counter.short_by >= 1
    assert all(r.count <= 1 for r in counter.seen.values() if r.logger == "vllm.misc")


def test_summary_top_lists_each_files_most_repeated_messages_in_json_and_in_the_table(logdir):
    script = (
        *((T0 + s, "vllm.v1.metrics", "INFO", f"kv cache usage {s % 7}%") for s in range(30)),
        *((T0 + s, "vllm.v1.engine", "INFO", f"Added request cmpl-{s}") for s in range(10, 20)),
        (T0 + 40, "vllm.v1.engine", "WARNING", "engine slow"),
    )
    run(scripted, "0", "text", script, name="EngineActor-0")
    done = subprocess.run(logconf_cli("summary", str(logdir), "--json", "--top", "2"), cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["files"]
    assert (row["top_exact"], row["top_short_by"]) == (True, 0)
    assert [(t["logger"], t["message"], t["count"], t["first"], t["last"]) for t in row["top"]] == [
        ("vllm.v1.metrics", "kv cache usage <n>%", 30, "2026-11-26T09:00:00.000Z", "2026-11-26T09:00:29.000Z"),
        ("vllm.v1.engine", "Added request cmpl-<n>", 10, "2026-11-26T09:00:10.000Z", "2026-11-26T09:00:19.000Z"),
    ]
    table = subprocess.run(logconf_cli("summary", str(logdir), "--top", "1"), cwd=REPO, capture_output=True, text=True)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[lines.index("| file | count | first | last | level | logger | message |") + 2] == (
        "| vllm_rank_0.log | 30 | 2026-11-26T09:00:00.000Z | 2026-11-26T09:00:29.000Z | INFO | vllm.v1.metrics "
        "| kv cache usage <n>% |"
    )
    plain = subprocess.run(logconf_cli("summary", str(logdir), "--json"), cwd=REPO, capture_output=True, text=True)
    assert "top" not in json.loads(plain.stdout)["files"][0]  # without --top, the rows are as before


def test_a_negative_top_is_one_line(logdir):
    run(scripted, "0", "text", ((T0, "vllm.x", "INFO", "x"),), name="EngineActor-0")
    done = subprocess.run(logconf_cli("summary", str(logdir), "--top", "-1"), cwd=REPO, capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "logconf summary: --top: -1 is not a count; give 1 or more (0, the default, lists none)\n"
