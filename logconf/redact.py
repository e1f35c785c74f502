"""Mask secrets in log text: bearer tokens, API keys, credential values and URL passwords.

What is masked (case-insensitive), the secret replaced by ``***``:
- the value after a credential key and ``=`` or ``:``: ``password``, ``passwd``, ``pwd``
  (unless its value is a path: ``pwd: /home/...`` is a directory), ``secret``,
  ``secret_key``, ``secret_access_key``, ``private_key``, ``api_key``/``api-key``/``apikey``,
  ``authorization`` (after its scheme: ``Basic``, ``Bearer``...) and ``token``, alone or at the
  end of a longer name (``WANDB_API_KEY``, ``AWS_SECRET_ACCESS_KEY``, ``GITHUB_TOKEN``,
  ``client_secret``, ``x-api-key``); a list value (``'api_key': ['a', 'b']``) is masked whole.
  Tokenizer names (``eos_token``, ``pad_token``...) are not credentials and are left alone;
- the value after a command-line option with such a name (``--api-key KEY``, ``--hf-token=KEY``);
- ``Bearer <value>``; the password of a URL (``https://user:***@host``);
- token-shaped strings: ``hf_`` + 30 or more letters and digits (so ``hf_overrides`` and
  ``hf_transfer`` stay), ``sk-...``, GitHub's ``ghp_``/``gho_``/``ghu_``/``ghs_``/``ghr_`` and
  ``github_pat_`` tokens.

The text formatter masks its whole line (message and traceback); the JSON formatter masks the
strings inside the record before encoding it (see logconf.jsonlines). A few substring tests
decide whether the regular expression runs at all, which keeps the cost per record small on the
lines that carry nothing to mask. Every part of the pattern scans a bounded stretch from a
bounded set of starting points, so masking stays linear in the length of the text.
"""

from __future__ import annotations

import functools
import re

__all__ = ["MASK", "is_secret", "may_hold_secret", "redact"]

MASK = "***"

# "token" is a key only when a quote, a backslash, a blank or the separator follows it: vLLM's
# most common line ("Added request ... with 128 tokens") must stay off the slow path.
_AFTER_TOKEN = frozenset("=:'\"\\ \t")

# A credential's name, as the last word of a key. The lookbehinds keep tokenizer vocabulary
# (eos_token, pad-token...) out: those values are words like "</s>", not secrets.
_NAME = (
    r"(?:passw(?:or)?d|pwd|secret(?:[_-]?(?:access[_-]?)?key)?|private[_-]?key|api[_-]?key|authorization"
    r"|(?<!bos[_-])(?<!eos[_-])(?<!pad[_-])(?<!unk[_-])(?<!sep[_-])(?<!cls[_-])(?<!mask[_-])token)"
)
_VALUE = r"[^\s'\"&,;}\\]+"
_SOURCE = "|".join(
    [
        # --api-key KEY, --hf-token=KEY, and the argv list form "'--api-key', 'KEY'"
        rf"(?P<cli>(?<![\w-])--(?:[a-z0-9]+[-_])*{_NAME}(?:\s+|=|['\"],\s*['\"]))(?P<arg>{_VALUE})",
        # key=value, key: value, 'key': 'value', \"key\": \"value\", after any prefix word (WANDB_API_KEY);
        # the value is a list, as vLLM's "non-default args: {..., 'api_key': ['...']}" shows it (one
        # level of nesting), or one word, after an authorization scheme if there is one
        rf"(?P<kv>(?<![a-z0-9]){_NAME}(?:\\?['\"])?\s*[=:]\s*)"
        rf"(?:(?P<list>\[)(?:[^\[\]\n]|\[[^\[\]\n]*\])*\]"
        rf"|(?P<quote>\\?['\"])?(?P<scheme>(?:bearer|basic|digest|token)\s+)?(?P<value>{_VALUE}))",
        rf"(?P<bearer>\bbearer\s+){_VALUE}",
        r"(?P<url>://[^\s:/?#@'\"]*:)[^\s/?#@'\"]+(?=@)",
        r"(?P<hf>\bhf_)[a-z0-9]{30,}",
        r"(?P<sk>\bsk-)[a-z0-9_\-]{8,}",
        r"(?P<gh>\b(?:gh[pousr]_|github_pat_))\w{20,}",
    ]
)


def _is_path(value: str) -> bool:
    return value[:1] in ("/", "~")


def _mask(match: re.Match[str]) -> str:
    kv = match.group("kv")
    if kv is not None:
        if match.group("list"):
            return kv + "[" + MASK + "]"
        if kv[:3].lower() == "pwd" and _is_path(match.group("value")):
            return match.group(0)  # the working directory, not a password
        # An authorization value keeps its scheme word (Basic, Bearer); any other key's is masked whole.
        scheme = match.group("scheme") if "uthoriz" in kv.lower() else None
        return kv + (match.group("quote") or "") + (scheme or "") + MASK
    cli = match.group("cli")
    if cli is not None:
        if "pwd" in cli.lower() and _is_path(match.group("arg")):
            return match.group(0)
        return cli + MASK
    prefix = match.group("bearer") or match.group("url") or match.group("hf") or match.group("sk") or match.group("gh")
    return prefix + MASK


def may_hold_secret(text: str) -> bool:
    """Tell whether ``text`` holds any substring that a maskable secret contains (cheap)."""
    low = text.lower()
    # Lower-case substrings that every maskable secret contains, spelled out rather than looped:
    # this runs on every record.
    if (
        "earer" in low
        or "sk-" in low
        or "assw" in low
        or "ecret" in low
        or "key" in low
        or "pwd" in low
        or "uthoriz" in low
        or ("@" in low and "://" in low)
        or ("_" in low and ("hf_" in low or "hub_pat_" in low or _gh_prefix(low)))
    ):
        return True
    at = low.find("oken")
    while at != -1:
        after = low[at + 4 : at + 5]
        if after in _AFTER_TOKEN or after.isspace():
            return True
        at = low.find("oken", at + 4)
    return False


def _gh_prefix(low: str) -> bool:
    return "gh" in low and ("ghp_" in low or "gho_" in low or "ghu_" in low or "ghs_" in low or "ghr_" in low)


def is_secret(key: str, value: object) -> bool:
    """Tell whether ``value``, found under ``key`` in a mapping, is a credential to mask whole.

    ``key`` names a credential (``token``, ``WANDB_API_KEY``, ``password``...), and is not a
    ``pwd`` holding a path.
    """
    if not _names_secret(key):
        return False
    return not (key[-3:].lower() == "pwd" and isinstance(value, str) and _is_path(value))


@functools.lru_cache(maxsize=4096)
def _names_secret(key: str) -> bool:
    # A JSON record's extra keys repeat from record to record: each is matched once.
    return _key_pattern().fullmatch(key) is not None


@functools.lru_cache(maxsize=1)
def _key_pattern() -> re.Pattern[str]:
    return re.compile(rf"(?:[a-z0-9]+[_-])*{_NAME}", re.IGNORECASE)


@functools.lru_cache(maxsize=1)
def _pattern() -> re.Pattern[str]:
    return re.compile(_SOURCE, re.IGNORECASE)  # compiled on the first line that may hold a secret, not at import


def redact(text: str) -> str:
    """Return ``text`` with every recognised secret replaced by ``***``."""
    return _pattern().sub(_mask, text) if may_hold_secret(text) else text
