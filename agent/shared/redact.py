"""The one place that knows what a secret looks like, and removes it from any text that leaves the process.

Work is bounded: a text is cut to MAX_TEXT characters before any pattern runs (a peer's error can be megabytes),
every pattern runs in time linear in what is left, and a cut never leaves part of a secret behind.
"""

from __future__ import annotations

import re
import threading

MASK = "[REDACTED]"
# Characters of one text kept for redaction and display (a database error, an endpoint's body, an exception);
# the rest is cut before any pattern runs. Messages are shortened further for display (truncate()).
MAX_TEXT = 4096
CUT = "…"  # ends a text that was cut
# Shorter values occur by chance in ordinary text (and a 3-letter password is its own alarm).
_MIN_SECRET_LENGTH = 4
_PLACEHOLDER = "\x00"  # never in a password, key or token: the database protocols cannot carry it
_PLACEHOLDERS = re.compile(_PLACEHOLDER + "+")

_PASSWORD_KEYS = r"password|passwd|pwd"
_OTHER_KEYS = (
    r"secret|secretstring|secret_access_key|secretaccesskey|token|sessiontoken|session_token|aws_session_token"
)
_KEYS = f"{_PASSWORD_KEYS}|{_OTHER_KEYS}"
_END = "\\s\"',;&}"  # what ends an unquoted value
# A DSN up to its password: "://user:" after a scheme's last character. Found from the literal "://", so a long
# run of letters costs nothing (a pattern starting at the scheme tried every letter of it).
_DSN_HEAD = re.compile(r"(?i)(?<=[a-z0-9+.-])://[^:/@\s]*:")
_AT_OR_SPACE = re.compile(r"[@\s]")
_JSON_OPENER = re.compile(rf'(?i)"(?:{_KEYS})"\s*:\s*"')
_JSON_REST = re.compile(r'(?:[^"\\]|\\.)*"', re.DOTALL)
# Other shapes of secrets we may see without having registered the value: signed query strings (an RDS IAM token
# is a presigned URL), key=value pairs, JSON fields and HTTP authorization headers. Each starts at a literal
# (or a word boundary) and scans forward once: linear in the text.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)(X-Amz-(?:Signature|Security-Token|Credential)=)[^&\s\"']+"), rf"\1{MASK}"),
    # key=value and key: value (conninfo, query strings, YAML); not after ':' or '/', so the ":secret:NAME"
    # of an ARN is left alone. MySQL's "(using password: YES)" is a diagnosis, not a value: YES/NO says whether
    # a password was sent.
    (
        re.compile(
            rf"(?i)(?<![\w:/.-])({_PASSWORD_KEYS})(\s*[:=]\s*)(?!(?<=using password: )(?:YES|NO)(?!\w))[^{_END}]+"
        ),
        rf"\1\2{MASK}",
    ),
    # The other keys take "key:value" only with a space after the colon: without one it is a failure code of the
    # agent's own (secret:no_password, token:no_user), which must read as it is in logs and on /status.
    (re.compile(rf"(?i)(?<![\w:/.-])({_OTHER_KEYS})(\s*=\s*|\s*:\s+)[^{_END}]+"), rf"\1\2{MASK}"),
    # JSON "key": "value" (a secret string, a credentials document).
    (re.compile(rf'(?i)("(?:{_KEYS})"\s*:\s*")(?:[^"\\]|\\.)*"'), rf'\1{MASK}"'),
    # A header value that is a shell expansion ($(cat FILE), ${VAR}, $VAR) names where a token is, not the token.
    (
        re.compile(r"(?i)(authorization\"?\s*[:=])(?!\s*\"?\$(?:\(|\{|\w+(?:[\s\"']|$)))(\s*\"?)[^\"'\n]+"),
        rf"\1\2{MASK}",
    ),
    (re.compile(r"\b((?:AKIA|ASIA)[A-Z0-9]{12,})\b"), MASK),
)


class SecretRegistry:
    """Secret values the process has learned (passwords, tokens, keys); any of them is scrubbed from output.

    Values are kept only in memory and never rendered. The registry is bounded: a long-running agent learns a
    new IAM token every 10 minutes and new keys at every rotation, so the oldest values age out first, and
    adding a known value again (a password at every login, the keys at every credentials run) keeps it young.
    Scrubbing is plain substring replacement, longest value first: a regex alternation rebuilt for every new
    value cost O(n^2), held the event loop for seconds after a day of tokens, and filled re's cache.
    """

    MAX_VALUES = 192  # 64 secrets in their three encodings

    def __init__(self, max_values: int = MAX_VALUES) -> None:
        self._values: dict[str, None] = {}  # insertion-ordered: oldest first
        self._max = max_values
        self._lock = threading.Lock()
        # Longest first, so no value is masked only in part; with the longest length, for cutting.
        self._ordered: tuple[tuple[str, ...], int] = ((), 0)

    def add(self, value: str | None) -> None:
        """Remember a secret value (and its common encodings) so it can never be printed."""
        if not value or len(value) < _MIN_SECRET_LENGTH:
            return
        variants = dict.fromkeys((value, value.replace("&", "&amp;"), _url_quote(value)))
        with self._lock:
            known = all(v in self._values for v in variants)
            for variant in variants:  # to the young end
                self._values.pop(variant, None)
                self._values[variant] = None
            if known:
                return
            while len(self._values) > self._max:
                del self._values[next(iter(self._values))]
            ordered = tuple(sorted(self._values, key=len, reverse=True))
            self._ordered = (ordered, len(ordered[0]))

    def scrub(self, text: str, limit: int | None = None) -> str:
        """Replace every registered value in text; with a limit, cut text to that many characters first, never
        through a value: the part of a value before the cut is masked as the whole would be.

        Work: the first limit characters plus the longest value's length, once per value.
        """
        ordered, longest = self._ordered  # a tuple swapped whole by add(): safe to read without the lock
        cut = len(text) if limit is None else min(limit, len(text))
        if cut < len(text):
            text = text[: cut + longest]  # a value that starts before the cut ends inside this window
        masked = False
        for value in ordered:
            if value in text:
                # Same-length placeholders keep every position, so the cut below falls where it would in the
                # original; no value contains one, so a short value cannot match inside an earlier mask.
                text, masked = text.replace(value, _PLACEHOLDER * len(value)), True
        text = text[:cut]
        return _PLACEHOLDERS.sub(MASK, text) if masked else text

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"SecretRegistry(<{len(self._values)} values>)"


def _url_quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


SECRETS = SecretRegistry()


def redact(text: str, registry: SecretRegistry = SECRETS, limit: int = MAX_TEXT) -> str:
    """Remove registered secret values and anything shaped like a secret from text, cut to `limit` characters
    first (then ending in CUT); a secret the cut splits is masked, never shown in part."""
    cut = len(text) > limit
    text = registry.scrub(text, limit)
    if cut:
        text = _mask_open_tail(text)
    text = _mask_dsn_passwords(text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text + CUT if cut else text


def one_line(text: str, registry: SecretRegistry = SECRETS, limit: int = MAX_TEXT) -> str:
    """redact(), then every run of whitespace as one space: a secret is matched as it was sent (a password with a
    newline, a tab or two spaces in it), never after its whitespace was changed."""
    return " ".join(redact(text, registry, limit).split())


def truncate(text: str, limit: int = 500) -> str:
    """Shorten text for display; call after redact() so a cut can never leave half a secret behind."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mask_dsn_passwords(text: str) -> str:
    """scheme://user:PASSWORD@ -> scheme://user:[REDACTED]@, in one pass.

    As a single regex this was quadratic: every `a://b:` without an '@' after it scanned to the end of its run.
    Here each head is found once and the next '@' or whitespace is searched for only past the last one found.
    """
    parts: list[str] = []
    kept = 0  # text[:kept] is in parts
    stop = -1  # where the last search found '@' or whitespace (len(text): nowhere)
    for head in _DSN_HEAD.finditer(text):
        start = head.end()
        if head.start() < kept:  # inside a password already masked
            continue
        if stop < start:
            found = _AT_OR_SPACE.search(text, start)
            stop = found.start() if found else len(text)
        if start < stop < len(text) and text[stop] == "@":
            parts += (text[kept:start], MASK)
            kept = stop
    return "".join(parts) + text[kept:] if parts else text


def _mask_open_tail(text: str) -> str:
    """Mask a secret-shaped value the cut left open at the end: a DSN password before its '@', a JSON value
    before its closing quote. (key=value, Authorization and X-Amz- values are masked in part by the patterns.)"""
    token = text[max(text.rfind(c) for c in " \t\n\r\f\v") + 1 :]
    at = token.rfind("@")
    head = _DSN_HEAD.search(token, at + 1)
    if head is not None:
        text = text[: len(text) - len(token) + head.end()] + MASK
    opener = None
    for opener in _JSON_OPENER.finditer(text):  # noqa: B007 - the last one is wanted
        pass
    if opener is not None and _JSON_REST.match(text, opener.end()) is None:
        text = text[: opener.end()] + MASK
    return text
