"""Measure the fast suite by mutation: break the core one hand-made way at a time, see whether a test fails.

Each mutant replaces one exact snippet of one module with a plausible mistake (a flipped comparison,
a dropped call, an off-by-one, a skipped escape...). The mutant is applied to a fresh copy of the
checkout in a temporary directory (the checkout itself is never edited), and the fast suite runs
there with ``-x``, PYTHONPATH pointing at the copy, so that test children import the mutant too.
Ratio tests (timings) are left out; a killing test must fail again on the mutant and pass on the
unmutated code, or it is taken for flaky, deselected, and the suite runs again.

A mutant is *killed* when a test fails, *survived* when the suite passes, *timeout* when the suite
runs past ``--timeout`` (a hang the mutant caused: counted as killed, reported apart) and *stale*
when its snippet is no longer found exactly once (the code moved: fix the mutant, it proves
nothing). Before the mutants, the unmutated copy must pass; a test that fails there is left out
of the run (and named at the end), and if it still does not pass, the run stops.

    .venvs/dev/bin/python tests/mutation.py            # all mutants, 2 at a time (make mutants)
    .venvs/dev/bin/python tests/mutation.py --list     # names, and which are stale now
    .venvs/dev/bin/python tests/mutation.py summary-   # only the mutants whose name starts so

Exit status: 0 when the survival rate is at most ``--max-survival`` percent and nothing is stale.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FAST = "not real_vllm and not real_skyrl and not packaging and not stress"
# Tests that compare timings (ratios): on a loaded machine they fail by chance, and no mutant here
# changes how long anything takes, so they only make kills doubtful.
RATIO_TESTS = "not test_masking_time_grows_linearly_with_the_line"


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str  # relative to the repository root
    old: str  # must occur exactly once in the file
    new: str
    why: str  # the mistake it stands for
    # The same mistake where the code has another shape (a module split, a line reworded):
    # (file, old, new) tried in order after the first; the first that applies is used.
    alt: tuple[tuple[str, str, str], ...] = ()

    def variants(self) -> list[tuple[str, str, str]]:
        return [(self.file, self.old, self.new), *self.alt]


def m(name: str, file: str, old: str, new: str, why: str, *alt: tuple[str, str, str]) -> Mutant:
    return Mutant(name, f"logconf/{file}", old, new, why, tuple((f"logconf/{f}", o, n) for f, o, n in alt))


MUTANTS = [
    # -- handlers.py ---------------------------------------------------------------------------
    m("handlers-release-drops-last", "handlers.py", "for record in held or ():", "for record in (held or [])[:-1]:",
      "records dropped at release_held",
      ("handlers.py", "for record in held.take() if held is not None else ():",
       "for record in (held.take() if held is not None else [])[:-1]:")),
    m("handlers-hold-timer-never-fires", "handlers.py", "        timer.start()", "        timer.cancel()",
      "a hold deadline that never fires", ("hold.py", "        timer.start()", "        timer.cancel()")),
    m("handlers-recovery-keeps-count", "handlers.py", "dropped, self._dropped = self._dropped, 0",
      "dropped = self._dropped", "the second disk-full recovery reports the first one's count too",
      ("reports.py", "dropped, self.dropped = self.dropped, 0", "dropped = self.dropped")),
    m("handlers-error-repeated", "handlers.py", "        if self._failing:\n            return\n        self._failing = True",
      "        self._failing = True", "a write error reported on every record, not once",
      ("reports.py", "        if self.failing:\n            return\n        self.failing = True", "        self.failing = True")),
    m("handlers-never-recovers", "handlers.py", "        if self._failing:\n            self._recovered()", "        pass",
      "recovery after a full disk never reported",
      ("handlers.py", "        if self._failures.failing:\n            self._recovered()", "        pass")),
    m("handlers-take-back-off-by-one", "handlers.py", "os.ftruncate(fd, end - written)",
      "os.ftruncate(fd, end - written + 1)", "a record cut short by a full disk leaves a byte behind"),
    m("handlers-no-take-back", "handlers.py", "        if written < len(data):", "        if False:",
      "a record cut short by a full disk stays torn in the file"),
    m("handlers-cut-short-fix-wrong-byte", "handlers.py", 'os.pwrite(fix, b"\\n", start - 1)',
      'os.pwrite(fix, b"\\n", start)', "the repair after a killed writer overwrites this record's first byte"),
    m("handlers-cut-short-nul-hole", "handlers.py", 'in (b"\\n", b""):', 'in (b"\\n",):',
      "a copytruncate'd file gets a NUL hole"),
    m("handlers-rename-not-noticed", "handlers.py", "moved = (info.st_dev, info.st_ino) != self._identity",
      "moved = False", "a renamed or deleted file is never reopened"),
    m("handlers-torn-not-ended", "handlers.py", '        if self._torn:\n            data = b"\\n" + data', "",
      "the record after a torn head starts on the same line"),
    m("handlers-fork-not-noticed", "handlers.py", "        handler._forked = True", "        handler._forked = False",
      "a forked child keeps the parent's descriptor and file"),
    m("handlers-mode-range", "handlers.py", "if not 0 <= mode <= 0o777:", "if not 0 <= mode <= 0o7777:",
      "a file mode with setuid/sticky bits accepted"),
    m("handlers-dotdot-allowed", "handlers.py", '    if ".." in value:', '    if "..." in value:',
      "a '..' in a file name component leaves the log directory"),
    m("handlers-console-stdout-ignored", "handlers.py", "return getattr(sys, self._stream_name)", "return sys.stderr",
      "ConsoleHandler(stream='stdout') writes to stderr"),
    # -- formatters.py ---------------------------------------------------------------------------
    m("formatters-rank-percent-unescaped", "formatters.py", 'TEXT_FORMAT.format(rank=self.rank.replace("%", "%%"))',
      "TEXT_FORMAT.format(rank=self.rank)", "'%' in a rank (50%) not escaped: every text record dropped"),
    m("formatters-second-rounded", "linebase.py", "second = int(record.created)", "second = round(record.created)",
      "a timestamp's second rounded instead of truncated"),
    m("formatters-second-cache-stale", "linebase.py", "if cached[0] != second:", "if cached[0] > second:",
      "a later second reuses the cached text of an earlier one"),
    m("formatters-actor-on-children", "formatters.py", 'record.processName == "MainProcess":',
      'record.processName != "MainProcess":', "a Ray actor's class shown on its child processes instead"),
    m("formatters-traceback-not-redacted", "formatters.py",
      "if self.redact and (record.exc_text or record.stack_info or may_hold_secret(record.message)):",
      "if self.redact and (record.stack_info or may_hold_secret(record.message)):",
      "a secret in a traceback is written when the message holds none"),
    m("formatters-rank-slash-allowed", "linebase.py", 'if "/" in value or ".." in value:', 'if ".." in value:',
      "set_rank('a/b') accepted"),
    m("formatters-rank-control-allowed", "linebase.py", 'if " " in value or not value.isprintable():',
      'if " " in value:', "a line break in a rank forges records"),
    m("formatters-text-traceback-dropped", "formatters.py", "        if record.exc_text:\n            line = f",
      "        if record.exc_text and False:\n            line = f", "a text record's traceback is dropped"),
    # -- jsonlines.py ----------------------------------------------------------------------------
    m("jsonlines-set-rank-ignored", "jsonlines.py", "        self.refresh()\n        _LIVE.add(self)",
      "        self.refresh()", "set_rank in JSON mode: lines keep the old rank"),
    m("jsonlines-message-not-redacted", "jsonlines.py",
      '"message": _redact(record.message) if redact else record.message,', '"message": record.message,',
      "a JSON message's secret written"),
    m("jsonlines-extra-secret-kept", "jsonlines.py", "                if is_secret(name, value):",
      "                if False:", "an extra field named like a credential written in clear",
      ("jsonlines.py", "            if redact and is_secret(name, value):", "            if False:")),
    m("jsonlines-nested-secret-kept", "jsonlines.py",
      "out[name] = MASK if self.mask and is_secret(name, item) else self.convert(item)",
      "out[name] = self.convert(item)", "a credential inside a nested dict written in clear"),
    m("jsonlines-extra-collision-overwrites", "jsonlines.py", "            while name in data:",
      "            if name in data:", "a second colliding extra field overwrites the first"),
    m("jsonlines-nonfinite-all-nan", "jsonlines.py", 'return "NaN" if number != number else _NONFINITE[number]',
      'return "NaN"', "Infinity written as NaN"),
    m("jsonlines-shared-list-circular", "jsonlines.py", "                self.path.discard(id(value))",
      "                pass", "a list referenced twice (not circular) written as <circular>"),
    m("jsonlines-actor-on-children", "jsonlines.py", 'if self.actor is not None and process_name == "MainProcess":',
      'if self.actor is not None and process_name != "MainProcess":', "JSON: actor class on child processes"),
    # -- templating.py ---------------------------------------------------------------------------
    m("templating-dollar-escape", "templating.py", '            literal.append("$")\n', '            literal.append("$$")\n',
      "'$$' not turned into '$'"),
    m("templating-empty-var-accepted", "templating.py", '                if raw == "":', "                if raw is None:",
      "an empty LOGCONF_RANK taken as a value"),
    m("templating-switch-on", "templating.py", 'if lowered in ("1", "true", "yes", "on"):',
      'if lowered in ("1", "true", "yes"):', "the switch value 'on' refused"),
    m("templating-nested-field-missed", "templating.py",
      "return any(isinstance(n, _Field) or (isinstance(n, _Var) and n.default is not None and walk(n.default)) for n in nodes)",
      "return any(isinstance(n, _Field) for n in nodes)", "a {pid} inside a default not re-resolved after fork",
      ("templating.py", "            or (isinstance(n, _Var) and n.default is not None and walk(n.default))\n", "")),
    # -- redact.py -------------------------------------------------------------------------------
    m("redact-secret-alone-not-a-key", "redact.py", "secret(?:[_-]?(?:access[_-]?)?key)?",
      "secret(?:[_-]?(?:access[_-]?)?key)", "redaction keys secret and client_secret"),
    m("redact-shortcut-skips-secret", "redact.py", '        or "ecret" in low\n', "",
      "the cheap pre-check skips lines whose only credential is a secret"),
    m("redact-json-key-prefix", "redact.py", 'return re.compile(rf"(?:[a-z0-9]+[_-])*{_NAME}", re.IGNORECASE)',
      'return re.compile(rf"{_NAME}", re.IGNORECASE)', "JSON extra keys client_secret, WANDB_API_KEY unmasked"),
    m("redact-bearer", "redact.py", r"(?P<bearer>\bbearer\s+)", r"(?P<bearer>\bbearerx\s+)",
      "'Bearer <token>' unmasked"),
    m("redact-url-password", "redact.py", "]+(?=@)", "]+(?=@x)", "a URL's password unmasked"),
    m("redact-hf-length", "redact.py", "[a-z0-9]{30,}", "[a-z0-9]{31,}", "an hf_ token of exactly 30 characters"),
    m("redact-sk-length", "redact.py", "[a-z0-9_\\-]{8,}", "[a-z0-9_\\-]{9,}", "an sk- key of exactly 8 characters"),
    m("redact-home-path-masked", "redact.py", 'return value[:1] in ("/", "~")', 'return value[:1] == "/"',
      "pwd: ~/dir masked as a password"),
    m("redact-list-shape", "redact.py", 'return kv + "[" + MASK + "]"', "return kv + MASK",
      "a masked list value loses its brackets"),
    m("redact-scheme-kept-for-any-key", "redact.py", 'scheme = match.group("scheme") if "uthoriz" in kv.lower() else None',
      'scheme = match.group("scheme")', "password: Basic X keeps 'Basic '"),
    m("redact-backslash-after-token", "redact.py", "_AFTER_TOKEN = frozenset(\"=:'\\\"\\\\ \\t\")",
      "_AFTER_TOKEN = frozenset(\"=:'\\\" \\t\")", 'an escaped JSON \\"token\\" skipped by the pre-check'),
    m("redact-eos-token", "redact.py", "(?<!eos[_-])", "", "eos_token (tokenizer vocabulary) masked"),
    m("redact-key-prefix-match", "redact.py", "return _key_pattern().fullmatch(key) is not None",
      "return _key_pattern().match(key) is not None", "a key that only starts like a credential (tokenizer) masked"),
    m("redact-pwd-path-in-json", "redact.py",
      'return not (key[-3:].lower() == "pwd" and isinstance(value, str) and _is_path(value))', "return True",
      "a JSON pwd holding a path masked"),
    # -- config.py -------------------------------------------------------------------------------
    m("config-no-rollback", "config.py", "        _restore(saved)\n", "",
      "apply() rollback: a config failing inside dictConfig leaves the process half-configured"),
    m("config-rollback-new-loggers-kept", "config.py",
      "            lg.handlers, lg.propagate, lg.disabled, lg.filters = [], True, False, []\n", "            pass\n",
      "apply() rollback leaves loggers the failed config created half-configured"),
    m("config-set-rank-unchecked", "ranks.py",
      '    resolve_rank("${LOGCONF_RANK}", file="set_rank()", environ={"LOGCONF_RANK": value})\n', "",
      "set_rank('a/b') changes LOGCONF_RANK before it is refused"),
    m("config-vllm-configure-logging", "config.py", 'if env.get("VLLM_CONFIGURE_LOGGING") == "0" and',
      "if False and", "VLLM_CONFIGURE_LOGGING=0 with a config path not refused"),
    m("config-root-not-guarded", "config.py", 'guard.own_root(logging.root.handlers if "root" in config else ())',
      "guard.own_root(())", "a framework replacing root's handlers removes logconf's"),
    # -- summary.py ------------------------------------------------------------------------------
    m("summary-torn-unparsable-swapped", "summary.py",
      "            if entry.kind == TORN:\n                summary.torn += 1",
      "            if entry.kind == TORN:\n                summary.unparsable += 1", "torn counted as unparsable"),
    m("summary-unparsable-as-torn", "summary.py", "            else:\n                summary.unparsable += 1",
      "            else:\n                summary.torn += 1", "unparsable counted as torn"),
    m("summary-torn-only-ok", "summary.py",
      "return self.foreign + self.other_rank + self.unparsable + self.torn + self.too_long",
      "return self.foreign + self.other_rank + self.unparsable + self.too_long", "a torn-only file reports ok"),
    m("summary-exact-foreign-name", "summary.py", 'return any(name == root or name.startswith(root + ".") for root in roots)',
      'return any(name.startswith(root + ".") for root in roots)', "exact foreign name (py.warnings) not counted"),
    m("summary-other-rank-never", "summary.py", 'if rank is not None and str(record.get("rank")) != rank:',
      'if rank is None and str(record.get("rank")) != rank:', "records of another rank not counted"),
    m("summary-last-not-max", "summary.py", "summary.last = max(summary.last, entry.time)", "summary.last = entry.time",
      "last time is the last line's, not the latest"),
    m("summary-too-long-lines-cap", "summary.py", "if len(summary.too_long_lines) < TOO_LONG_LINES:",
      "if len(summary.too_long_lines) <= TOO_LONG_LINES:", "21 too-long line numbers kept, not 20"),
    m("summary-continuation-off-by-one", "summary.py", "summary.continuation_lines += len(entry.lines) - 1",
      "summary.continuation_lines += len(entry.lines)", "the record's own line counted as a continuation"),
    m("summary-ok-if-one-clean", "summary.py", '"ok": not any(s.problems for s in summaries),',
      '"ok": not all(s.problems for s in summaries),', "ok when only some files have problems"),
    # -- merge.py, logfiles.py, records.py -------------------------------------------------------
    m("merge-until-exclusive", "merge.py", "entry.time > self._until:", "entry.time >= self._until:",
      "merge --until drops a record exactly at the bound"),
    m("merge-since-exclusive", "merge.py", "entry.time < self._since:", "entry.time <= self._since:",
      "merge --since drops a record exactly at the bound"),
    m("merge-since-not-rounded-up", "merge.py", 'parse_time("--since", self.since, round_up=True)',
      'parse_time("--since", self.since)', "--since with microseconds keeps the record just before it"),
    m("merge-order-position-first", "merge.py", '_KEY = attrgetter("time", "order", "position")',
      '_KEY = attrgetter("time", "position", "order")', "equal times ordered by position before file"),
    m("merge-logger-prefix-loose", "merge.py", 'any(name == p or name.startswith(p + ".") for p in self.loggers)',
      "any(name.startswith(p) for p in self.loggers)", "--logger vllm also keeps vllmx"),
    m("merge-unknown-level-hidden", "merge.py", "passes = self._passes[name] = number is None or number >=",
      "passes = self._passes[name] = number is not None and number >=", "a level no one can rank is hidden"),
    m("merge-render-offset", "merge.py", "{first[25:]}", "{first[24:]}", "merge's text lines get a double blank"),
    m("logfiles-time-key-rounds", "logfiles.py", 'f"{moment.microsecond // 1000:03d}Z"',
      'f"{min(999, round(moment.microsecond / 1000)):03d}Z"', "an ISO time's millisecond rounded, not truncated"),
    m("logfiles-natural-order", "logfiles.py", "int(part) if part.isdigit() else part", "part",
      "rank 10 sorted before rank 2"),
    m("logfiles-torn-head-length", "logfiles.py", "    if len(line) < 11:", "    if len(line) < 12:",
      "the shortest torn head (a date and T) counted unparsable"),
    m("logfiles-stdio-is-rank-file", "logfiles.py", ' and ".stdio." not in filename', "",
      "vllm_rank_0.stdio.log taken for a rank file"),
    m("logfiles-json-torn", "logfiles.py", 'line.startswith("{") if self.json_file', "False if self.json_file",
      "a JSON line cut short counted unparsable, not torn"),
    m("logfiles-torn-head-continues", "logfiles.py",
      "            if not _torn_head(line):\n                pending.lines.append(line)",
      "            if True:\n                pending.lines.append(line)", "a torn head swallowed as a traceback line"),
    m("records-numeric-rank-only", "records.py", r"rank=(?P<rank>\S*) ", r"rank=(?P<rank>\d*) ",
      "a text record with rank 'driver' is unparsable"),
    m("records-loguru-level-case", "records.py", "    if name.upper() in _LOGURU_LEVELS:",
      "    if name in _LOGURU_LEVELS:", "--level success not known"),
    # -- guard.py --------------------------------------------------------------------------------
    m("guard-remove-owned", "guard.py", "        if hdlr not in _OWNED:\n            super().removeHandler(hdlr)",
      "        super().removeHandler(hdlr)", "a later dictConfig removes logconf's root handlers"),
    m("guard-no-follow", "guard.py", "        if missing:\n            follow_environment()", "",
      "the rank set before a framework's logging set-up is not followed"),
    # -- rotation (issue 20): rotation.py, retention.py, the handler's hook, the stdio tee, the tools' sets --
    m("rotation-compress-while-held", "retention.py",
      "    except BlockingIOError:\n        return False\n    except OSError:\n        return time.time()",
      "    except BlockingIOError:\n        return True\n    except OSError:\n        return time.time()",
      "a rotated file compressed while a writer still has it open (its late records lost)"),
    m("rotation-compress-keeps-plain", "retention.py",
      "        _sync_directory(os.path.dirname(path))\n        os.unlink(path)\n",
      "        _sync_directory(os.path.dirname(path))\n", "the plain file stays beside its compressed copy"),
    m("rotation-keep-one-too-many", "retention.py", "for path in ours[: len(ours) - policy.keep]:",
      "for path in ours[: len(ours) - policy.keep + 1]:", "retention keeps one rotated file fewer than asked"),
    m("rotation-budget-counts-rotated-only", "retention.py", "                    total += info.st_size",
      "                    total += info.st_size if path in found.rotated else 0",
      "the directory budget leaves the live files out of the total"),
    m("rotation-removed-not-cumulative", "retention.py", "total = Removal(files + len(removed),",
      "total = Removal(len(removed),", "a retention record says only its own removal, not the total so far"),
    m("rotation-idle-never-rechecked", "rotation.py", "                    handler.recheck()", "                    pass",
      "a process that logs nothing holds a rotated file forever: it is never compressed"),
    m("rotation-own-bytes-uncounted", "handlers.py", "        self._room -= written\n", "",
      "a process's own bytes do not bring its next check forward: files grow a check interval past the size"),
    m("rotation-tee-bytes-uncounted", "tee.py", "                self._room -= len(data)\n", "",
      "the stdio copy rotates only at the periodic check"),
    m("logfiles-rotated-numbers-forward", "logfiles.py", "key: tuple[int, Any] = (0, -int(", "key: tuple[int, Any] = (0, int(",
      "logrotate's .1 (newest) read before .3 (oldest)"),
    m("logfiles-twin-reads-compressed", "logfiles.py", "if known is None or (known[0] and not rotated.compressed):",
      "if known is None or rotated.compressed:", "X.gz read instead of X while both exist"),
    m("logfiles-json-by-part-name", "logfiles.py",
      'self.json_file = live_name(self.file.rpartition("/")[2]).endswith(".jsonl")',
      'self.json_file = self.file.endswith(".jsonl")', "a rotated JSON lines file read as text"),
    m("openfiles-pool-never-closes", "openfiles.py", "        while len(self._open) >= self.limit:", "        while False:",
      "every file kept open: EMFILE under a low ulimit -n"),
    m("summary-removed-summed", "summary.py",
      "if removed is not None and removed.files > summary.removed_files:  # each says what was removed in all\n"
      "                summary.removed_files, summary.removed_bytes, summary.removed_disk_bytes = removed",
      "if removed is not None:\n                summary.removed_files += removed.files\n"
      "                summary.removed_bytes += removed.log_bytes", "summary adds up retention's running totals"),
    m("tail-history-live-only", "tail.py", "        if seen >= count or index == 0:", "        if True:",
      "tail -n reads only the live file of a rotated rank file"),
    m("gather-rotated-copied-again", "gather.py", "    if copied_before(target):\n        return done\n", "",
      "a rotated file copied again on every gather"),
]


def _variant(mutant: Mutant, root: Path) -> tuple[str, str, str] | None:
    """The first of the mutant's variants whose snippet occurs exactly once under ``root``."""
    for file, old, new in mutant.variants():
        path = root / file
        if path.is_file() and path.read_text(encoding="utf-8").count(old) == 1:
            return file, old, new
    return None


def stale(mutant: Mutant, root: Path = REPO) -> str | None:
    """Say why ``mutant`` cannot be applied to the tree under ``root``, or None if it can."""
    if _variant(mutant, root) is not None:
        return None
    counts = []
    for file, old, _ in mutant.variants():
        path = root / file
        counts.append(f"{path.read_text(encoding='utf-8').count(old)} in {file}" if path.is_file() else f"{file} missing")
    return "its snippet is not found exactly once (" + "; ".join(counts) + ")"


def _sources(root: Path) -> list[str]:
    """The checkout's files that git tracks or would track (no venvs, caches or build output)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, capture_output=True, check=True
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (root / name).is_file()]


def _copy(root: Path, files: list[str], into: Path) -> None:
    for name in files:
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)


# pytest -ra's summary line: "FAILED tests/x.py::test_y[id] - message" (the message is optional)
_FAILED = re.compile(r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$", re.MULTILINE)
CONFIRMS = 3  # killing tests found flaky and deselected, at most, before a mutant is reported as an error


@dataclass
class Run:
    python: str
    timeout: float
    tests: list[str]
    pristine: Path  # an unmutated copy: a killing test must pass there
    left_out: list[str] = field(default_factory=list)  # tests that fail on the unmutated code here


def _pytest(run: Run, copy: Path, args: list[str], timeout: float) -> tuple[int | None, str, float]:
    """Run pytest in ``copy`` on the fast suite; return (exit status or None on timeout, output, seconds)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGCONF_", "PYTEST_"))}
    env.update(PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")
    command = [run.python, "-m", "pytest", "-q", "-m", FAST, "-k", RATIO_TESTS, "-p", "no:cacheprovider", *args]
    start = time.monotonic()
    child = subprocess.Popen(
        command, cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        out, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)  # the suite and every child it started
        child.communicate()
        return None, "", time.monotonic() - start
    return child.returncode, out.decode("utf-8", "replace"), time.monotonic() - start


def _fails(run: Run, copy: Path, test: str) -> bool:
    status, _, _ = _pytest(run, copy, [test], min(run.timeout, 300))
    return status != 0


def run_suite(run: Run, copy: Path, confirm: bool) -> tuple[str, str, float]:
    """Run the fast suite in ``copy`` with -x; return (outcome, killing test or note, seconds).

    With ``confirm``, a kill counts only if the killing test fails again on the mutant and passes on
    the unmutated code; otherwise that test is flaky on this machine (a ratio under heavy load): it
    is deselected and the suite runs again.
    """
    deselected: list[str] = list(run.left_out)
    total = 0.0
    while True:
        args = ["-x", *(f"--deselect={test}" for test in deselected), *run.tests]
        status, text, seconds = _pytest(run, copy, args, run.timeout)
        total += seconds
        if status is None:
            return "timeout", f"no result within {run.timeout:g}s", total
        if status == 0:
            flaky = deselected[len(run.left_out) :]
            return "survived", f"(deselected as flaky: {', '.join(flaky)})" if flaky else "", total
        if status not in (1, 2):  # 1: a test failed; 2: collection failed on the mutant
            return "error", f"pytest exit {status}: " + " | ".join(text.strip().splitlines()[-3:])[:300], total
        found = _FAILED.search(text)
        if found is None:
            return "killed", text.strip().splitlines()[-1][:120], total
        test = found.group(1)
        if not confirm or (_fails(run, copy, test) and not _fails(run, run.pristine, test)):
            flaky = deselected[len(run.left_out) :]
            note = f" (deselected as flaky: {', '.join(flaky)})" if flaky else ""
            return "killed", test + note, total
        deselected.append(test)
        if len(deselected) - len(run.left_out) > CONFIRMS:
            return "error", f"flaky tests: {', '.join(deselected)}", total


def run_one(mutant: Mutant | None, files: list[str], run: Run, keep: bool) -> tuple[str, str, float]:
    """Apply ``mutant`` (None: the code as it is) to a fresh copy of the pristine tree and run the suite there."""
    with tempfile.TemporaryDirectory(prefix="logconf-mutant-") as tmp:
        copy = Path(tmp) / "repo"
        _copy(run.pristine, files, copy)  # the tree as it was at the start, whatever is edited meanwhile
        if mutant is not None:
            variant = _variant(mutant, copy)
            if variant is None:
                return "stale", stale(mutant, copy) or "", 0.0
            file, old, new = variant
            path = copy / file
            path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
        result = run_suite(run, copy, confirm=mutant is not None)
        if keep and mutant is not None and result[0] == "survived":
            kept = Path(tempfile.mkdtemp(prefix=f"logconf-survivor-{mutant.name}-"))
            shutil.copytree(copy, kept / "repo")
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="run only the mutants whose name starts with one of these")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once (default 2)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one suite run may take (default 600)")
    parser.add_argument("--max-survival", type=float, default=10.0, help="percent of mutants allowed to survive")
    parser.add_argument("--list", action="store_true", help="list the mutants and whether each is stale; run nothing")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run of the unmutated code")
    parser.add_argument("--keep", action="store_true", help="keep a copy of each survivor's tree for inspection")
    parser.add_argument("--tests", nargs="+", default=["tests"], help="test files or directories to run (default: tests)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter that runs pytest")
    args = parser.parse_args(argv)

    chosen = [mu for mu in MUTANTS if not args.names or mu.name.startswith(tuple(args.names))]
    names = [mu.name for mu in MUTANTS]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        parser.error(f"mutant names used twice: {sorted(duplicates)}")
    if args.list:
        for mu in chosen:
            print(f"{mu.name:40} {stale(mu) or 'ok':12} {mu.file}: {mu.why}")
        return 0
    if not chosen:
        parser.error("no mutant has such a name")
    files = _sources(REPO)
    started = time.monotonic()
    pristine = Path(tempfile.mkdtemp(prefix="logconf-pristine-")) / "repo"
    results: dict[str, tuple[str, str, float]] = {}
    try:
        _copy(REPO, files, pristine)
        run = Run(args.python, args.timeout, args.tests, pristine)
        if not args.no_baseline:
            # A test that fails on the unmutated code (flaky, or something this machine lacks) would
            # kill every mutant: it is left out of the whole run, and said so.
            for _ in range(CONFIRMS + 1):
                outcome, note, seconds = run_one(None, files, run, False)
                if outcome != "killed":
                    break
                run.left_out.append(note)
                print(f"baseline: {note} fails on the unmutated code; left out of this run", flush=True)
            print(f"baseline (no mutant): {'passed' if outcome == 'survived' else outcome} in {seconds:.0f}s", flush=True)
            if outcome != "survived":
                print(f"the unmutated code does not pass the fast suite ({note}): no mutant can be judged", file=sys.stderr)
                return 2

        def job(mu: Mutant) -> None:
            results[mu.name] = outcome = run_one(mu, files, run, args.keep)
            print(f"{outcome[0]:8} {mu.name:40} {outcome[2]:5.0f}s  {outcome[1]}", flush=True)

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            list(pool.map(job, chosen))
    finally:
        shutil.rmtree(pristine.parent, ignore_errors=True)

    counts = {k: 0 for k in ("killed", "timeout", "survived", "stale", "error")}
    for outcome, _, _ in results.values():
        counts[outcome] += 1
    judged = counts["killed"] + counts["timeout"] + counts["survived"]
    rate = 100.0 * counts["survived"] / judged if judged else 0.0
    print()
    for mu in chosen:
        if results[mu.name][0] in ("survived", "stale", "error"):
            print(f"{results[mu.name][0].upper():8} {mu.name}: {mu.file}: {mu.why}")
    if run.left_out:
        print(f"left out of this run (they fail on the unmutated code): {', '.join(run.left_out)}")
    print(
        f"mutants: {len(chosen)}; killed {counts['killed']}, killed by timeout {counts['timeout']}, "
        f"survived {counts['survived']}, stale {counts['stale']}, error {counts['error']}; "
        f"survival {rate:.1f}% of {judged}; {time.monotonic() - started:.0f}s in all"
    )
    return 0 if rate <= args.max_survival and not counts["stale"] and not counts["error"] else 1


if __name__ == "__main__":
    sys.exit(main())
