"""Mask secrets in log text: credential values, private keys, URL passwords and token-shaped strings.

What is masked (case-insensitive), the secret replaced by ``***`` and the rest of the line kept:

- the value after a credential's name and ``=`` or ``:`` (``key=value``, ``key: value``,
  ``'key': 'value'``, ``\\"key\\": \\"value\\"``; blanks around the separator, never a line
  break: the next line is not this one's value), after a command-line option of that name
  (``--api-key KEY``, ``--hf-token=KEY``, ``'--api-key', 'KEY'``), or as the second item of a pair
  (``('authorization', 'Bearer ...')``, headers given as a list of pairs). The names:
  ``password``, ``passwd``, ``passphrase``, ``pwd``, ``secret``, ``secret_key``,
  ``secret_access_key``, ``private_key``, ``api_key``, ``access_key``, ``account_key`` (``-``,
  ``_`` or nothing between the words), ``authorization`` and ``token``, alone or ending a longer
  name (``WANDB_API_KEY``, ``client_secret``, ``clientSecret``, ``x-api-key``, ``accessToken``);
  and any option ending in ``key`` (``wandb login --key KEY``). The value is masked whole: a
  quoted string to its closing quote (blanks, ``,``, ``;`` and escaped quotes included; a quote
  never closed masks to the end of the line), a bytes literal (``b'...'``), a list or a dict
  (``[***]``, ``{***}``), else one word. An authorization value keeps its scheme (``Basic ***``);
- a private key's body, between ``-----BEGIN ... PRIVATE KEY-----`` and its ``-----END``
  line, across lines, real or escaped (``\\n``); with no END line (a key cut short), the lines
  after BEGIN that a key's body has (one word each, or a ``Proc-Type``/``DEK-Info`` header);
- ``Bearer <value>``; a URL's password (``https://user:***@host``); ``sig=`` and
  ``X-Amz-Signature=`` in a URL's query; the key after ``wandb login``;
- token-shaped strings: ``hf_`` + 30 or more letters and digits (so ``hf_overrides`` stays),
  ``sk-...`` (OpenAI, Anthropic; not inside a path or a longer name), GitHub's
  ``ghp_``/``gho_``/``ghu_``/``ghs_``/``ghr_`` and ``github_pat_`` tokens.

Left alone, so that tokenizer, sampling and metrics lines read as they were written:

- under a ``token`` name, a value that a credential never is: a number (``time to first token:
  35 ms``, a token id), ``None``/``null``/``True``/``False``, an empty string, and tokenizer
  vocabulary (``<s>``, ``</s>``, ``<|im_end|>``, ``[CLS]``, ``AddedToken(...)``);
- ``token:`` after a blank and a word other than a credential's (``Sampled token: hello``,
  ``first token: 35 ms``; ``API token: X`` and ``with token=X`` are masked), and ``token`` after a
  vocabulary word and ``_`` or ``-`` (``eos_token``, ``pad_token``, ``tool_call_start_token``,
  ``sampled_token``... see ``_VOCABULARY``);
- a ``pwd``, a ``private_key`` or a ``--...-key`` option holding a path (``/``, ``~``, ``./``);
- names that only contain a credential's (``tokenizer``, ``max_tokens``, ``private_key_id``).

The text formatter masks its whole line (message and traceback); the JSON formatter masks the
strings inside the record before encoding it (see logconf.jsonlines), with :func:`is_secret`
for values under a key; the stdio tee masks each stream with a :class:`StreamRedactor`, which
also masks a private key whose lines arrive in several reads. A few substring tests decide
whether the regular expression runs at all, which keeps the cost per record small on the lines
that carry nothing to mask. Each part of the pattern either scans a bounded stretch or never
fails once started (a value runs to its closing quote or the end of the line and is consumed),
so that no stretch is scanned again from a later start: masking stays linear in the text.
"""

from __future__ import annotations

import functools
import re

__all__ = ["MASK", "StreamRedactor", "is_secret", "may_hold_secret", "redact"]

MASK = "***"

# "token" is a key only when a quote, a backslash, a blank or the separator follows it: vLLM's
# most common line ("Added request ... with 128 tokens") must stay off the slow path.
_AFTER_TOKEN = frozenset("=:'\"\\ \t")

# Names whose value is a credential whatever it is.
_STRONG = (
    r"passw(?:or)?d|passphrase|secret(?:[_-]?(?:access[_-]?)?key)?|api[_-]?key|(?:access|account)[_-]?key|authorization"
)
# Names that may hold a file instead: the working directory, an ssh key's path.
_PATHY = r"pwd|private[_-]?key"
# After a blank, "token:" is prose ("Sampled token: x") unless one of these words comes before it;
# "token=" is a key wherever it is.
_CREDENTIAL_WORDS = ("api", "auth", "access", "refresh", "bearer", "session", "oauth", "your", "my")
# Joined to "token" by _ or -, these words name tokenizer vocabulary or sampled text, not a credential.
_VOCABULARY = (
    "bos", "eos", "pad", "unk", "sep", "cls", "mask", "eot", "eom", "boi", "eoi", "start", "end", "begin",
    "stop", "think", "image", "video", "audio", "vision", "newline", "special", "added", "sampled", "first",
    "last", "next", "prev", "generated", "output", "input", "prompt", "decoder", "placeholder", "delimiter",
    "thought", "response", "reasoning", "sentinel", "unknown",
)  # fmt: skip
_TOKEN = (
    "(?=token)(?:(?<![a-z][ \t])|(?=token[ \t]*=)"
    + "".join(f"|(?<=(?<![a-z]){word} )" for word in _CREDENTIAL_WORDS)
    + ")"
    + "".join(f"(?<!(?<![a-z0-9]){word}[_-])" for word in _VOCABULARY)
    + "token"
)
# What a value under a token name is when it is no credential: vocabulary, a number, a constant.
_PLAIN = (
    r"(?:<|\[[a-z_|]{1,16}\]|addedtoken\(|[+-]?\d+(?:\.\d+)?(?:e[+-]?\d+)?(?=[\s,;)\]}'\"%\\]|\.(?!\d)|$)"
    r"|(?:none|null|true|false)(?![\w-]))"
)
_OPEN = r"(?:b?\\*['\"])"
_NOT_PLAIN = rf"(?!{_OPEN}?{_PLAIN}|b?''|b?\"\"|b?\\+'\\+'|b?\\+\"\\+\")"
_NOT_PATH = rf"(?!{_OPEN}?(?:[/~]|\.\.?/))"
# Words before the credential's own: client_secret, WANDB_API_KEY, x-api-key, clientSecret.
_PREFIX = r"(?:[a-z0-9]+[_-])*[a-z0-9]*?"


def _named(separator: str) -> str:
    """Match a credential's name followed by ``separator``, unless its value is one to leave alone."""
    return rf"(?:(?:{_STRONG}){separator}|(?:{_PATHY}){separator}{_NOT_PATH}|{_TOKEN}{separator}{_NOT_PLAIN})"


# Blanks in a separator never cross a line break: in a stream of lines (the stdio copy) the next line
# is not this one's value.
_CLI_SEPARATOR = r"(?:[^\S\n]+|=|['\"],[^\S\n]*)(?!--)"
_PAIR_SEPARATOR = r"(?P=pq)[^\S\n]*,[^\S\n]*"
_KV_SEPARATOR = r"(?:\\*['\"])?[^\S\n]*[=:][^\S\n]*"
_KEYS = "|".join(
    [
        # --api-key KEY, --hf-token=KEY, wandb's --key KEY, and the argv form "'--api-key', 'KEY'"
        rf"(?P<cli>-(?<![\w-]-)-(?:[a-z0-9]+[-_])*(?:{_named(_CLI_SEPARATOR)}|key{_CLI_SEPARATOR}{_NOT_PATH}))",
        # a pair: ('authorization', 'Bearer x'), (b'x-api-key', b'k'), [["token", "x"], ...]
        rf"(?P<pair>(?:\(|\[(?<=[\[,]\[)|\[(?<=, \[))[^\S\n]*b?(?P<pq>['\"]){_PREFIX}{_named(_PAIR_SEPARATOR)})",
        # key=value, key: value, 'key': 'value', \"key\": \"value\", after any words (WANDB_API_KEY, accessToken)
        rf"(?P<kv>{_named(_KV_SEPARATOR)})",
    ]
)
# A value, masked whole: a list or dict (one level of nesting), a quoted string to its closing quote
# (to the end of the line if none: never failing, it is never scanned twice), else one word, after an
# authorization scheme if there is one. A word never starts a private key, which has its own part.
_VALUE = (
    r"(?:(?P<list>\[(?:[^\[\]\n]|\[[^\[\]\n]*\])*\])"
    r"|(?P<dict>\{(?:[^{}\n]|\{[^{}\n]*\})*\})"
    r"|(?P<o1>b?')(?P<b1>(?:\\[^\n]|[^'\\\n])*)(?P<c1>'?)"
    r"|(?P<o2>b?\")(?P<b2>(?:\\[^\n]|[^\"\\\n])*)(?P<c2>\"?)"
    # escaped quotes (a JSON string inside a message): closed by the same escape, not by a deeper one
    r"|(?P<o3>b?(?P<e3>\\+)(?P<q3>['\"]))(?P<b3>(?:(?!(?<!\\)(?P=e3)(?P=q3))[^\n])*)(?P<c3>(?:(?P=e3)(?P=q3))?)"
    r"|(?!-----)(?P<word>(?:(?:bearer|basic|digest|token)[^\S\n]+)?[^\s'\"&,;}\\]+))"
)
# Each alternative below starts with one of these characters: testing it first spares the others at
# every other position.
_FIRST = r"(?=[-(\[:?&pastbwhg])"
_SOURCE = _FIRST + "(?:" + "|".join(
    [
        rf"(?:{_KEYS}){_VALUE}",
        # to its END line, or to the next marker (its key lines masked, the rest as any text: see _mask)
        r"(?P<pem>-----BEGIN [a-z0-9 ]{0,40}?PRIVATE KEY-----)(?P<body>(?:[^-]|-(?!----(?:END|BEGIN) ))*)"
        r"(?P<end>-----END [a-z0-9 ]{0,40}?PRIVATE KEY-----)?",
        r"(?P<bearer>\bbearer[^\S\n]+)[^\s'\"&,;}\\]+",
        r"(?P<url>://[^\s:/?#@'\"]*:)[^\s/?#'\"]+(?=@)",  # the last @ of the authority: a password may hold one
        r"(?P<query>[?&](?:sig|signature|x-amz-signature|x-goog-signature)=)[^&\s#'\"]+",
        r"(?P<wandb>\bwandb[^\S\n]+login[^\S\n](?:[^\n]{0,120}?[^\S\n])??)[\w-]{40,}(?![\w-])",
        r"(?P<hf>\bhf_)[a-z0-9]{30,}",
        r"(?P<sk>s(?<![\w/\\.~-]s)k-)[a-z0-9_\-]{8,}(?![\w/\\-]|\.\w)",  # not a path's or a name's part
        r"(?P<gh>\b(?:gh[pousr]_|github_pat_))\w{20,}",
    ]
) + ")"
_SCHEMES = frozenset(("bearer", "basic", "digest", "token", "negotiate"))
_QUOTED = (("o1", "b1", "c1"), ("o2", "b2", "c2"), ("o3", "b3", "c3"))
_PEM_MARK = r"-----(?P<mark>BEGIN|END) [A-Z0-9 ]{0,40}?PRIVATE KEY-----"
# The lines of a key's body, each after a real or escaped line break: one word (base64, cut short or
# not) or a Proc-Type/DEK-Info header; or base64 words on the marker's own line (a key flattened
# into one line). A line of several words is text again.
_LINE_BREAK = r"[ \t]*(?:\r?\n|\\+(?:r\\+)?n)"
_KEY_LINES = (
    r"(?:(?:[ \t]+[a-z0-9+/=]+)+"
    rf"|(?:{_LINE_BREAK}(?:(?:[^\s\\'\"-]|-(?!----))+|(?:proc-type|dek-info):[^\n\\]*)?"
    r"(?=[ \t]*(?:\r?\n|\\+[rn]|\Z)|['\"]|-----))*)"
)


def _is_path(value: str) -> bool:
    return value[:1] in ("/", "~")


def _scheme(value: str) -> str:
    """Return the authorization scheme that starts ``value`` with its blanks (``Basic ``), or ``""``."""
    parts = value.split(None, 1)
    if len(parts) == 2 and parts[0].lower() in _SCHEMES:
        return value[: len(value) - len(parts[1])]
    return ""


def _masked_value(match: re.Match[str], authorization: bool) -> str:
    group = match.group
    if group("list") is not None:
        return "[" + MASK + "]"
    if group("dict") is not None:
        return "{" + MASK + "}"
    for opener, body, closer in _QUOTED:
        if group(opener) is not None:
            scheme = _scheme(group(body)) if authorization else ""
            return group(opener) + scheme + MASK + group(closer)
    word = group("word")
    return (_scheme(word) if authorization else "") + MASK


def _masked_body(body: str) -> str:
    """Mask a private key's body, keeping the line break (real or escaped) on either side."""
    lead = _edge().match(body).end()  # type: ignore[union-attr]
    trail = _edge_reversed().match(body[::-1]).end()  # type: ignore[union-attr]
    if lead + trail >= len(body):
        return body
    return body[:lead] + MASK + body[len(body) - trail :]


@functools.lru_cache(maxsize=1)
def _edge() -> re.Pattern[str]:
    return re.compile(r"(?:\s|\\+[rn])*")


@functools.lru_cache(maxsize=1)
def _edge_reversed() -> re.Pattern[str]:
    return re.compile(r"(?:\s|[rn]\\+)*")


def _mask(match: re.Match[str]) -> str:
    group = match.group
    key = group("cli") or group("pair") or group("kv")
    if key:
        return key + _masked_value(match, "uthoriz" in key.lower())
    if group("pem") is not None:
        body = group("body")
        if group("end") is not None:
            return group("pem") + _masked_body(body) + group("end")
        # No END line (a key cut short): its key lines are masked, what follows them is text again.
        lines = _key_lines().match(body).end()  # type: ignore[union-attr]
        return group("pem") + _masked_body(body[:lines]) + redact(body[lines:])
    prefix = (
        group("bearer") or group("url") or group("query") or group("wandb") or group("hf") or group("sk") or group("gh")
    )
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
        or "phrase" in low
        or "login" in low
        or ("@" in low and "://" in low)
        or ("=" in low and ("sig=" in low or "signature=" in low))
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

    ``key`` names a credential (``password``, ``WANDB_API_KEY``, ``access_token``...), and the
    value is not one it holds when it is none: a path under ``pwd`` or ``private_key``; a
    number, a bool, None, an empty string or tokenizer vocabulary under a ``token`` name.
    """
    if not _names_secret(key):
        return False
    low = key.lower()
    if low.endswith("token"):
        return not _plain_token(value)
    if low.endswith(("pwd", "private_key", "private-key", "privatekey")):
        return not (isinstance(value, str) and _is_path(value))
    return True


def _plain_token(value: object) -> bool:
    if value is None or isinstance(value, (bool, int, float)):
        return True
    return isinstance(value, str) and (value == "" or _plain_pattern().match(value) is not None)


@functools.lru_cache(maxsize=4096)
def _names_secret(key: str) -> bool:
    # A JSON record's extra keys repeat from record to record: each is matched once.
    return _key_pattern().fullmatch(key) is not None


@functools.lru_cache(maxsize=1)
def _key_pattern() -> re.Pattern[str]:
    return re.compile(rf"{_PREFIX}(?:{_STRONG}|{_PATHY}|{_TOKEN})", re.IGNORECASE)


@functools.lru_cache(maxsize=1)
def _plain_pattern() -> re.Pattern[str]:
    return re.compile(_PLAIN, re.IGNORECASE)


@functools.lru_cache(maxsize=1)
def _pattern() -> re.Pattern[str]:
    return re.compile(_SOURCE, re.IGNORECASE)  # compiled on the first line that may hold a secret, not at import


@functools.lru_cache(maxsize=1)
def _pem_marks() -> re.Pattern[str]:
    return re.compile(_PEM_MARK)


@functools.lru_cache(maxsize=1)
def _key_lines() -> re.Pattern[str]:
    return re.compile(_KEY_LINES, re.IGNORECASE)


def redact(text: str) -> str:
    """Return ``text`` with every recognised secret replaced by ``***``."""
    return _pattern().sub(_mask, text) if may_hold_secret(text) else text


class StreamRedactor:
    """Mask one stream's text as it comes, piece by piece (complete lines each).

    A private key whose lines arrive in several pieces (a process printing it line by line) is
    masked whole: a piece that ends inside a key's body leaves the redactor inside it, and the
    next piece's key lines are masked, up to the ``-----END`` line or the first line that a key's
    body does not have.
    """

    __slots__ = ("inside_key",)

    def __init__(self) -> None:
        self.inside_key = False

    def needed(self, text: str) -> bool:
        """Tell whether :meth:`redact` may change ``text`` (cheap)."""
        return self.inside_key or may_hold_secret(text)

    def redact(self, text: str) -> str:
        """Return ``text`` masked, as :func:`redact` does, and remember whether it ends inside a key."""
        head = ""
        if self.inside_key:
            # The piece goes on with the key: its key lines are masked, up to END or the first other line.
            lines = max(0, _key_lines().match("\n" + text).end() - 1)  # type: ignore[union-attr]
            head, text = _masked_body(text[:lines]), text[lines:]
            if not text.strip():
                return head + text
            self.inside_key = False
        self.inside_key = "PRIVATE KEY-----" in text and _ends_inside_key(text)
        return head + redact(text)


def _ends_inside_key(text: str) -> bool:
    """Tell whether ``text`` ends in a private key's body: its last marker a BEGIN, key lines after it."""
    marks = list(_pem_marks().finditer(text))
    if not marks or marks[-1].group("mark") != "BEGIN":
        return False
    after = text[marks[-1].end() :]
    return not after[_key_lines().match(after).end() :].strip()  # type: ignore[union-attr]
