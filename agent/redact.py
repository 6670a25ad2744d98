"""The one place that knows what a secret looks like, and removes it from any text that leaves the process."""

from __future__ import annotations

import re
import threading

MASK = "[REDACTED]"
# Shorter values occur by chance in ordinary text (and a 3-letter password is its own alarm).
_MIN_SECRET_LENGTH = 4

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

    Values are kept only in memory, for as long as the process runs, and never rendered.
    """

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str | None) -> None:
        """Remember a secret value (and its common encodings) so it can never be printed."""
        if not value or len(value) < _MIN_SECRET_LENGTH:
            return
        variants = {value, value.replace("&", "&amp;"), _url_quote(value)}
        with self._lock:
            if variants <= self._values:
                return
            self._values |= variants
            ordered = sorted(self._values, key=len, reverse=True)  # longest first: no partial replacement
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def scrub(self, text: str) -> str:
        """Replace every registered value in text."""
        pattern = self._pattern
        return pattern.sub(MASK, text) if pattern is not None else text

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
