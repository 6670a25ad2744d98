"""Distinctive secret values for the fault suite, and the strict check that no part of one ever leaves the agent.

Each value starts with its own rare five-character prefix ('~' and four capitals that are not hex digits, a
shape that occurs neither in English, hex request ids, base64 nor ISO timestamps), so "not even its first four
characters appear anywhere" is a meaningful assertion rather than a coin toss. Values are also handed to
tests/support/secrets (remember() and DISTINCTIVE), so the session-finish scan checks them too.
"""

from __future__ import annotations

import re
import secrets

from tests.support.secrets import DISTINCTIVE, PREFIX_CHECKED, leaks, remember

_RARE = "GHJKLMNPQRSTUVWXYZ"  # capitals outside A-F: never part of a hex string
_TAIL = "abcdefghijkmnopqrstuvwxyz23456789"
_PREFIXES: set[str] = set()


def distinctive(kind: str, length: int = 28) -> str:
    """A fresh secret value with a prefix no other value of this session shares, remembered for the checks."""
    while True:
        prefix = "~" + "".join(secrets.choice(_RARE) for _ in range(4))
        if prefix[:PREFIX_CHECKED] not in _PREFIXES:
            break
    _PREFIXES.add(prefix[:PREFIX_CHECKED])
    value = prefix + "".join(secrets.choice(_TAIL) for _ in range(length - len(prefix)))
    DISTINCTIVE[value] = kind
    return remember(value)


def assert_no_distinctive_secret(text: str, where: str) -> None:
    """Fail naming the kind of secret (never its value) if any distinctive value leaked into text."""
    found = leaks(text)
    assert not found, f"{where}: secret material leaked: {'; '.join(found)}"


HEX64 = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


def signature_leaks(text: str, signatures: list[str], prefix: int = 16) -> list[str]:
    """SigV4 signatures (hex) found in text, by their first `prefix` characters.

    Hex is too common for a 4-character check (request ids are hex); 16 characters of a signature occurring
    by chance is about one in 10^19.
    """
    return [f"signature {sig[:4]}..." for sig in signatures if sig[:prefix] in text]
