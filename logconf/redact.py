"""Mask secrets in formatted log lines: bearer tokens, API keys and credential values.

Applied by logconf's formatters to the whole line (message and traceback), after JSON
encoding too: replacements never touch quotes or backslashes, so JSON stays valid. A few
substring tests decide whether the regular expression runs at all, which keeps the cost
per record small on the lines that carry nothing to mask.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "redact"]

MASK = "***"

_TRIGGERS = ("earer", "EARER", "hf_", "sk-", "assw", "ASSW", "ecret", "ECRET", "pi_key", "PI_KEY", "pikey", "PIKEY", "pwd", "PWD")
# "token" is only a key when a quote, a backslash, a blank or the separator follows it; this
# keeps vLLM's most common line ("Added request ... with 128 tokens") off the slow path.
_TOKEN_TRIGGERS = ("oken", "OKEN")
_AFTER_TOKEN = frozenset("=:'\"\\ \t")

_VALUE = r"[^\s'\"&,;}\\]+"
_PATTERN = re.compile(
    r"(?P<bearer>\b[Bb]earer\s+)"
    + _VALUE
    + r"|(?P<hf>\bhf_)[A-Za-z0-9]{8,}"
    + r"|(?P<sk>\bsk-)[A-Za-z0-9_\-]{8,}"
    + r"|(?P<kv>(?i:\b(?:password|passwd|pwd|token|access_token|api_key|apikey|secret|client_secret))"
    + r"(?:\\?['\"])?\s*[=:]\s*(?:\\?['\"])?)"
    + _VALUE
)


def _mask(match: re.Match[str]) -> str:
    return (match.group("bearer") or match.group("hf") or match.group("sk") or match.group("kv")) + MASK


def redact(text: str) -> str:
    """Return ``text`` with every recognised secret replaced by ``***``."""
    for trigger in _TRIGGERS:
        if trigger in text:
            return _PATTERN.sub(_mask, text)
    for trigger in _TOKEN_TRIGGERS:
        at = text.find(trigger)
        while at != -1:
            if text[at + 4 : at + 5] in _AFTER_TOKEN or text[at + 4 : at + 5].isspace():
                return _PATTERN.sub(_mask, text)
            at = text.find(trigger, at + 4)
    return text
