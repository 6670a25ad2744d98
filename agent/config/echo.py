"""How a configuration message repeats a value the user gave: quoted, and cut to a length a person reads.

Standard library only (the healthcheck imports it). Never used for a password, a DSN or a URL's query: those are
not repeated at all.
"""

from __future__ import annotations

from collections.abc import Iterable

SHOWN_CHARACTERS = 64


def shown(value: object, limit: int = SHOWN_CHARACTERS) -> str:
    """repr(value), or for a long value its first `limit` characters and the full length: 'xxxx...' (100000
    characters). A 100 KB value is still one short line."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(text) if isinstance(value, str) else repr(value)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """' (did you mean secret_id?)' when `word` is close to one of `choices`, else ''."""
    import difflib  # only when a message needs it: the healthcheck imports this module

    close = difflib.get_close_matches(str(word)[:32].lower(), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""
