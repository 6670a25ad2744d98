"""DSN parsing and validation, with the messages a person needs to fix a DSN; the AWS region named by an RDS
host or an ARN."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import SecretStr


class Engine(StrEnum):
    """Database engines the agent can log in to."""

    POSTGRESQL = "postgresql"
    MYSQL = "mysql"


class SslMode(StrEnum):
    """libpq's sslmode vocabulary, used for both engines."""

    DISABLE = "disable"
    PREFER = "prefer"
    REQUIRE = "require"
    VERIFY_CA = "verify-ca"
    VERIFY_FULL = "verify-full"

    @property
    def required(self) -> bool:
        """Whether a plaintext session is a failure."""
        return self not in (SslMode.DISABLE, SslMode.PREFER)


SCHEMES = {
    "postgresql": Engine.POSTGRESQL,
    "postgres": Engine.POSTGRESQL,
    "mysql": Engine.MYSQL,
    "mariadb": Engine.MYSQL,
}
DEFAULT_PORTS = {Engine.POSTGRESQL: 5432, Engine.MYSQL: 3306}
EXPECTED_FORM = "expected postgresql://user@host:5432/db or mysql://user@host:3306/db"
# "$TOKEN", "${DB_PASSWORD}", "<password>", "{{ token }}": templates, not passwords.
_PLACEHOLDER = re.compile(r"^(\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|<[^>]*>|\{\{.*\}\})$")
_RDS_HOST = re.compile(r"\.([a-z]{2}(?:-[a-z]+)+-\d)\.rds\.amazonaws\.com(?:\.cn)?$", re.IGNORECASE)


class DsnError(ValueError):
    """The DSN cannot be used; the message says what is wrong and what is expected, without the password."""


@dataclass(frozen=True, slots=True)
class Dsn:
    """A parsed database DSN. Its repr and str never contain the password."""

    engine: Engine
    host: str
    port: int
    database: str | None
    user: str | None
    password: SecretStr | None
    sslmode: SslMode | None
    sslrootcert: str | None

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"Dsn({self.render()!r})"

    def render(self) -> str:
        """The DSN as a person would write it, with any password masked."""
        auth = ""
        if self.user:
            auth = self.user + (":[REDACTED]" if self.password else "") + "@"
        query = f"?sslmode={self.sslmode}" if self.sslmode else ""
        return f"{self.engine}://{auth}{self.host}:{self.port}/{self.database or ''}{query}"


def parse_dsn(text: str) -> Dsn:
    """Parse a postgresql:// or mysql:// DSN; raise DsnError naming what is wrong."""
    text = text.strip()
    if not text:
        raise DsnError(f"DSN is empty ({EXPECTED_FORM})")
    if "://" not in text:
        raise DsnError(f"could not extract endpoint from DSN: missing '://' ({EXPECTED_FORM})")
    engine = _engine(text.split("://", 1)[0])
    _check_authority_is_whole(text.split("://", 1)[1])
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise DsnError(f"could not extract endpoint from DSN: {_port_problem(exc)} ({EXPECTED_FORM})") from None
    if not host:
        raise DsnError(f"could not extract endpoint from DSN: no host ({EXPECTED_FORM})")
    query = parse_qs(parts.query)
    return Dsn(
        engine=engine,
        host=host,
        port=port or DEFAULT_PORTS[engine],
        database=unquote(parts.path.lstrip("/")) or None,
        user=unquote(parts.username) if parts.username else None,
        password=_password(parts.password),
        sslmode=_sslmode(query),
        sslrootcert=_last(query, "sslrootcert"),
    )


def _check_authority_is_whole(rest: str) -> None:
    """Refuse an '@' after the first '/', '?' or '#': an unencoded one of those in the user or password ended the
    host part early (RFC 3986 3.2), so the rest of the password would be read as the port, database or query and
    shown in messages. Nothing of the DSN is echoed."""
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    if "@" in rest[cut:]:
        raise DsnError(
            "could not extract endpoint from DSN: '@' after the host part; a user or password containing '/', '?'"
            f" or '#' must be percent-encoded (%2F, %3F, %23) ({EXPECTED_FORM})"
        )


def region_from_host(host: str) -> str | None:
    """The AWS region in an RDS endpoint such as db.abc.eu-west-1.rds.amazonaws.com, if it is one."""
    match = _RDS_HOST.search(host)
    return match.group(1).lower() if match else None


def arn_region(arn: str | None) -> str | None:
    """The region in an ARN such as arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf; None for a
    name that is not an ARN, or an ARN without a region (arn:aws:iam::...)."""
    parts = arn.split(":") if arn and arn.startswith("arn:") else []
    return parts[3] if len(parts) > 3 and parts[3] else None


def parse_sslmode(value: str) -> SslMode:
    """An sslmode value, or DsnError listing the accepted ones."""
    try:
        return SslMode(value.strip().lower())
    except ValueError:
        accepted = ", ".join(m.value for m in SslMode)
        raise DsnError(f"sslmode {value!r} is not one of {accepted}") from None


def _engine(scheme: str) -> Engine:
    base = scheme.lower().split("+", 1)[0]  # SQLAlchemy style: postgresql+asyncpg://
    if base not in SCHEMES:
        raise DsnError(f"unsupported DSN scheme {scheme!r} ({EXPECTED_FORM}; postgres:// also works)")
    return SCHEMES[base]


def _password(raw: str | None) -> SecretStr | None:
    if not raw:
        return None
    value = unquote(raw)
    return None if _PLACEHOLDER.match(value) else SecretStr(value)


def _sslmode(query: dict[str, list[str]]) -> SslMode | None:
    value = _last(query, "sslmode") or _last(query, "ssl-mode")
    return parse_sslmode(value) if value else None


def _last(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[-1] if values else None


def _port_problem(exc: ValueError) -> str:
    text = str(exc)
    if "port" in text.lower():
        return "the port is not a number from 1 to 65535"
    return "the host part is malformed"
