"""A DSN's query parameters: the TLS settings, in the spellings the ecosystem uses. Any other parameter is refused by
name, so nothing a user wrote is silently dropped.

- `sslmode` (libpq): disable, prefer, require, verify-ca, verify-full.
- `ssl` (asyncpg's `ssl=` argument; SQLAlchemy's `postgresql+asyncpg://...?ssl=`): a libpq mode, or true / false.
  asyncpg turns True into `ssl.create_default_context()` and reports it as verify-full; False is disable.
- `ssl-mode` (MySQL's `--ssl-mode`): DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY, or a libpq mode.
- `sslrootcert` (libpq) or `ssl-ca` (MySQL's `--ssl-ca`): the CA bundle's path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from agent.config.echo import did_you_mean, shown

LIBPQ_MODES = ("disable", "prefer", "require", "verify-ca", "verify-full")
# MySQL 8.0 reference manual, "Command Options for Encrypted Connections" (--ssl-mode), in libpq's terms.
_MYSQL_MODES = {
    "disabled": "disable",
    "preferred": "prefer",
    "required": "require",
    "verify_ca": "verify-ca",
    "verify_identity": "verify-full",
}
# asyncpg (connect_utils): ssl=True builds ssl.create_default_context() and reports sslmode verify-full.
_BOOLEANS = {"true": "verify-full", "false": "disable"}
_CA_KEYS = ("sslrootcert", "ssl-ca")


def _libpq(value: str) -> str | None:
    return value if value in LIBPQ_MODES else None


def _asyncpg(value: str) -> str | None:
    return _BOOLEANS.get(value) or _libpq(value)


def _mysql(value: str) -> str | None:
    return _MYSQL_MODES.get(value.replace("-", "_")) or _libpq(value)


_MODE_KEYS: Mapping[str, tuple[Callable[[str], str | None], str]] = {
    "sslmode": (_libpq, ", ".join(LIBPQ_MODES)),
    "ssl": (_asyncpg, "true, false, " + ", ".join(LIBPQ_MODES)),
    "ssl-mode": (_mysql, "DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY"),
}
ACCEPTED = "sslmode, ssl or ssl-mode (the TLS mode), sslrootcert or ssl-ca (the CA bundle)"


@dataclass(frozen=True, slots=True)
class TlsParams:
    """What a DSN's query says about TLS: libpq's sslmode name and the CA bundle's path, None when not given."""

    sslmode: str | None = None
    sslrootcert: str | None = None


def parse_params(query: str) -> TlsParams:
    """Read `a=b&c=d`; raise ValueError naming a parameter that is unknown, empty, repeated or has a bad value.
    Values of unknown parameters are never repeated (`password=` would be a secret)."""
    given: dict[str, str] = {}
    for pair in query.split("&"):
        if not pair:
            continue  # "?" alone or a trailing "&" carry nothing
        raw_key, equals, raw_value = pair.partition("=")
        key, value = unquote(raw_key), unquote(raw_value).strip()
        if key not in _MODE_KEYS and key not in _CA_KEYS:
            raise ValueError(
                f"unknown parameter {shown(key)}{did_you_mean(key, [*_MODE_KEYS, *_CA_KEYS])}: accepted are {ACCEPTED}"
            )
        if not equals or not value:
            raise ValueError(f"parameter {key} has no value ({_expected(key)})")
        if key in given:
            raise ValueError(f"parameter {key} is given twice: give it once")
        given[key] = value
    return TlsParams(sslmode=_mode(given), sslrootcert=_one(given, _CA_KEYS))


def _mode(given: Mapping[str, str]) -> str | None:
    key = _one_key(given, tuple(_MODE_KEYS))
    if key is None:
        return None
    parse, accepted = _MODE_KEYS[key]
    mode = parse(given[key].lower())
    if mode is None:
        raise ValueError(f"{key} {shown(given[key])} is not one of {accepted}")
    return mode


def _one(given: Mapping[str, str], keys: tuple[str, ...]) -> str | None:
    key = _one_key(given, keys)
    return given[key] if key is not None else None


def _one_key(given: Mapping[str, str], keys: tuple[str, ...]) -> str | None:
    present = [k for k in keys if k in given]
    if len(present) > 1:
        raise ValueError(f"{' and '.join(present)} say the same thing: give one of them")
    return present[0] if present else None


def _expected(key: str) -> str:
    if key in _CA_KEYS:
        return "expected the path of a CA bundle"
    return f"expected one of {_MODE_KEYS[key][1]}"
