"""Every way a user's edit of a shipped config can go wrong, generated, and what logconf makes of each.

``cases()`` derives the edits from the shipped files themselves: every key removed, every key
misspelt (one letter doubled: ``file_mode`` -> ``fille_mode``), every value (list items included)
replaced by a value of another type or by an unknown template variable. ``main()`` runs them all
in one process of its own (an accepted ``stdio: true`` starts a real stdio tee: not in pytest's
process) and writes one line of JSON per edit that went wrong, saying why.

For each edit, ``logconf check`` (``check(load(file), file)``) and ``apply()`` must agree, and
either refuse it with one ConfigError that names the file, the key (the edited one, or for a
removal any), the value and what is valid (a misspelt key: the valid name it is close to), after
which the configuration applied before still writes where it wrote; or accept it, and then every
logger the edited file configures writes to each rank file it names.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import logconf
from logconf import ConfigError, guard, integrations
from logconf.config import check, load
from logconf.handlers import RankFileHandler

WRONG = {"int": 7, "list": [7], "dict": {"x": 7}, "None": None, "bool": True, "unknown variable": "${LOGCONF_NO_SUCH_VAR}"}
SHIPPED = {"vllm_logging.json": logconf.vllm_config_path(), "skyrl_logging.yaml": logconf.skyrl_config_path()}
_SHIPPED_CONFIGS = {name: load(file) for name, file in SHIPPED.items()}
FACTORY_SECTIONS = ("formatters", "filters", "handlers")
Path_ = tuple[Any, ...]  # keys and list indexes from the top of a config



def _written(path: str) -> str:
    """The text of a rank file and of its rotated files (a tiny rotate_bytes moves every record into one).

    The logging thread's worker rotates in the background: the file may be renamed, and a new one opened
    at its path, between the listing and the reads. A read counts only when a second listing finds the
    same parts and the same live file; otherwise (or when a part moved: compressed) it is done again.
    """
    from logconf.logfiles import sets_in
    from logconf.openfiles import open_part

    def listing() -> tuple[list[str], int] | None:
        found = sets_in(os.path.dirname(path)).get(os.path.basename(path))
        return None if found is None else (found.paths, found.live_inode)

    for _ in range(50):
        before = listing()
        parts = before[0] if before is not None else [path]
        try:
            texts = []
            for part in parts:
                with open_part(part) as file:  # a .gz part decompressed, as the tools read it
                    texts.append(file.read().decode("utf-8"))
        except FileNotFoundError:
            continue
        if listing() == before:
            return "".join(texts)
    return Path(path).read_text(encoding="utf-8")


def paths(node: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every key and list item of ``node``, parents before children."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield (*prefix, key)
        yield from paths(value, (*prefix, key))


def misspelt(key: str) -> str:
    """One letter doubled, as a hurried hand types it: ``file_mode`` -> ``fille_mode``."""
    at = min(2, len(key) - 1)
    return key[: at + 1] + key[at:]


def dotted(path: Path_) -> str:
    """The ConfigError key of ``path``: list indexes belong to their list's key."""
    return ".".join(str(part) for part in path if not isinstance(part, int))


def edited(config: dict, path: Path_, op: str, value: Any = None) -> dict:
    """Return a copy of ``config`` with ``op`` (remove, misspell, replace) done at ``path``, order kept."""
    copy = json.loads(json.dumps(config))
    parent = copy
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if op == "remove":
        del parent[last]
    elif op == "replace":
        parent[last] = value
    elif isinstance(last, int):  # a list item: misspell the name it holds
        parent[last] = misspelt(parent[last])
    else:
        items = [(misspelt(k) if k == last else k, v) for k, v in parent.items()]
        parent.clear()
        parent.update(items)
    return copy


def cases() -> list[dict[str, Any]]:
    """Every edit of every shipped config, each as a dict: shipped, op, path, kind, value."""
    found = []
    for name, config in _SHIPPED_CONFIGS.items():
        for path in paths(config):
            original = _at(config, path)
            found.append({"shipped": name, "op": "remove", "path": path})
            if not isinstance(path[-1], int) or isinstance(original, str):
                found.append({"shipped": name, "op": "misspell", "path": path})
            for kind, value in WRONG.items():
                if type(value) is not type(original) or value != original:
                    found.append({"shipped": name, "op": "replace", "path": path, "kind": kind, "value": value})
    return found


def _at(config: Any, path: Path_) -> Any:
    for part in path:
        config = config[part]
    return config


def _fixed_vocabulary(path: Path_) -> bool:
    """Whether the key at ``path`` is one of a fixed set (dictConfig's, or a factory's arguments)."""
    parent = path[:-1]
    return parent in ((), ("root",)) or (len(parent) == 2 and parent[0] in (*FACTORY_SECTIONS, "loggers"))


def _write(config: dict, shipped: str, where: Path) -> Path:
    if shipped.endswith(".json"):
        where = where.with_suffix(".json")
        where.write_text(json.dumps(config, indent=2), encoding="utf-8")
    else:  # YAML in its flow style, which is JSON's: PyYAML parses it, and writing it costs next to nothing
        where = where.with_suffix(".yaml")
        where.write_text(json.dumps(config, indent=1), encoding="utf-8")
    return where


def judge_error(case: dict[str, Any], file: Path, error: ConfigError) -> str | None:
    """Say what is wrong with the ConfigError an edit got, or None if it is a clear one."""
    path, op = case["path"], case["op"]
    text = str(error)
    if error.file != str(file) or not text.startswith(f"{file}: {error.key}: "):
        return f"does not name the file first: {text}"
    if not error.key or error.key.startswith("<") or not error.expected:
        return f"names no key or nothing valid: {text}"
    if "\n" in text:
        return f"is more than one line: {text!r}"
    here = dotted(path)
    if op == "replace":
        value = case["value"]
        if not (error.key == here or error.key.startswith(here + ".")):
            return f"names key {error.key}, not the edited {here}: {text}"
        if repr(value) not in text and not (isinstance(value, dict) and error.key != here):
            return f"does not show the value {value!r}: {text}"
    elif op == "misspell":
        original = path[-1] if not isinstance(path[-1], int) else _at(_SHIPPED_CONFIGS[case["shipped"]], path)
        if original not in text:
            return f"does not name {original!r}, which the misspelt key or name stood for: {text}"
        if _fixed_vocabulary(path) and not isinstance(path[-1], int):
            wrong = dotted((*path[:-1], misspelt(path[-1])))
            if error.key != wrong or f"did you mean {original!r}" not in error.expected:
                return f"does not name the misspelt key {wrong} and the valid {original!r}: {text}"
    return None


def _probe(case_number: int, good: dict[str, Path], offsets: dict[str, int]) -> str | None:
    """Log through the configuration applied before; say what did not land where it landed before."""
    for logger, name in (("skyrl_train.probe", "skyrl"), ("vllm.probe", "vllm")):
        message = f"previous config still works after case {case_number}"
        logging.getLogger(logger).info(message)
        with open(good[name], encoding="utf-8") as file:
            file.seek(offsets[name])
            new = file.read()
        offsets[name] += len(new.encode("utf-8"))
        if message not in new:
            return f"after the refusal, {logger} no longer writes to {good[name]}"
    return None


def _works(case_number: int, config: dict) -> str | None:
    """Log through every logger the accepted config names; say which rank file did not get it."""
    loggers = dict(config.get("loggers") or {})
    if isinstance(config.get("root"), dict):
        loggers[""] = config["root"]
    for name, entry in loggers.items():
        logger = logging.getLogger(name)
        message = f"case {case_number} through logger {name!r}"
        logger.critical(message)
        for handler_name in entry.get("handlers") or []:
            handler = logging._handlers.get(handler_name)  # type: ignore[attr-defined]
            if handler is None or handler not in logger.handlers:
                return f"logger {name!r} did not get handler {handler_name!r}"
            if isinstance(handler, RankFileHandler):
                try:
                    text = _written(handler.path)
                except OSError as exc:
                    return f"logger {name!r}: {handler.path} unreadable: {exc}"
                if message not in text:
                    return f"logger {name!r} wrote nothing to {handler.path}"
    return None


def _reset(good_dir: Path) -> None:
    """Blank every logger, then apply the shipped files again: the configuration before each edit."""
    guard.release_root()
    integrations.uninstall()
    for logger in [logging.root, *logging.root.manager.loggerDict.values()]:
        if isinstance(logger, logging.Logger):
            logger.handlers, logger.propagate, logger.disabled, logger.filters = [], True, False, []
            logger.setLevel(logging.WARNING if logger is logging.root else logging.NOTSET)
    os.environ["LOGCONF_DIR"] = str(good_dir)
    logconf.apply(SHIPPED["skyrl_logging.yaml"])
    logconf.apply(SHIPPED["vllm_logging.json"])


def run(
    case_number: int, case: dict[str, Any], work: Path, good: dict[str, Path], offsets: dict[str, int]
) -> tuple[str, str | None]:
    """Run one edit: return whether it was refused or accepted, and what went wrong (None: nothing)."""
    config = edited(_SHIPPED_CONFIGS[case["shipped"]], case["path"], case["op"], case.get("value"))
    file = _write(config, case["shipped"], work / f"case-{case_number}")
    os.environ["LOGCONF_DIR"] = str(work / "edited")
    checked: ConfigError | None = None
    try:
        check(load(file), str(file))  # what `logconf check FILE` runs
    except ConfigError as exc:
        checked = exc
    except Exception:
        return "crashed", "logconf check raised " + _last_lines()
    try:
        logconf.apply(file)
    except ConfigError as exc:
        if checked is None or str(checked) != str(exc):
            return "refused", f"logconf check said {checked}, apply() said {exc}"
        return "refused", judge_error(case, file, exc) or _probe(case_number, good, offsets)
    except Exception:
        return "crashed", "apply() raised " + _last_lines()
    try:
        if checked is not None:
            return "accepted", f"logconf check refused it ({checked}), apply() accepted it"
        if case["op"] == "misspell" and _fixed_vocabulary(case["path"]) and not isinstance(case["path"][-1], int):
            return "accepted", "a misspelt key was accepted: dictConfig ignores it, or hands it to a factory"
        return "accepted", _works(case_number, config)
    finally:
        _reset(good["skyrl"].parent)


def _last_lines() -> str:
    return traceback.format_exc(limit=-3).strip().replace("\n", " | ")


def main(work: Path, part: int = 0, parts: int = 1) -> int:
    """Run every ``parts``-th case from ``part`` on; write ``bad.jsonl`` (one line per edit gone wrong) and ``counts.json``."""
    good_dir = work / "good"
    _reset(good_dir)
    good = {"skyrl": good_dir / "skyrl_rank_0.log", "vllm": good_dir / "vllm_rank_0.log"}
    for path in good.values():
        path.touch()
    offsets = {name: path.stat().st_size for name, path in good.items()}
    counts: dict[str, int] = {"cases": 0, "refused": 0, "accepted": 0, "crashed": 0, "bad": 0}
    with open(work / "bad.jsonl", "w", encoding="utf-8") as bad:
        for number, case in enumerate(cases()):
            if number % parts != part:
                continue
            outcome, problem = run(number, case, work, good, offsets)
            counts["cases"] += 1
            counts[outcome] += 1
            if problem is not None:
                counts["bad"] += 1
                shown = {**{k: v for k, v in case.items() if k != "value"}, "value": repr(case.get("value"))}
                bad.write(json.dumps({"case": shown, "outcome": outcome, "problem": problem}) + "\n")
    (work / "counts.json").write_text(json.dumps(counts), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
