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
FAST = "not real_vllm and not real_skyrl and not packaging and not stress and not browser and not lnav"
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
       "for record in (held.take() if held is not None else [])[:-1]:"),
      ("hold.py", "for owner, record in entries:", "for owner, record in entries[:-1]:")),
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
    m("redact-json-key-prefix", "redact.py", 'return re.compile(rf"{_PREFIX}(?:{_STRONG}|{_PATHY}|{_TOKEN})", re.IGNORECASE)',
      'return re.compile(rf"(?:{_STRONG}|{_PATHY}|{_TOKEN})", re.IGNORECASE)',
      "JSON extra keys client_secret, WANDB_API_KEY unmasked"),
    m("redact-bearer", "redact.py", r"(?P<bearer>\bbearer[^\S\n]+)", r"(?P<bearer>\bbearerx[^\S\n]+)",
      "'Bearer <token>' unmasked"),
    m("redact-url-password", "redact.py", "]+(?=@)", "]+(?=@x)", "a URL's password unmasked"),
    m("redact-hf-length", "redact.py", "[a-z0-9]{30,}", "[a-z0-9]{31,}", "an hf_ token of exactly 30 characters"),
    m("redact-sk-length", "redact.py", "[a-z0-9_\\-]{8,}", "[a-z0-9_\\-]{9,}", "an sk- key of exactly 8 characters"),
    m("redact-home-path-masked", "redact.py", 'return value[:1] in ("/", "~")', 'return value[:1] == "/"',
      "pwd: ~/dir masked as a password"),
    m("redact-list-shape", "redact.py", 'return "[" + MASK + "]"', "return MASK",
      "a masked list value loses its brackets"),
    m("redact-scheme-kept-for-any-key", "redact.py", 'return key + _masked_value(match, "uthoriz" in key.lower())',
      "return key + _masked_value(match, True)", "password: Basic X keeps 'Basic '"),
    m("redact-backslash-after-token", "redact.py", "_AFTER_TOKEN = frozenset(\"=:'\\\"\\\\ \\t\")",
      "_AFTER_TOKEN = frozenset(\"=:'\\\" \\t\")", 'an escaped JSON \\"token\\" skipped by the pre-check'),
    m("redact-eos-token", "redact.py", '"bos", "eos", "pad",', '"bos", "pad",', "eos_token (tokenizer vocabulary) masked"),
    m("redact-key-prefix-match", "redact.py", "return _key_pattern().fullmatch(key) is not None",
      "return _key_pattern().match(key) is not None", "a key that only starts like a credential (tokenizer) masked"),
    m("redact-pwd-path-in-json", "redact.py",
      "return not (isinstance(value, str) and _is_path(value))", "return True",
      "a JSON pwd holding a path masked"),
    # -- config.py -------------------------------------------------------------------------------
    m("config-no-rollback", "config.py",
      "            _restore(saved)\n            guard.own_root(owned)\n", "            guard.own_root(owned)\n",
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
      "            if entry.kind == TORN:\n                self.torn += 1",
      "            if entry.kind == TORN:\n                self.unparsable += 1", "torn counted as unparsable"),
    m("summary-unparsable-as-torn", "summary.py", "            else:\n                self.unparsable += 1",
      "            else:\n                self.torn += 1", "unparsable counted as torn"),
    m("summary-torn-only-ok", "summary.py",
      "return self.foreign + self.other_rank + self.unparsable + self.torn + self.too_long",
      "return self.foreign + self.other_rank + self.unparsable + self.too_long", "a torn-only file reports ok"),
    m("summary-exact-foreign-name", "summary.py", 'return any(name == root or name.startswith(root + ".") for root in roots)',
      'return any(name.startswith(root + ".") for root in roots)', "exact foreign name (py.warnings) not counted"),
    m("summary-other-rank-never", "summary.py", 'if self._rank is not None and str(record.get("rank")) != self._rank:',
      'if self._rank is None and str(record.get("rank")) != self._rank:', "records of another rank not counted"),
    m("summary-last-not-max", "summary.py", "self.last = max(self.last, entry.time)", "self.last = entry.time",
      "last time is the last line's, not the latest"),
    m("summary-too-long-lines-cap", "summary.py", "if len(self.too_long_lines) < TOO_LONG_LINES:",
      "if len(self.too_long_lines) <= TOO_LONG_LINES:", "21 too-long line numbers kept, not 20"),
    m("summary-continuation-off-by-one", "summary.py", "self.continuation_lines += len(entry.lines) - 1",
      "self.continuation_lines += len(entry.lines)", "the record's own line counted as a continuation"),
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
    # -- issue 18, redaction: whole values, private keys, pairs, token names ---------------------
    m("redact18-passwd-not-a-key", "redact.py", "passw(?:or)?d|", "password|", "passwd=hunter2 written in clear"),
    m("redact18-quoted-value-cut-at-blank", "redact.py", r'[^\"\\\n])*)(?P<c2>', r'[^\"\\\n ])*)(?P<c2>',
      'secret_key: "open sesame street" keeps "sesame street"'),
    m("redact18-escaped-quote-ends-value", "redact.py", r"(?P<b2>(?:\\[^\n]|", r"(?P<b2>(?:",
      'an escaped \\" inside a quoted value ends the mask'),
    m("redact18-bytes-value-kept", "redact.py", r"(?P<o1>b?')", r"(?P<o1>')", "token=b'...' written in clear"),
    m("redact18-key-option-kept", "redact.py", "|key{_CLI_SEPARATOR}{_NOT_PATH}", "",
      "--wandb-key KEY (an option ending in key) written in clear"),
    m("redact18-pem-body-written", "redact.py", 'return group("pem") + _masked_body(body) + group("end")',
      'return group("pem") + body + group("end")', "a private key's body printed whole"),
    m("redact18-cut-short-key-masks-the-rest", "redact.py",
      'return group("pem") + _masked_body(body[:lines]) + redact(body[lines:])', 'return group("pem") + _masked_body(body)',
      "the text after a key cut short masked with it"),
    m("redact18-stream-forgets-key", "redact.py", 'self.inside_key = "PRIVATE KEY-----" in text and _ends_inside_key(text)',
      "self.inside_key = False", "a key printed line by line: its body reaches the stdio copy"),
    m("redact18-number-under-token-masked", "redact.py", r"|addedtoken\(|[+-]?\d+", r"|addedtoken\(|[+-]?\d+x",
      "time to first token: 35 ms and *_token counts masked"),
    m("redact18-prose-token-is-a-key", "redact.py", r"(?<![a-z][ \t])", "", "Sampled token: hello masked"),
    m("redact18-separator-crosses-lines", "redact.py", r"[^\S\n]*[=:][^\S\n]*", r"\s*[=:]\s*",
      "a key at a line's end masks the next line of the stdio copy"),
    m("redact18-url-password-first-at", "redact.py", "[^\\s/?#'\\\"]+(?=@)", "[^\\s/?#@'\\\"]+(?=@)",
      "a URL password holding @ keeps what follows its first @"),
    m("redact18-sk-in-path", "redact.py", r"s(?<![\w/\\.~-]s)k-", r"s(?<![\w]s)k-", "a path holding sk-... masked"),
    m("redact18-json-number-token-masked", "redact.py", "        return not _plain_token(value)\n",
      "        return True\n", "JSON extras named *_token holding a number lose their value"),
    m("redact18-json-pair-kept", "jsonlines.py", "                    if isinstance(value, tuple):\n",
      "                    if False:\n", 'a JSON extra ("authorization", "...") written in clear'),
    m("redact18-json-nested-pair-kept", "jsonlines.py", "if type(item) is list and type(converted) is list:",
      "if False:", 'a JSON extra [["x-api-key", "..."]] written in clear'),
    # -- hold: held records on disk, the hold through a foreign dictConfig, the tee at exit ---------
    m("hold-spill-not-written", "hold.py", "                    os.write(self._fd, line)", "                    pass",
      "a held record is only in memory: a process that dies in the hold loses it"),
    m("hold-spill-kept", "hold.py", "            self._close(remove=written)", "            self._close(remove=False)",
      "the spill file stays after its records reached the rank file: the tools show them twice"),
    m("hold-spill-not-exclusive", "hold.py", "os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW", "os.O_CREAT | os.O_NOFOLLOW",
      "a spill file left by a dead process with the same pid is appended to, then removed"),
    m("hold-fork-child-holds", "hold.py", "        self.ended, self.entries, self.writers = True, [], []",
      "        self.entries, self.writers = [], []", "a fork child holds its records in memory: os._exit loses them"),
    m("hold-spill-real-rank", "hold.py", "with_rank(rank) if with_rank else formatter", "formatter",
      "a spill file's lines carry the tentative rank, not the spill's: summary counts them as another rank's"),
    m("handlers-close-ends-hold", "handlers.py",
      "        with self.lock:  # type: ignore[union-attr]\n            fd, self._fd = self._fd, None\n"
      "            if fd is not None:\n                os.close(fd)\n        super().close()",
      "        with self.lock:  # type: ignore[union-attr]\n            if self._held is not None:\n"
      "                _end_hold(self._held)\n            fd, self._fd = self._fd, None\n"
      "            if fd is not None:\n                os.close(fd)\n        super().close()",
      "a foreign dictConfig (which closes every handler) ends the hold: records go to rank 0"),
    m("handlers-switch-keeps-holds", "handlers.py",
      "        for held in holds:\n            _release(held)\n    if releasing is None:",
      "        pass\n    if releasing is None:", "set_rank leaves the held records held"),
    m("handlers-exit-keeps-holds", "handlers.py", "    holds = _holding()\n    if not holds:\n        return",
      "    holds = _holding()\n    if holds:\n        return", "what is held at exit stays in the spill file"),
    m("linebase-spill-rank-not-applied", "linebase.py", "        twin.refresh()\n", "",
      "a spill file's lines carry the real formatter's rank"),
    m("tee-cap-never-releases", "tee.py", "            if self.held_size >= _MAX_HELD:", "            if False:",
      "the tee holds an unranked actor's output without bound"),
    m("tee-sync-unanswered", "tee.py", '                self.control.send(b"synced")', "                pass",
      "the tee never says it has passed everything on: every exit waits the whole bound"),
    m("tee-hold-ignored", "tee.py", 'if float(spec.get("hold_s", 0)) > 0:', 'if float(spec.get("hold_s", 0)) < 0:',
      "an unranked actor's raw lines go to rank 0's copy at once"),
    m("capture-append-check-dropped", "capture.py", "            if not mode & os.O_APPEND:", "            if False:",
      "a child reopens a stdout file opened without O_APPEND: the ancestor overwrites its lines"),
    m("capture-exit-no-wait", "capture.py", 'return self._send(b"sync", reply=b"synced", wait_s=wait_s) == b"synced"',
      'return self._send(b"sync") == b"synced"', "an exiting process does not wait for its tee"),
    m("capture-exit-hook-empty", "capture.py", "    tee = installed()\n    if tee is not None:\n        tee.finish()",
      "    pass", "nothing waits for the tee at exit"),
    # -- config: a user's own config gets a clear error; machines shared by several users --------
    m("config-signature-unchecked", "config.py",
      "kwargs = schema.check_entry_keys(entry, section, file=file, key=key, factory=None if plain else factory, target=label)",
      "kwargs = {k: v for k, v in entry.items() if k not in schema.OWN_KEYS[section]}",
      "a misspelt or missing factory argument reaches the factory: a bare TypeError"),
    m("config-logger-keys-unchecked", "config.py",
      '        schema.check_logger(entry, file=file, key=key, root=name == "<root>")\n',
      "", "a misspelt logger key (handlerss, propagatte) is ignored without a word"),
    m("config-root-type-unchecked", "config.py", '        if not isinstance(config["root"], Mapping):',
      "        if False:", "root: 7 fails with a TypeError, not a ConfigError naming root"),
    m("config-capture-unchecked", "config.py", "        return capture.check_install(create=create, **kwargs)",
      "        return None", "logconf check does not check the stdio copy's directory when capture is on"),
    m("config-filters-before-handlers", "config.py", '_SECTIONS = ("formatters", "handlers", "filters")',
      '_SECTIONS = ("formatters", "filters", "handlers")',
      "a bad LOGCONF_FILE_MODE is named under the stdio filter, which only capture uses, not the rank file's handler"),
    m("schema-no-close-match", "schema.py",
      "    close = difflib.get_close_matches(str(name), valid, n=1, cutoff=0.6)\n    listed",
      "    close: list[str] = []\n    listed", "a misspelt argument does not say which valid one it is close to"),
    m("schema-required-unchecked", "schema.py", "    for name in required:\n        if name not in given:",
      "    for name in ():\n        if name not in given:", "a missing directory reaches RankFileHandler: a bare TypeError"),
    m("schema-options-not-followed", "schema.py", "    onward = PASSES_ON.get(", "    onward = None and PASSES_ON.get(",
      "RankFileHandler's **options taken as anything: fille_mode reaches its FilePlan"),
    m("schema-self-counted", "schema.py",
      "    skip = 1 if isinstance(factory, type)", "    skip = 0 if isinstance(factory, type)",
      "a class's self counted as an argument it needs"),
    m("schema-top-keys-unchecked", "schema.py",
      '    known(config, TOP_KEYS, file=file, key="", what="a key of a logging config", values=config)\n', "",
      "a misspelt top-level key (loggerss) configures nothing, without a word"),
    m("ownership-root-is-another-user", "ownership.py", "    if info.st_uid not in (os.geteuid(), 0):",
      "    if info.st_uid != os.geteuid():", "a directory root owns (/tmp itself) counts as another user's"),
    m("ownership-sticky-ignored", "ownership.py", "and not info.st_mode & stat.S_ISVTX:", ":",
      "a sticky world-writable directory of one's own (as /tmp) is refused"),
    m("ownership-world-writable-file-ok", "ownership.py", '            return "is writable by every user"\n',
      "            return None\n", "a rank file every user may write is appended to"),
    m("ownership-nameless-uid", "ownership.py", "        return str(uid)  # a uid without a passwd entry",
      '        return "nobody"  # a uid without a passwd entry', "a uid without a name shares nobody's default directory"),
    m("ownership-any-writable-refused", "ownership.py", "        if stat.S_ISREG(info.st_mode):",
      "        if not stat.S_ISDIR(info.st_mode):",
      "a link's own 0777 or a device's 0666 (/dev/full behind follow_symlinks) counts as writable by all"),
    m("handlers-foreign-dir-unchecked", "handlers.py",
      "            info = os.lstat(directory)\n            self.refuse_foreign(directory, info)",
      "            info = os.lstat(directory)", "logconf writes into a directory another user owns"),
    m("handlers-opened-file-unchecked", "handlers.py",
      "            plan.refuse_foreign(self.path, info)  # the file opened", "            pass  # the file opened",
      "a followed link (or a race) opens another user's file and appends to it"),
    m("handlers-shared-ignored", "handlers.py", "        complaint = None if self.shared else ownership.foreign(info)",
      "        complaint = ownership.foreign(info)", "LOGCONF_SHARED_DIR=1 does not let a team share a directory"),
    m("handlers-levels-not-a-mapping", "handlers.py", "    if not isinstance(value, Mapping):\n        raise ConfigError(",
      "    if False:\n        raise ConfigError(", "logger_levels: 7 fails with AttributeError"),
    m("capture-checks-copy-when-off", "capture.py", "    if not settings.stdio:\n        return None\n",
      "", "logconf check writes the stdio copy among the files though capture is off"),
    m("capture-shared-default-dir", "capture.py", "    directory: str = DIR_TEMPLATE,",
      '    directory: str = "${LOGCONF_DIR:-/tmp/logconf}",', "the stdio copy goes to the old shared default directory"),
    m("capture-check-without-defaults", "capture.py", "    given = {**(install.__kwdefaults__ or {}), **arguments}",
      "    given = dict(arguments)", "a config without one of install's keys fails logconf check with a KeyError"),
    m("templating-user-field-fixed", "templating.py", '        return user_name()', '        return "logconf"',
      "every user shares one default directory again"),
    m("templating-non-string-has-field", "templating.py",
      "    if not isinstance(template, str):\n        return False  # not a template",
      "    if False:\n        return False  # not a template", "directory: 7 fails with TypeError before its key is named"),
    m("sources-entry-not-used", "sources.py", "    if entry is not None:  # logconf.config.check knows the entry",
      "    if False:  # logconf.config.check knows the entry",
      "an error in the stdio filter's arguments is named under the handler whose value matches"),
    m("yamlcache-other-users-entry", "yamlcache.py", " or info.st_uid != os.getuid() or", " or",
      "a cache entry another user wrote is trusted"),
    m("yamlcache-no-round-trip", "yamlcache.py", "        if json.loads(payload) != config:\n            return",
      "        if False:\n            return", "a config with an integer key is cached and comes back with a string key"),
    m("netfs-type-dropped", "netfs.py", '"panfs", "wekafs",', '"panfs",', "WekaFS taken for a local filesystem"),
    m("netfs-mount-prefix-loose", "netfs.py", 'real.startswith(point.rstrip("/") + "/")', "real.startswith(point)",
      "/data/nfs2 taken for a directory under a mount at /data/nfs"),
    m("yamlcache-group-writable-trusted", "yamlcache.py", " or info.st_mode & 0o022:", ":",
      "a cache entry that other users may rewrite is trusted"),
    m("yamlcache-text-not-compared", "yamlcache.py", '            and entry.get("text") == text\n', "",
      "an edited config is answered from the cache with its old parse"),
    m("netfs-first-mount-wins", "netfs.py", "            by_device = rest[0]  # the last one wins",
      "            by_device = by_device or rest[0]  # the last one wins",
      "a local filesystem mounted over an NFS mount is taken for NFS"),
    m("netfs-blank-unescaped", "netfs.py", '("\\\\040", " "), ', "",
      "a mount point with a blank in its path is not found"),
    # -- gather (issue 18, multi-node): gather.py, gathered.py, ray_env.py's LOGCONF_DIR --------------
    m("gathered-dotdot-name", "gathered.py", '_UNSAFE.sub("_", text).lstrip(".")[:NAME_MAX]', '_UNSAFE.sub("_", text)[:NAME_MAX]',
      "a node whose host name is `..` writes outside DEST"),
    m("gathered-forgets-node-id", "gathered.py",
      "        if node.node_id in owner:\n            dirs[node.node_id] = owner[node.node_id]\n            continue\n", "",
      "a node is renamed when a node of its host name joins or leaves: merge prints its records twice"),
    m("gathered-no-successor", "gathered.py", "        if same and node.dir:", "        if False:",
      "a restarted raylet gets a new subdirectory and its files are gathered twice"),
    m("gathered-manifest-forgets", "gathered.py", "    merged = {**read_manifest(dest), **nodes}", "    merged = dict(nodes)",
      "the manifest drops the nodes of earlier runs"),
    m("gathered-never-tightens", "gathered.py", "    if current & ~mode:", "    if False:",
      "an existing world-readable copy stays world-readable"),
    m("gather-nodes-in-ray-order", "gather.py", '    alive = sorted((n for n in ray.nodes() if n.get("Alive")), key=order)',
      '    alive = [n for n in ray.nodes() if n.get("Alive")]',
      "nodes walked in ray.nodes()'s order: stacks names the driver after whichever node Ray listed first"),
    m("gather-follows-links", "gather.py", "_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC",
      "_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC", "a link swapped in after listing is read: any file the raylet can read"),
    m("gather-lists-links", "gather.py",
      "            info = os.lstat(path)\n        except FileNotFoundError:\n            continue\n        if stat.S_ISLNK",
      "            info = os.stat(path)\n        except FileNotFoundError:\n            continue\n        if stat.S_ISLNK",
      "a link among rank files is listed, and its target copied"),
    m("gather-copy-umask-mode", "gather.py", '    mode = listed["mode"] & file_mode\n',
      "    mode = 0o644\n", "a 0640 rank file becomes a 0644 copy"),
    m("ray-env-pins-default-dir", "ray_env.py", '    if "LOGCONF_DIR" in merged:\n',
      '    merged.setdefault("LOGCONF_DIR", "/tmp/logconf")\n    if "LOGCONF_DIR" in merged:\n',
      "a driver without LOGCONF_DIR pins its default into every node"),
    m("ray-env-copies-unset-dir", "ray_env.py", '        if name == "LOGCONF_DIR" and name not in merged:\n',
      '        if False:\n', "vLLM copies an engine node's LOGCONF_DIR to its workers on other nodes"),
    # -- auto.py (issue 17: only the job's processes) --------------------------------------------
    m("auto-every-process", "auto.py", "    sys.meta_path.insert(0, _FrameworkWatch(frameworks()))",
      "    _join_job()", "every process configured at start, pip and basicConfig scripts included"),
    m("auto-daemon-at-start", "auto.py", "        if is_ray_daemon(argv0):\n            return\n", "",
      "a Ray daemon started by its script is configured when it imports a framework"),
    m("auto-daemon-at-import", "auto.py", "    if not wanted(_argv0()):", "    if False:",
      "a Ray daemon started with python -m is configured when it imports a framework"),
    m("auto-worker-later", "auto.py", "        if is_ray_worker(argv0):", "        if False:",
      "a Ray worker is configured only when it imports a framework: its first records are lost"),
    m("auto-apply-after-framework", "auto.py",
      "            self.leave()\n            _join_job()\n            exec_module(module)",
      "            exec_module(module)\n            self.leave()\n            _join_job()",
      "the framework's own code runs before logconf is applied (vLLM <= 0.30 configures at import)"),
    m("auto-apply-at-find", "auto.py", "        exec_module = getattr(spec.loader, \"exec_module\", None)",
      "        _join_job()\n        exec_module = getattr(spec.loader, \"exec_module\", None)",
      "a library that only looks for vLLM (find_spec) configures the process"),
    m("auto-no-extra-frameworks", "auto.py", "    return FRAMEWORKS.union(name for name in extra if name)",
      "    return FRAMEWORKS", "LOGCONF_AUTO_FRAMEWORKS is ignored"),
    m("auto-vllm-configure-0", "auto.py", "        if os.environ.get(\"VLLM_CONFIGURE_LOGGING\") != \"0\":",
      "        if True:", "VLLM_LOGGING_CONFIG_PATH set though vLLM is told not to configure logging"),
    m("guard-remove-owned", "guard.py", "        if value not in _OWNED:\n            list.remove(self, value)",
      "        list.remove(self, value)", "a later dictConfig removes logconf's root handlers"),
    m("guard-no-follow", "guard.py", "            list.extend(self, missing)\n            follow_environment()",
      "            list.extend(self, missing)", "the rank set before a framework's logging set-up is not followed"),
    # -- frameworks that reconfigure logging after apply() (issue 17 section 3; issue 18's integration pins) ----
    m("guard-clear-unkept", "guard.py", "        list.clear(self)\n        self.keep()", "        list.clear(self)",
      "root.handlers.clear() removes logconf's console"),
    m("guard-del-unkept", "guard.py", "        list.__delitem__(self, index)\n        self.keep()",
      "        list.__delitem__(self, index)", "del root.handlers[:] removes logconf's console"),
    m("guard-assign-unkept", "guard.py", "        kept = _KeptHandlers(value)\n        object.__setattr__(self, name, kept)\n"
      "        kept.keep()", "        object.__setattr__(self, name, value)", "root.handlers = [...] drops logconf's console"),
    m("guard-basicconfig-blocked", "guard.py", "    if not kwargs.get(\"force\") or not _OWNED:",
      "    if True:", "basicConfig(force=True) finds root non-empty and sets up nothing"),
    m("guard-follow-once", "guard.py", "    finally:\n        _LOCAL.busy = False", "    finally:\n        pass",
      "a second framework set-up in one process does not follow the new rank"),
    m("keep-no-reenable", "keep.py", "    for logger in enabled:\n        logger.disabled = False", "",
      "a framework's dictConfig disables the trainer's loggers"),
    m("keep-no-readd", "keep.py", "            if handler not in logger.handlers:\n                logger.addHandler(handler)",
      "            pass", "a dictConfig naming vllm strips logconf's handlers from it"),
    m("keep-reenables-everyone", "keep.py", "        if (name in _KEPT or name.startswith(under)) and name not in named_children",
      "        if name not in named_children", "other libraries' loggers that a framework disabled are enabled again"),
    m("keep-children-stay-disabled", "keep.py",
      "            if isinstance(logger, logging.Logger):\n                logger.disabled = False\n        _record()",
      "            pass\n        _record()", "apply() after a framework's dictConfig leaves the trainer's loggers disabled"),
    m("keep-disabled-drops", "keep.py", "        if not self.filter(record):\n            return", "        return",
      "disabled = True on skyrl drops its records from the rank file"),
    m("keep-disabled-not-seen", "keep.py",
      "            object.__setattr__(self, \"__class__\", _SilencedLogger if value else KeptLogger)", "            pass",
      "disabled = True set after apply() is not noticed: the logger's records are dropped"),
    m("keep-reenabled-stays-silenced", "keep.py", "_SilencedLogger if value else KeptLogger", "_SilencedLogger",
      "disabled = False again: the logger's records still reach only the rank files"),
    m("keep-disabled-to-all", "keep.py", "                if handler in _FILES and record.levelno >= handler.level:",
      "                if record.levelno >= handler.level:", "disabled = True on skyrl still prints to every handler"),
    m("keep-start-not-reset", "keep.py", "def _starting() -> None:\n    _state[\"built\"] = False",
      "def _starting() -> None:\n    pass", "a foreign dictConfig after check() is taken for logconf's own"),
    m("console-never-yields", "handlers.py", "        if not self._printed_elsewhere(record):\n            super().emit(record)",
      "        super().emit(record)", "a framework's root console and logconf's print every warning twice"),
    m("console-yields-at-any-level", "handlers.py",
      "                if record.levelno < handler.level or not isinstance(handler, logging.StreamHandler):",
      "                if not isinstance(handler, logging.StreamHandler):",
      "logconf yields to a console that will not print it"),
    m("console-both-logconf-print", "handlers.py", "        return nearest is not None and nearest is not self",
      "        return False", "two logconf consoles on one record's way both print it"),
    m("console-ignores-propagate", "handlers.py", "            current = current.parent if current.propagate else None",
      "            current = current.parent", "logconf yields to a console the record never reaches"),
    m("uvicorn-access-log-on", "integrations/uvicorn.py", "        if logger.handlers or logger.propagate:", "        if True:",
      "access_log=False turned back on"),
    m("uvicorn-explicit-config-rerouted", "integrations/uvicorn.py", "        if self.log_config is module.LOGGING_CONFIG:",
      "        if True:", "a caller's own log_config rerouted"),
    m("uvicorn-not-routed", "integrations/uvicorn.py", "            route()", "            pass",
      "uvicorn's default config prints on the console, not into the rank file"),
    m("skyrl-idx-ignored", "integrations/skyrl.py", "            set_rank(bound.arguments[\"server_idx\"])", "            pass",
      "an engine actor's server_idx is not its rank"),
    m("skyrl-idx-no-defaults", "integrations/skyrl.py", "            bound.apply_defaults()\n", "",
      "an engine actor created without server_idx keeps another rank"),
    m("skyrl-idx-after-init", "integrations/skyrl.py", "\\n\")\n        original(self, *args, **kwargs)", "\\n\")",
      "the engine actor's own __init__ never runs"),
    # -- report: logconf report, summary --top, JSON lines' host and Ray context ------------------
    m("report-first-error-latest", "timeline.py", 'return (a.time or "~", a.order, a.line) < (b.time or "~", b.order, b.line)',
      'return (a.time or "~", a.order, a.line) > (b.time or "~", b.order, b.line)', "the first error is the latest one"),
    m("report-tie-ignores-file-order", "timeline.py", '(a.time or "~", a.order, a.line) < (b.time or "~", b.order, b.line)',
      '(a.time or "~", a.line) < (b.time or "~", b.line)', "equal times: the first error is whichever file was read last"),
    m("report-gap-threshold-doubled", "timeline.py", "                    if ms - last >= quiet_ms:",
      "                    if ms - last >= 2 * quiet_ms:", "a silence inside a lane is a gap only at twice --quiet-s"),
    m("report-no-tail-gap", "timeline.py", "            gaps.append((self.last_ms, run_last))", "            pass",
      "a process that went quiet to the run's end shows no gap"),
    m("report-widen-loses-counts", "timeline.py", "into[k] += counts[k]", "into[k] = counts[k]",
      "bins merged when the grid widens keep one half's counts"),
    m("report-context-after-short", "timeline.py", "kept.after_left -= 1", "kept.after_left -= 3",
      "a kept record gets one entry after it, not three"),
    m("report-script-not-escaped", "report.py", '.replace("</", "<\\\\/")', "",
      "a record holding </script> ends the page's data script"),
    m("report-keeps-oldest-lasts", "timeline.py",
      "            self.lasts[kept.mark].append(kept)  # pushes out the oldest of the last few",
      "            if len(self.lasts[kept.mark]) < LAST_KEPT:\n                self.lasts[kept.mark].append(kept)",
      "the 'last' records kept are the 21st to 25th, not the last five"),
    m("report-stdio-counts-logged-traceback", "stdiocopies.py",
      'if raw and text.startswith("Traceback") and after_record.get(pid):',
      "if False:", "a logged record's traceback in the stdio copy counts as a raw error"),
    m("repeats-no-mask", "repeats.py", "        text = pattern.sub(replacement, text)", "        pass",
      "repeats that differ in a number are counted apart"),
    m("repeats-first-not-earliest", "repeats.py", "if time and (not repeat.first or time < repeat.first):", "if False:",
      "a message's first time is its first record in the file, not its earliest"),
    m("repeats-unbounded", "repeats.py", "            if len(self.seen) >= self.limit:", "            if False:",
      "memory grows with every distinct message"),
    m("repeats-short-by-unsaid", "repeats.py", "        self.short_by += floor", "        self.short_by += 0",
      "counts after a drop are called exact"),
    m("summary-top-not-counted", "summary.py", 'self.repeats.add(str(record["message"]), logger, level, entry.time)',
      "pass", "summary --top lists nothing"),
    m("summary-foreign-cached-wrong", "summary.py",
      "foreign = self._foreign_by_logger[logger] = _under(logger, self._foreign_roots)",
      "foreign = self._foreign_by_logger[logger] = False", "foreign records are no longer counted"),
    m("jsonlines-no-context", "jsonlines.py", "            **self._context,\n", "",
      "JSON lines lose the host (and Ray's context)"),
    m("jsonlines-host-not-from-env", "jsonlines.py", '"host": host_name(file=current_source())',
      '"host": host_name({}, file=current_source())', "LOGCONF_HOSTNAME is not the host of JSON lines"),
    # -- failures (issue 19): stackdump, stackgroups, stacks, stallwatch, failures, exithint ------
    m("stackdump-chain-always", "stackdump.py", "all_threads=True, chain=self.chained)", "all_threads=True, chain=True)",
      "a process with no handler of its own is chained to the default action and killed by its dump"),
    m("stackdump-rtmax-minus", "stackdump.py",
      'return base + offset if rest[0] == "+" else base - offset',
      "return base + offset", "SIGRTMAX-2 read as SIGRTMAX+2"),
    m("stackdump-rt-sign-unchecked", "stackdump.py", 'if rest[0] in "+-" and rest[1:].isdigit()',
      "if rest[1:].isdigit()", "SIGRTMIN*5 taken for SIGRTMIN+5"),
    m("rotation-size-digits-fast-path-units", "rotation.py", "if stripped.isdigit() and stripped.isascii():",
      "if stripped[:1].isdigit():", "a size with a unit (64K) read by the plain-number path"),
    m("yamlcache-checksum-constant", "yamlcache.py", "value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF",
      "value = value & 0xFFFFFFFF", "every config shares one cache entry (they take turns, each parse thrown away)"),
    m("stackdump-record-left", "stackdump.py", "for path in (self.path, self.dump):", "for path in (self.dump,):",
      "a process that ended leaves its registration behind"),
    m("stackdump-refused-unnamed", "stackdump.py", "        if name in _REFUSED:\n", "        if name in ():\n",
      "SIGKILL not refused by name"),
    m("stackgroups-stdlib-kept", "stackgroups.py", "        if not _STDLIB.search(frame.file):",
      "        if _STDLIB.search(frame.file):", "the odd one out named by threading.wait, not by its own function"),
    m("stackgroups-tie-majority", "stackgroups.py", "len(groups[0].members) > len(groups[1].members)",
      "len(groups[0].members) >= len(groups[1].members)", "two equal groups: one taken for the odd one out"),
    m("stackgroups-kind-keeps-dp", "stackgroups.py", r'_NUMBERED = re.compile(r"(?:[-_](?:DP)?\d+|\d+)$")',
      r'_NUMBERED = re.compile(r"(?:[-_]\d+|\d+)$")', "EngineCore_DP0 and EngineCore_DP1 are not one kind"),
    m("stackgroups-short-runs", "stackgroups.py", "if len(run) > 2 else", "if len(run) > 1 else", "ranks 0, 1 said as 0 to 1"),
    m("stacks-reused-pid", "stacks.py", 'if process_start(pid) != record.get("start"):', "if False:",
      "a record whose pid now belongs to another process is kept"),
    m("stacks-exec-signalled", "stacks.py", "                if not catches(caught_signals(dump.pid), signum):",
      "                if False:", "a process that exec-ed (default action: end) is signalled"),
    m("stacks-missing-counted", "stacks.py", "got = len(collection.dumps) - len(collection.missing)",
      "got = len(collection.dumps)", "the count of dumps includes those that never came"),
    m("stallwatch-fires-again", "stallwatch.py", "if not fired and now - last_progress >= self.stall_s:",
      "if now - last_progress >= self.stall_s:", "a stall dumps the stacks at every look, not once"),
    m("stallwatch-warnings-progress", "stallwatch.py", 'entry.record.get("logger") != LOGGER',
      'entry.record.get("logger") == LOGGER', "another host's stall warnings re-arm this one"),
    m("stallwatch-outlives-run", "stallwatch.py", "if seen or now - started > START_GRACE_S:",
      "if now - started > START_GRACE_S:", "the watcher stays after the run ended"),
    m("stallwatch-interval", "stallwatch.py", "max(0.05, stall_s / 4)", "max(0.05, stall_s / 2)",
      "the files are looked at half as often as documented"),
    m("failures-warning-is-error", "failures.py", "_ERROR = 40", "_ERROR = 30", "WARNING records counted as errors"),
    m("failures-echo-owns-any-traceback", "failures.py",
      'if record and (owned is None or (node, key[1], record.group("time")) in owned):', "if record:",
      "a raw traceback after a console line is taken for that record's"),
    m("failures-raw-first-by-its-earliest", "failures.py", "(record is None or raw.until < record.time)",
      "(record is None or raw.time < record.time)", "a raw traceback that may have come later is named the first error"),
    m("failures-raw-duplicate-counted", "failures.py", "if mask(message) in report.logged.get((node, raw.pid), ()):",
      "if False:", "multiprocessing's raw copy of an error EngineCore logged counted as another error"),
    m("failures-interleaved-line-ends-traceback", "failures.py",
      "if open_block is not None and record and open_block[0].echo_time is None:", "if False:",
      "another thread's console line inside a raw traceback taken for its exception line"),
    m("failures-quiet-ignores-peers", "failures.py", "(peers[kind] < 2 or latest[kind] - last > quiet_s)",
      "peers[kind] < 2", "a worker that stopped before its peers is not marked"),
    m("exithint-any-last-value", "exithint.py", "    error = _uncaught()\n", '    error = getattr(sys, "last_value", None)\n',
      "a tool that kept a caught exception in sys.last_value (pytest) gets a pointer at exit"),
    m("stackdump-name-learnt-late", "stackdump.py", "            self.dirs.append(log_dir)\n        self.retarget()",
      "            self.dirs.append(log_dir)\n            self.retarget()", "a spawn child stays MainProcess in its record"),
    m("exithint-ctrl-c", "exithint.py", "if error is None or isinstance(error, KeyboardInterrupt) or",
      "if error is None or", "a Ctrl-C ends with a pointer at an error"),
    m("exithint-whole-history", "exithint.py", "report = scan(directory, since=utc(since), deadline_s=budget_s)",
      'report = scan(directory, since="", deadline_s=budget_s)', "an older run's error named as this run's"),
    m("exithint-short-tail", "exithint.py", "TAIL = 6", "TAIL = 2", "the traceback's lines cut to the last two"),
    m("tee-registers", "tee.py", "    reachable = False  # the tee is logconf's helper",
      "    reachable = True  # the tee is logconf's helper",
      "the stdio tee registered as a process of the run"),
    m("logfiles-gathered-stdio", "logfiles.py", "if sets_in(directory) or not rank_names(directory):", "if True:",
      "a gathered directory's stdio copies not read"),
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
      "if removed is not None and removed.files > self.removed_files:  # each says what was removed in all\n"
      "            self.removed_files, self.removed_bytes, self.removed_disk_bytes = removed",
      "if removed is not None:\n            self.removed_files += removed.files\n"
      "            self.removed_bytes += removed.log_bytes", "summary adds up retention's running totals"),
    m("tail-history-live-only", "tail.py", "        if seen >= count or index == 0:", "        if True:",
      "tail -n reads only the live file of a rotated rank file"),
    m("gather-rotated-copied-again", "gather.py", "    if copied_before(target):\n        return done\n", "",
      "a rotated file copied again on every gather"),
    m("jsonlines-unicode-breaks-raw", "jsonlines.py", '        if "\\x85" in line or "\\u2028" in line or "\\u2029" in line:',
      "        if False:", "U+2028 in a message splits its JSON line in two for str.splitlines() and JavaScript"),
    # rotsets: errors and report read a rotated rank file (and its stdio copies) as one
    m("errors-rank-live-only", "failures.py", "enumerate(found.labelled()):", "enumerate(found.labelled()[-1:]):",
      "errors reads only the live file of a rotated rank file: the first error in a rotated file is missed"),
    m("errors-stdio-live-only", "failures.py", "    for path, part in copy.labelled():",
      "    for path, part in copy.labelled()[-1:]:",
      "errors reads only the live .stdio.log copy"),
    m("report-kept-names-lane", "timeline.py", '"file": self.file,\n            "time": self.time,',
      '"file": self.lane.file,\n            "time": self.time,',
      "a kept record of a rotated file named by the live file, with another file's line number"),
    m("report-json-part-as-text", "timeline.py", "not live_name(entry.file).endswith", "not entry.file.endswith",
      "a kept JSON record of a rotated file shown as its raw line"),
    # -- scale: rotation's hot path, and the tools on more files than ulimit -n ---------------------
    m("scale-size-check-every-record", "handlers.py", "        if self._room <= 0:  # this process's own bytes fill the file",
      "        if True:  # this process's own bytes fill the file", "the size check stats the file at every record"),
    m("scale-compression-in-logging-thread", "rotation.py", "        worker().submit(directory, name, self.policy, self.upkeep)",
      "        self.upkeep(directory, name, self.policy)", "the record that rotates waits for the compression"),
    m("scale-errors-keeps-files-open", "failures.py", "        for entry in iter_entries(path, order, part):",
      "        _set_entries.__dict__.setdefault('held', []).append(open(path, 'rb'))  # noqa: SIM115\n"
      "        for entry in iter_entries(path, order, part):", "errors keeps every rank file open: EMFILE under ulimit -n"),
    m("scale-report-keeps-files-open", "summary.py",
      "        yield from iter_entries(path, order, part, tally=tally)",
      "        summary.__dict__.setdefault('held', []).append(open(path, 'rb'))  # noqa: SIM115\n"
      "        yield from iter_entries(path, order, part, tally=tally)",
      "report keeps every rank file open: EMFILE under ulimit -n"),
    # -- the demo package's helpers (tests/test_demo_helpers.py; the jobs themselves need Ray and vLLM) --
    m("demo-table-loggers-for-processes", "demo/__main__.py", "| {len(s.loggers)} | {s.foreign} |",
      "| {len(s.processes)} | {s.foreign} |", "make demo's table counts processes under loggers"),
    m("demo-skyrl-pythonpath-twice", "demo/skyrl.py", "if p and p not in (REPO, SHIM)]", "if p]",
      "the SkyRL job's PYTHONPATH names the checkout and the shim twice"),
    m("demo-multinode-driver-dir", "demo/multinode.py", '    env.pop("LOGCONF_DIR", None)\n', "",
      "the two-node job pins the driver's LOGCONF_DIR on every node"),
    m("demo-hooks-warning-always", "demo/hooks.py", 'if os.environ.get(ENGINECORE_WARNING_ENV) != "1":',
      'if os.environ.get(ENGINECORE_WARNING_ENV) == "0":', "the EngineCore warning scheduler runs unasked"),
    m("demo-actors-levels-outer", "demo/skyrl_actors.py", "        for via, name in loggers\n        for level in levels\n",
      "        for level in levels\n        for via, name in loggers\n", "tagged records out of the planned order"),
    m("demo-actors-emit-level", "demo/skyrl_actors.py",
      'logging.getLogger(record["logger"]).log(getattr(logging, record["level"]), record["message"])',
      'logging.getLogger(record["logger"]).info(record["message"])', "every stdlib tagged record logged at INFO"),
    # -- coverage of every module --------------------------------------------------------------
    m("errors-expected-dropped", "errors.py", "        if expected:\n            message +=",
      "        if not expected:\n            message +=", "a ConfigError's message leaves out what would be valid"),
    m("errors-pickle-loses-expected", "errors.py", "self.value, self.problem, self.expected))",
      "self.value, self.problem))", "a ConfigError sent from a Ray actor or spawn child loses what would be valid"),
    m("errors-source-outlives-apply", "errors.py", "        _SOURCE.reset(token)", "        pass",
      "a later error names the config file applied before it"),
    m("errors-vllm-path-first", "errors.py", '_SOURCE.get() or os.environ.get("VLLM_LOGGING_CONFIG_PATH")',
      'os.environ.get("VLLM_LOGGING_CONFIG_PATH") or _SOURCE.get()',
      "an error in the trainer's YAML named as vLLM's JSON when both are set"),
    m("ranks-env-not-inherited", "ranks.py", '    os.environ["LOGCONF_RANK"] = value\n', "",
      "children started after set_rank() write to the unranked file"),
    m("ranks-empty-accepted", "ranks.py", '    if value == "":', "    if value is None:",
      "set_rank('') accepted"),
    m("ranks-formatters-not-refreshed", "ranks.py", "handlers.switch_rank(refresh_all)",
      "handlers.switch_rank(lambda: None)", "files move to the new rank but records still say the old one"),
    m("records-json-any-dict", "records.py",
      'if isinstance(record, dict) and {"time", "level", "logger", "message"} <= record.keys():',
      "if isinstance(record, dict):", "any JSON object on a line read as a logconf record"),
    m("records-pid-text", "records.py", '    record["pid"] = int(record["pid"])\n', "",
      "a text record's pid read as a string: it never equals a JSON record's"),
    m("reports-raise-exceptions-ignored", "reports.py", "    if not logging.raiseExceptions:", "    if False:",
      "logging.raiseExceptions = False does not silence a formatting error"),
    m("reports-call-stack-inside-logconf", "reports.py", "in (_LOGGING_DIR, _OWN_DIR):", "in (_LOGGING_DIR,):",
      "a formatting error's call stack stops inside logconf, not at the caller's logging call"),
    m("reports-recovered-still-failing", "reports.py", "        self.failing = False\n        dropped", "        dropped",
      "a second outage after a recovery is never told"),
    m("sources-json-error-line-off", "sources.py", "_line(text, exc.lineno),", "_line(text, exc.lineno + 1),",
      "a malformed JSON config's error quotes the line after the bad one"),
    m("sources-yaml-line-off", "sources.py", 'where = f"line {mark.line + 1} column', 'where = f"line {mark.line} column',
      "a malformed YAML config's error names the line before the bad one"),
    m("sources-list-accepted", "sources.py", "    if not isinstance(config, dict):\n        raise",
      "    if config is None:\n        raise", "a config whose top level is a list reaches dictConfig"),
    m("sources-entry-not-reset", "sources.py", "        _ENTRY.reset(token)", "        pass",
      "an error after a config check is named under the last entry checked"),
    m("runs-shuffled-not-marked", "runs.py", "                    self.runs[-1].shuffled = True", "                    pass",
      "a run with records a few places late is read without its window: merge out of order"),
    m("runs-first-line-off-by-one", "runs.py", 'text.count(b"\\n", 1, at + 1) + 1))', 'text.count(b"\\n", 1, at + 1)))',
      "a new run's records carry the line number before their own"),
    m("runs-one-run-too-many", "runs.py", "and len(self.runs) < MAX_RUNS:", "and len(self.runs) <= MAX_RUNS:",
      "a file in reverse order opens MAX_RUNS + 1 readers"),
    m("raycontext-worker-is-daemon", "raycontext.py", "    if is_ray_worker(path):\n        return False\n", "",
      "a Ray worker (default_worker.py, inside the ray package) taken for one of Ray's daemons"),
    m("raycontext-generic-rank-ignored", "raycontext.py", 'if "LOGCONF_RANK" in os.environ or "RANK" in os.environ:',
      'if "LOGCONF_RANK" in os.environ:', "an actor started with RANK set holds its records as if unranked"),
    m("raycontext-ray-cli-not-daemon", "raycontext.py", '    if parts[-1] == "ray":', '    if parts[-1] == "ray.py":',
      "`ray start` taken for a process of the run"),
    m("openfiles-reopen-unchecked", "openfiles.py",
      "if self.identity is not None and ((info.st_dev, info.st_ino) != self.identity or not head.startswith(self.head)):",
      "if False:", "a reopened descriptor reads whatever file now has the path (rotated: the new live file)"),
    m("openfiles-pool-takes-every-fd", "openfiles.py", "return max(8, min(soft // 4, 512))", "return max(8, min(soft, 512))",
      "the pool takes every descriptor the process may open: EMFILE for the rest under ulimit -n"),
    m("openfiles-compressed-meanwhile-lost", "openfiles.py",
      'if self.path.endswith(".gz") or not os.path.exists(self.path + ".gz"):', "if True:",
      "a file compressed while it was read (path.gz) ends the reading"),
    m("report-levels-not-summed", "report.py", "levels[level] = levels.get(level, 0) + count", "levels[level] = count",
      "the page's level counts are the last file's, not the run's"),
    m("report-first-is-latest", "report.py", "first = min((s.first for", "first = max((s.first for",
      "the run's start shown as the latest file's first record"),
    m("report-page-budget-ignored", "report.py", "if used + kept.size > PAGE_TEXT_BYTES and chosen:",
      "if used + kept.size > PAGE_TEXT_BYTES and not chosen:", "the page keeps every record's text, whatever its size"),
    m("report-stdio-not-read", "report.py", "    if os.path.isdir(directory):\n        for name in stdio_names",
      "    if not os.path.isdir(directory):\n        for name in stdio_names", "the .stdio.log copies left out of the page"),
    m("stdiocopies-kept-unbounded", "stdiocopies.py", "if len(copy.kept) < STDIO_KEPT:", "if True:",
      "every raw error of a copy kept in the page"),
    m("stdiocopies-bare-exception-line", "stdiocopies.py", "(_RAW_START.match(text) or _RAW_LINE.match(text))",
      "_RAW_START.match(text)", "a fatal exception line without a traceback (SystemExit: ...) not counted"),
    m("stdiocopies-processes-by-name", "stdiocopies.py", "copy.processes[f\"{match['process']}:{pid}\"] += 1",
      "copy.processes[match['process']] += 1", "two processes of one name counted as one"),
    m("rotation-mebibyte-decimal", "rotation.py", '"m": 1 << 20,', '"m": 10**6,', "256M read as 256,000,000 bytes"),
    m("rotation-keep-zero-accepted", "rotation.py", "if keep is not None and keep < 1:", "if keep is not None and keep < 0:",
      "rotate_keep 0 accepted: every rotated file removed at once"),
    m("rotation-rotates-under-size", "rotation.py",
      "                if info.st_size < self.max_bytes:\n                    return False\n", "",
      "a writer that saw the size before another's rotation renames the fresh file too"),
    m("ray-env-driver-overrides-given", "ray_env.py",
      "merged = {**{k: os.environ[k] for k in names if k in os.environ}, **given}",
      "merged = {**given, **{k: os.environ[k] for k in names if k in os.environ}}",
      "the driver's environment overrides what runtime_env's env_vars set"),
    m("ray-env-relative-dir", "ray_env.py", 'os.path.abspath(os.path.expanduser(merged["LOGCONF_DIR"]))',
      'os.path.expanduser(merged["LOGCONF_DIR"])', "a relative LOGCONF_DIR resolved in each worker's working directory"),
    m("ray-env-user-hook-dropped", "ray_env.py", 'env["worker_process_setup_hook"], env_vars[_NEXT_HOOK_ENV] = SETUP_HOOK, hook',
      'env["worker_process_setup_hook"] = SETUP_HOOK', "the user's own worker_process_setup_hook never runs"),
    m("ray-env-rank-not-copied", "ray_env.py", 'for name in (*names, "LOGCONF_RANK"):', "for name in names:",
      "vLLM's Ray-executor workers do not get the engine's rank"),
    m("tail-truncation-not-noticed", "tail.py", 'if not self.path.endswith(".gz") and self._size() < start:', "if False:",
      "tail -f stops at a copytruncate'd file"),
    m("tail-one-too-many", "tail.py", "if keep(e)), maxlen=count))\n", "if keep(e)), maxlen=count + 1))\n",
      "tail -n N prints N + 1 records"),
    m("tail-last-record-held", "tail.py", "        if not self.lines.unfinished:  # a record", "        if False:  # a record",
      "tail -f shows a record only once the next one arrives"),
    m("loguru-levels-not-registered", "loguru_bridge.py", "    register_levels()\n    _patch(loguru)", "    _patch(loguru)",
      "Loguru's SUCCESS and TRACE written as 'Level 25' and 'Level 5'"),
    m("loguru-later-console-sink-printed", "loguru_bridge.py",
      '            kwargs["filter"] = _never  # logconf', "            pass  # logconf",
      "a console sink added after the bridge prints every line a second time"),
    m("loguru-remove-all-stops-forwarding", "loguru_bridge.py", "            _add_sink(_sink_logger)  # a framework",
      "            pass  # a framework", "SkyRL's logger.remove() in a worker stops the bridge"),
    m("loguru-intercepted-forwarded-back", "loguru_bridge.py", 'if getattr(_local, "busy", False) or _from_stdlib():',
      'if getattr(_local, "busy", False):', "a stdlib record an intercept handler sends into Loguru is written twice"),
    m("loguru-reserved-extra-kept", "loguru_bridge.py", '(k if k not in _RESERVED else f"extra_{k}")', "k",
      "logger.bind(name=...) makes makeRecord raise: the record is lost"),
    m("integrations-hook-not-marked-run", "integrations/__init__.py", "            return\n        _done.add(name)\n",
      "            return\n", "a framework's hook runs again at each install() (apply() calls it each time)"),
    m("integrations-early-import-unhooked", "integrations/__init__.py",
      "            if not getattr(module.__spec__, \"_initializing\", False):\n                _run(name, module)",
      "            if not getattr(module.__spec__, \"_initializing\", False):\n                pass",
      "a framework imported before install() never gets its hook"),
    m("integrations-hook-before-module", "integrations/__init__.py",
      "            exec_module(module)\n            _run(fullname, module)",
      "            _run(fullname, module)\n            exec_module(module)",
      "the hook runs before the module's own code: the module overwrites what it fixed"),
    m("integrations-failing-hook-raises", "integrations/__init__.py", "    except Exception as exc:\n        tell(",
      "    except ImportError as exc:\n        tell(", "a hook that fails breaks the framework's import"),
    m("cli-summary-always-ok", "cli.py", 'return 0 if document["ok"] else 1', "return 0",
      "logconf summary exits 0 when files hold problems"),
    m("cli-errors-exit-zero", "cli.py", "return 1 if report.errors else 0", "return 0",
      "logconf errors exits 0 on a run with errors"),
    m("cli-merge-filter-ignored", "cli.py", "_writer(args)(filter(keep, entries) if keep.active else entries)",
      "_writer(args)(entries)", "logconf merge --level/--grep print every record"),
    m("cli-config-error-traceback", "cli.py", "    except (ConfigError, LogDirError) as exc:",
      "    except LogDirError as exc:", "a bad config or argument ends in a traceback, not one line and exit 2"),
    m("cli-tail-default-lines", "cli.py", 'type=int, default=10, metavar="N"', 'type=int, default=1, metavar="N"',
      "logconf tail prints one record, not the documented 10"),
    m("hold-time-from-configuration", "hold.py", "            held.when_due(due)\n",
      "            held.when_due(due)\n            held._start_timer()\n",
      "a Ray worker that waits for its actor longer than the hold sends its __init__ records to rank 0"),
    # -- start-up: what a job process loads and does in apply() -----------------------------------
    m("startup-plan-key-directory-only", "handlers.py", "    return repr(sorted(named.items()))",
      '    return repr(named.get("directory"))', "a second rank file handler in the same directory takes the first one's plan"),
    m("startup-loguru-bridge-always", "config.py",
      '    if "loguru" in sys.modules:\n        from logconf import loguru_bridge\n\n        loguru_bridge.install()',
      '    if True:\n        from logconf import loguru_bridge\n\n        loguru_bridge.install()',
      "every applying process loads the Loguru bridge"),
    m("startup-holds-unseen", "handlers.py", "    return loaded.holding() if loaded is not None else []", "    return []",
      "set_rank and exit never see the holds: held records stay in the spill file"),
    m("startup-upkeep-skipped", "rotation.py", "settled_all = upkeep(directory, name, policy)", "settled_all = True",
      "rotated files are never compressed nor removed by retention"),
    m("startup-every-field-found", "templating.py", "field_values[node.name] = field(node.name, env, file=file)\n",
      "field_values.update((n, field(n, env, file=file)) for n in FIELDS)\n",
      "every template with a field reads the password database and checks the host name, used or not"),
    m("startup-source-shared-by-threads", "errors.py", "class PerThread(threading.local):", "class PerThread:",
      "a config applied in one thread is named by another thread's errors"),
    m("startup-exit-hint-module-at-apply", "config.py", "    from logconf import integrations  # here:",
      "    from logconf import exithint, integrations  # noqa: F401  # here:", "every applying process loads the exit hint"),
    m("startup-ranks-at-apply", "config.py", "from logconf.sources import building, load\n",
      "from logconf.sources import building, load\nfrom logconf.ranks import set_rank  # noqa: F401\n",
      "every applying process loads set_rank's module"),
    m("startup-exit-hint-any-pid", "config.py", "    if pid == os.getpid() and getattr(", "    if getattr(",
      "a forked child that applies logconf and dies points at the first error twice (its own handler and the driver's)"),
    m("stall-gone-bytes-no-progress", "stallwatch.py", "        if not read:", "        if False:",
      "a rank file whose new bytes were renamed away before they were read counts as a stall's own records"),
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


def first_tests(root: Path, module: str) -> list[str]:
    """Every test file under ``root``, those that name ``module`` (a path like logconf/hold.py) first.

    A mutant is nearly always killed by the tests of its own module: run first, with -x, they end
    the run in seconds instead of after the whole suite. A survivor still meets every test. (pytest
    orders files given one by one as given; a file given beside its directory is run in the
    directory's order, hence the full list.)
    """
    dotted = module.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    stem = dotted.rsplit(".", 1)[-1]
    parent = dotted.rsplit(".", 1)[0]
    names = re.compile(
        rf"\b{re.escape(dotted)}\b|\b{re.escape(module)}\b|^from {re.escape(parent)} import [^\n]*\b{re.escape(stem)}\b",
        re.MULTILINE,
    )
    package = parent.rsplit(".", 1)[-1]  # integrations for logconf.integrations.skyrl
    found = sorted(p.relative_to(root).as_posix() for p in (root / "tests").rglob("test_*.py"))
    files = [f for f in found if "/real/" not in f] + [f for f in found if "/real/" in f]  # real: not in the fast suite
    own = [f for f in files if stem in Path(f).stem or (package != "logconf" and package in Path(f).stem)]
    naming = [f for f in files if f not in own and names.search((root / f).read_text(encoding="utf-8"))]
    return own + naming + [f for f in files if f not in own and f not in naming]


def run_suite(run: Run, copy: Path, confirm: bool, module: str | None = None) -> tuple[str, str, float]:
    """Run the fast suite in ``copy`` with -x; return (outcome, killing test or note, seconds).

    With ``module`` (the mutated file) and the default test selection, that module's tests run first.

    With ``confirm``, a kill counts only if the killing test fails again on the mutant and passes on
    the unmutated code; otherwise that test is flaky on this machine (a ratio under heavy load): it
    is deselected and the suite runs again.
    """
    deselected: list[str] = list(run.left_out)
    total = 0.0
    while True:
        tests = first_tests(copy, module) if module is not None and run.tests == ["tests"] else run.tests
        args = ["-x", *(f"--deselect={test}" for test in deselected), *tests]
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
        file = None
        if mutant is not None:
            variant = _variant(mutant, copy)
            if variant is None:
                return "stale", stale(mutant, copy) or "", 0.0
            file, old, new = variant
            path = copy / file
            path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
        result = run_suite(run, copy, confirm=mutant is not None, module=file)
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
