"""`logconf merge`: one timeline from real rank files, stable on ties, tracebacks whole, filters exact."""

from __future__ import annotations

import calendar
import json
import multiprocessing
import re
import subprocess

import pytest
from logwriters import REPO, at_fixed_time, engine_rank, logconf_cli, loguru_trainer, run

from logconf.logfiles import time_key
from logconf.merge import EntryFilter, merge_files, render

T0 = calendar.timegm((2026, 11, 26, 9, 0, 0))
HEAD = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (\S+) ([A-Z]+) rank=(\S+) (\S+)\[(\d+)\] (\S+): (.*)$")
TRACEBACK = [
    "Traceback (most recent call last):",
    "  File *",
    '    raise RuntimeError(f"step {step} blew up")',
    "RuntimeError: step 40 blew up",
]


def _merge(directory, *extra: str) -> list[str]:
    result = subprocess.run(logconf_cli("merge", str(directory), *extra), cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def _messages(lines: list[str]) -> list[str]:
    return [m.group(7) for m in map(HEAD.match, lines) if m]


def _two_ranks_at_once(infos: int = 5) -> None:
    """Rank 0 (text) and rank 1 (JSON) log at the same time, each from an actor and its EngineCore child."""
    ctx = multiprocessing.get_context("spawn")
    ranks = [
        ctx.Process(target=engine_rank, args=(r, f, infos), name=f"EngineActor-{r}") for r, f in (("0", "text"), ("1", "json"))
    ]
    for process in ranks:
        process.start()
    for process in ranks:
        process.join(180)
        assert process.exitcode == 0


def test_equal_timestamps_merge_by_natural_file_order_then_position(logdir):
    """Records of ranks 10, 2, 1, 0 (text and JSON) with one timestamp: rank 0, 1, 2, 10, each in file order."""
    for rank, fmt in (("10", "json"), ("2", "text"), ("1", "json"), ("0", "text")):
        run(at_fixed_time, rank, fmt, T0, 3, name=f"EngineActor-{rank}")
    lines = _merge(logdir)
    assert _messages(lines) == [f"tie rank={r} i={i}" for r in ("0", "1", "2", "10") for i in range(3)]
    assert [HEAD.match(line).group(1) for line in lines[::3]] == [
        "vllm_rank_0.log",
        "vllm_rank_1.jsonl",
        "vllm_rank_2.log",
        "vllm_rank_10.jsonl",
    ]
    assert all(line.startswith("2026-11-26T09:00:00.000Z ") for line in lines)
    assert _merge(logdir) == lines  # the same order on every run


def test_merge_orders_by_time_across_files_before_file_order(logdir):
    """A later file name with an earlier time comes first; text and JSON times compare as one clock."""
    run(at_fixed_time, "0", "text", T0 + 2, 1, name="EngineActor-0")
    run(at_fixed_time, "1", "json", T0 + 1, 1, name="EngineActor-1")
    run(at_fixed_time, "2", "text", T0, 1, name="EngineActor-2")
    assert _messages(_merge(logdir)) == ["tie rank=2 i=0", "tie rank=1 i=0", "tie rank=0 i=0"]


def test_tracebacks_stay_whole_when_ranks_log_at_once(logdir):
    """Each ERROR head is followed by its 4 traceback lines, text and JSON alike, and nothing else splits them."""
    _two_ranks_at_once()
    lines = _merge(logdir)
    heads = [i for i, line in enumerate(lines) if HEAD.match(line)]
    assert len(heads) == 24  # 2 ranks x (5 actor + 5 INFO + WARNING + ERROR from EngineCore_DP0)
    errors = [i for i in heads if HEAD.match(lines[i]).group(2) == "ERROR"]
    assert {HEAD.match(lines[i]).group(1) for i in errors} == {"vllm_rank_0.log", "vllm_rank_1.jsonl"}
    for i in errors:
        block = lines[i + 1 : i + 5]
        assert block[0] == TRACEBACK[0] and block[1].startswith("  File ") and block[2:] == TRACEBACK[2:]
        assert i + 5 == len(lines) or HEAD.match(lines[i + 5])
    assert len(lines) == 24 + 2 * len(TRACEBACK)
    tags = {HEAD.match(lines[i]).group(1, 3, 4) for i in heads}
    assert tags == {
        ("vllm_rank_0.log", "0", "EngineActor-0"),
        ("vllm_rank_0.log", "0", "EngineCore_DP0"),
        ("vllm_rank_1.jsonl", "1", "EngineActor-1"),
        ("vllm_rank_1.jsonl", "1", "EngineCore_DP0"),
    }
    times = [lines[i][:24] for i in heads]
    assert times == sorted(times)


def test_level_logger_and_grep_filters_keep_exactly_the_matching_records(logdir):
    """--level WARNING, --logger prefix and --grep (which sees traceback lines) keep exact sets."""
    _two_ranks_at_once(3)
    warnings = _merge(logdir, "--level", "WARNING")
    assert sorted(_messages(warnings)) == ["core rank=0 slow step", "core rank=1 slow step", "step 40 failed", "step 40 failed"]
    assert len(warnings) == 4 + 2 * len(TRACEBACK)
    actors = _messages(_merge(logdir, "--logger", "vllm.entrypoints"))
    assert sorted(actors) == sorted(f"actor rank={r} i={i}" for r in "01" for i in range(3))
    assert _messages(_merge(logdir, "--logger", "vllm.entry")) == []  # a prefix is whole logger-name parts
    grepped = _merge(logdir, "--grep", "blew up")
    assert _messages(grepped) == ["step 40 failed", "step 40 failed"]
    assert _messages(_merge(logdir, "--grep", "rank=1 i=2", "--logger", "vllm.v1")) == ["core rank=1 i=2"]


def _levels_by_file(lines: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in lines:
        document = json.loads(line) if line.startswith("{") else None
        if document is not None:
            found.setdefault(document["file"], []).append(f"{document['level']} {document['message']}")
        elif (match := HEAD_ANY_LEVEL.match(line)) is not None:
            found.setdefault(match.group(1), []).append(f"{match.group(2)} {match.group(3)}")
    return found


HEAD_ANY_LEVEL = re.compile(r"^\S+Z (\S+) ([A-Z]+|Level \d+) rank=\S+ \S+\[\d+\] \S+: (.*)$")
LOGURU_RUN = ["TRACE trace", "DEBUG debug", "INFO info", "SUCCESS success", "WARNING warning", "Level 15 level fifteen"]


LEVEL_CASES = {
    "INFO": ["INFO info", "SUCCESS success", "WARNING warning"],
    "SUCCESS": ["SUCCESS success", "WARNING warning"],
    "success": ["SUCCESS success", "WARNING warning"],
    "25": ["SUCCESS success", "WARNING warning"],
    "15": ["INFO info", "SUCCESS success", "WARNING warning", "Level 15 level fifteen"],
    "Level 15": ["INFO info", "SUCCESS success", "WARNING warning", "Level 15 level fifteen"],
    "debug": ["DEBUG debug", "INFO info", "SUCCESS success", "WARNING warning", "Level 15 level fifteen"],
    "TRACE": LOGURU_RUN,
}


def test_level_filter_ranks_loguru_and_unnamed_levels_by_number(logdir):
    """Loguru's SUCCESS (25) and TRACE (5) and stdlib's "Level 15" filter by number, text and JSON, in both outputs."""
    run(loguru_trainer, "0", "text", name="MainProcess")
    run(loguru_trainer, "1", "json", name="MainProcess")
    assert _levels_by_file(_merge(logdir)) == {"skyrl_rank_0.log": LOGURU_RUN, "skyrl_rank_1.jsonl": LOGURU_RUN}
    for level, kept in LEVEL_CASES.items():
        expected = {"skyrl_rank_0.log": kept, "skyrl_rank_1.jsonl": kept}
        assert _levels_by_file(_merge(logdir, "--level", level)) == expected, level
        assert _levels_by_file(_merge(logdir, "--level", level, "--json")) == expected, level


def test_a_level_name_no_reader_knows_passes_any_level_filter(tmp_path):
    """NOTICE was registered only in the process that wrote it: --level WARNING keeps it rather than hide it."""
    lines = [
        "2026-11-26T09:00:00.000Z INFO rank=0 MainProcess[7] app: plain",
        "2026-11-26T09:00:01.000Z NOTICE rank=0 MainProcess[7] app: custom",
        "2026-11-26T09:00:02.000Z WARNING rank=0 MainProcess[7] app: loud",
    ]
    (tmp_path / "skyrl_rank_0.log").write_text("\n".join(lines) + "\n")
    keep = EntryFilter(level="WARNING")
    assert [e.record["message"] for e in merge_files(str(tmp_path)) if keep(e)] == ["custom", "loud"]


def test_since_and_until_keep_the_records_inside_the_window(logdir):
    """--since and --until are inclusive, accept an offset, and apply to text and JSON files."""
    run(at_fixed_time, "0", "text", T0, 2, name="EngineActor-0")
    run(at_fixed_time, "1", "json", T0 + 10, 2, name="EngineActor-1")
    run(at_fixed_time, "2", "text", T0 + 20, 2, name="EngineActor-2")
    window = _merge(logdir, "--since", "2026-11-26T09:00:10Z", "--until", "2026-11-26T11:00:19+02:00")
    assert _messages(window) == ["tie rank=1 i=0", "tie rank=1 i=1"]
    assert _messages(_merge(logdir, "--since", "2026-11-26T09:00:10.001")) == ["tie rank=2 i=0", "tie rank=2 i=1"]


BOUND_CASES = [
    (["--until", "2026-11-26T09:00:10Z"], ["tie rank=2 i=0", "tie rank=0 i=0", "tie rank=1 i=0"]),
    (["--until", "2026-11-26T11:00:10+02:00"], ["tie rank=2 i=0", "tie rank=0 i=0", "tie rank=1 i=0"]),
    (["--until", "2026-11-26T09:00:10.000999Z"], ["tie rank=2 i=0", "tie rank=0 i=0", "tie rank=1 i=0"]),
    (["--until", "2026-11-26T09:00:09.999Z"], ["tie rank=2 i=0"]),
    (["--since", "2026-11-26T09:00:10Z"], ["tie rank=0 i=0", "tie rank=1 i=0", "tie rank=3 i=0"]),
    (["--since", "2026-11-26T09:00:09.999001Z"], ["tie rank=0 i=0", "tie rank=1 i=0", "tie rank=3 i=0"]),
    (["--since", "2026-11-26T09:00:10.000001Z"], ["tie rank=3 i=0"]),
    (["--since", "2026-11-26T09:00:10Z", "--until", "2026-11-26T09:00:10Z"], ["tie rank=0 i=0", "tie rank=1 i=0"]),
]


@pytest.mark.parametrize(("options", "kept"), BOUND_CASES, ids=[" ".join(options) for options, _ in BOUND_CASES])
def test_since_and_until_keep_a_record_exactly_at_the_bound_and_none_past_it(bound_run, options, kept):
    """Both bounds are inclusive, as --help says, to the millisecond; a finer bound never lets in a record past it."""
    assert _messages(_merge(bound_run, *options)) == kept
    assert [json.loads(line)["message"] for line in _merge(bound_run, "--json", *options)] == kept


@pytest.fixture(scope="module")
def bound_run(tmp_path_factory) -> str:
    """Records at 09:00:09 (rank 2), 09:00:10 (rank 0 text, rank 1 JSON) and 09:00:11 (rank 3)."""
    directory = tmp_path_factory.mktemp("bounds")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOGCONF_DIR", str(directory))
        for rank, fmt, second in (("0", "text", 10), ("1", "json", 10), ("2", "text", 9), ("3", "json", 11)):
            run(at_fixed_time, rank, fmt, T0 + second, 1, name=f"EngineActor-{rank}")
    return str(directory)


def test_merge_help_says_both_time_bounds_are_inclusive():
    """The behaviour pinned above is the one --help documents."""
    result = subprocess.run(logconf_cli("merge", "--help"), cwd=REPO, capture_output=True, text=True, timeout=60)
    text = " ".join(result.stdout.split())
    assert "--since TIME keep records at or after this ISO 8601 time (inclusive; UTC if no offset)" in text
    assert "--until TIME keep records at or before this ISO 8601 time (inclusive; UTC if no offset)" in text


def test_json_output_tags_each_record_with_its_file_and_keeps_the_traceback(logdir):
    """--json prints one object per record with file, rank, process, and a text traceback as continuation."""
    _two_ranks_at_once(1)
    documents = [json.loads(line) for line in _merge(logdir, "--json", "--level", "ERROR")]
    assert [(d["file"], d["rank"], d["process_name"], d["message"]) for d in sorted(documents, key=lambda d: d["file"])] == [
        ("vllm_rank_0.log", "0", "EngineCore_DP0", "step 40 failed"),
        ("vllm_rank_1.jsonl", "1", "EngineCore_DP0", "step 40 failed"),
    ]
    text, js = sorted(documents, key=lambda d: d["file"])
    assert text["continuation"][-1] == js["exc_info"].splitlines()[-1] == "RuntimeError: step 40 blew up"


def test_torn_and_unparsable_lines_are_shown_in_place_and_dropped_by_level_filters(logdir):
    """A stray line and a torn last line appear tagged where they sit; --level drops them."""
    run(at_fixed_time, "0", "json", T0, 2, name="EngineActor-0")
    with open(logdir / "vllm_rank_0.jsonl", "a", encoding="utf-8") as file:
        file.write("stray print\n")
        file.write('{"time": "2026-11-26T09:0')
    entries = list(merge_files(str(logdir)))
    assert [e.kind for e in entries] == ["record", "record", "unparsable", "torn"]
    assert [render(e) for e in entries[2:]] == [
        "2026-11-26T09:00:00.000Z vllm_rank_0.jsonl UNPARSABLE: stray print",
        '2026-11-26T09:00:00.000Z vllm_rank_0.jsonl TORN: {"time": "2026-11-26T09:0',
    ]
    assert [e.kind for e in entries if EntryFilter(level="DEBUG")(e)] == ["record", "record"]


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("2026-11-26T08:47:47.123Z", "2026-11-26T08:47:47.123Z"),
        ("2026-11-26T10:47:47.123+02:00", "2026-11-26T08:47:47.123Z"),
        ("2026-11-26 08:47:47,123", "2026-11-26T08:47:47.123Z"),
        ("2026-11-26T08:47:47", "2026-11-26T08:47:47.000Z"),
        ("2026-11-26T08:47:47.123999Z", "2026-11-26T08:47:47.123Z"),  # cut down to its millisecond, never rounded
        ("2026-11-26T08:47:47.999999+00:00", "2026-11-26T08:47:47.999Z"),
        ("yesterday", ""),
    ],
)
def test_time_key_brings_iso_forms_to_one_utc_string(value, key):
    """Times in other ISO 8601 forms sort with logconf's own once brought to its form."""
    assert time_key(value) == key
