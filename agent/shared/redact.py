"""The one place that knows what a secret looks like, and removes it from any text that leaves the process."""

from __future__ import annotations

import re
import threading

MASK = "[REDACTED]"
# Shorter values occur by chance in ordinary text (and a 3-letter password is its own alarm).
_MIN_SECRET_LENGTH = 4
_PLACEHOLDER = "\x00"  # never in a password, key or token: the database protocols cannot carry it

_KEYS = (
    r"password|passwd|pwd|secret|secretstring|secret_access_key|secretaccesskey|token|sessiontoken"
    r"|session_token|aws_session_token"
)
# Shapes of secrets we may see without having registered the value: DSN passwords, signed query strings
# (an RDS IAM token is a presigned URL), key=value pairs and HTTP authorization headers.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@"), rf"\1{MASK}@"),
    (re.compile(r"(?i)(X-Amz-(?:Signature|Security-Token|Credential)=)[^&\s\"']+"), rf"\1{MASK}"),
    # key=value and key: value (conninfo, query strings, YAML); not after ':' or '/', so the ":secret:NAME"
    # of an ARN is left alone.
    # MySQL's "(using password: YES)" is a diagnosis, not a value: YES/NO says whether a password was sent.
    (re.compile(rf"(?i)(?<![\w:/.-])({_KEYS})(\s*[:=]\s*)(?!(?:YES|NO)\)?(?:\s|$))[^\s\"',;&}}]+"), rf"\1\2{MASK}"),
    # JSON "key": "value" (a secret string, a credentials document).
    (re.compile(rf'(?i)("(?:{_KEYS})"\s*:\s*")(?:[^"\\]|\\.)*"'), rf'\1{MASK}"'),
    (re.compile(r"(?i)(authorization\"?\s*[:=]\s*\"?)[^\"'\n]+"), rf"\1{MASK}"),
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
        self._ordered: tuple[str, ...] = ()  # longest first, so no value is masked only in part

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
            self._ordered = tuple(sorted(self._values, key=len, reverse=True))

    def scrub(self, text: str) -> str:
        """Replace every registered value in text."""
        masked = False
        for value in self._ordered:  # a tuple swapped whole by add(): safe to read without the lock
            if value in text:
                # A placeholder no secret contains, so a short value cannot match inside an earlier mask.
                text, masked = text.replace(value, _PLACEHOLDER), True
        return text.replace(_PLACEHOLDER, MASK) if masked else text

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"SecretRegistry(<{len(self._values)} values>)"


def _url_quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


SECRETS = SecretRegistry()


def redact(text: str, registry: SecretRegistry = SECRETS) -> str:
    """Remove registered secret values and anything shaped like a secret from text."""
    text = registry.scrub(text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def truncate(text: str, limit: int = 500) -> str:
    """Shorten text for display; call after redact() so a cut can never leave half a secret behind."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
