"""Mask secrets in formatted log lines: bearer tokens, API keys and credential values.

Applied by logconf's formatters to the whole line (message and traceback), after JSON
encoding too: replacements never touch quotes or backslashes, so JSON stays valid. A few
substring tests decide whether the regular expression runs at all, which keeps the cost
per record small on the lines that carry nothing to mask.
"""

from __future__ import annotations

import functools
import re

__all__ = ["MASK", "may_hold_secret", "redact"]

MASK = "***"

# "token" is a key only when a quote, a backslash, a blank or the separator follows it: vLLM's
# most common line ("Added request ... with 128 tokens") must stay off the slow path.
_AFTER_TOKEN = frozenset("=:'\"\\ \t")

_VALUE = r"[^\s'\"&,;}\\]+"
_SOURCE = (
    r"(?P<bearer>\b[Bb]earer\s+)"
    + _VALUE
    + r"|(?P<hf>\bhf_)[A-Za-z0-9]{8,}"
    + r"|(?P<sk>\bsk-)[A-Za-z0-9_\-]{8,}"
    + r"|(?P<kv>(?i:\b(?:password|passwd|pwd|token|access_token|api_key|apikey|hf_token|secret|client_secret))"
    + r"(?:\\?['\"])?\s*[=:]\s*)"
    # a list, as vLLM's "non-default args: {..., 'api_key': ['...']}" shows it, or one value
    + r"(?:(?P<list>\[)[^\]\n]*\]|(?P<quote>\\?['\"])?"
    + _VALUE
    + ")"
)


def _mask(match: re.Match[str]) -> str:
    if match.group("kv"):
        if match.group("list"):
            return match.group("kv") + "[" + MASK + "]"
        return match.group("kv") + (match.group("quote") or "") + MASK
    return (match.group("bearer") or match.group("hf") or match.group("sk")) + MASK


def may_hold_secret(text: str) -> bool:
    """Tell whether ``text`` holds any substring that a maskable secret contains (cheap)."""
    low = text.lower()
    # Lower-case substrings that every maskable secret contains, spelled out rather than looped:
    # this runs on every record.
    if (
        "earer" in low
        or "hf_" in low
        or "sk-" in low
        or "assw" in low
        or "ecret" in low
        or "pi_key" in low
        or "pikey" in low
        or "pwd" in low
    ):
        return True
    at = low.find("oken")
    while at != -1:
        after = low[at + 4 : at + 5]
        if after in _AFTER_TOKEN or after.isspace():
            return True
        at = low.find("oken", at + 4)
    return False


@functools.lru_cache(maxsize=1)
def _pattern() -> re.Pattern[str]:
    return re.compile(_SOURCE)  # compiled on the first line that may hold a secret, not at import


def redact(text: str) -> str:
    """Return ``text`` with every recognised secret replaced by ``***``."""
    return _pattern().sub(_mask, text) if may_hold_secret(text) else text
