"""DSN parsing and validation, with the messages a person needs to fix a DSN; the AWS region named by an RDS
host or an ARN."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr

from agent.config.dsn_params import parse_params
from agent.config.echo import shown
from agent.config.hosts import address, host_problem, normal_host


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
_IPV6_FORM = "expected postgresql://user@[2001:db8::5]:5432/db"
_DELIMITERS = "/?#@[]"
_ENCODINGS = "'/' as %2F, '?' as %3F, '#' as %23, '@' as %40, '[' as %5B, ']' as %5D, '%' as %25"
# "$TOKEN", "${DB_PASSWORD}", "<password>", "{{ token }}": templates, not passwords.
_PLACEHOLDER = re.compile(r"^(\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|<[^>]*>|\{\{.*\}\})$")
# An RDS Proxy endpoint: NAME.proxy-XXXX.REGION.rds.amazonaws.com (its default endpoint), or
# NAME.endpoint.proxy-XXXX.REGION.rds.amazonaws.com (one made with create-db-proxy-endpoint, e.g. a read-only one);
# RDS User Guide, "Working with Amazon RDS Proxy endpoints".
_RDS_PROXY_NAME = re.compile(r"^[^.]+(?:\.endpoint)?\.proxy-[a-z0-9]+\.", re.IGNORECASE)  # then REGION.rds...
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
            auth = self.user + (":[REDACTED]" if self.password is not None else "") + "@"
        query = f"?sslmode={self.sslmode}" if self.sslmode else ""
        return f"{self.engine}://{auth}{address(self.host, self.port)}/{self.database or ''}{query}"


def parse_dsn(text: str) -> Dsn:
    """Parse a postgresql:// or mysql:// DSN; raise DsnError naming what is wrong, never repeating the password."""
    text = text.strip()
    if not text:
        raise DsnError(f"DSN is empty ({EXPECTED_FORM})")
    if "://" not in text:
        raise DsnError(f"could not extract endpoint from DSN: missing '://' ({EXPECTED_FORM})")
    _check_characters(text)
    scheme, rest = text.split("://", 1)
    engine = _engine(scheme)
    userinfo, hostport = _authority(rest)
    _check_hostport(hostport)
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        if "[" in userinfo or "]" in userinfo:
            raise DsnError(_reserved(userinfo)) from None
        raise DsnError(f"could not extract endpoint from DSN: {_port_problem(exc)} ({EXPECTED_FORM})") from None
    _check_host(host)
    if port == 0:
        raise DsnError(f"could not extract endpoint from DSN: port 0 is not a port from 1 to 65535 ({EXPECTED_FORM})")
    if "#" in rest:
        raise DsnError("a DSN has no '#' part: a '#' in the database name or a parameter must be written %23")
    try:
        params = parse_params(parts.query)
    except ValueError as exc:
        raise DsnError(str(exc)) from None
    return Dsn(
        engine=engine,
        host=normal_host(host or ""),
        port=port or DEFAULT_PORTS[engine],
        database=unquote(parts.path.lstrip("/")) or None,
        user=unquote(parts.username) if parts.username else None,
        password=_password(parts.password),
        sslmode=SslMode(params.sslmode) if params.sslmode else None,
        sslrootcert=params.sslrootcert,
    )


def _check_characters(text: str) -> None:
    """urlsplit deletes a tab or line break anywhere in a URL: a password holding one would silently change."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise DsnError(
            "the DSN holds a control character (a tab, a line break or another below U+0020): percent-encode it"
            " (%09 for a tab, %0A for a line feed), or leave the password out of the DSN and set AGENT_DB_PASSWORD"
        )


def _authority(rest: str) -> tuple[str, str]:
    """(user:password, host:port) of what follows '://'. An unencoded '/', '?' or '#' in the user or password ends
    the host part early (RFC 3986 3.2), so the rest of the password would be read as the port, database or query,
    shown in messages and looked up in DNS: an '@' after the first of them is refused, and nothing is echoed."""
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    if "@" in rest[cut:]:
        raise DsnError(_reserved(rest[: rest.rfind("@")]))
    userinfo, _, hostport = rest[:cut].rpartition("@")
    return userinfo, hostport


def _reserved(userinfo: str) -> str:
    """Which part holds a reserved character, and how to write it; no character of either part is repeated."""
    user, has_password, _ = userinfo.partition(":")
    if has_password and not any(c in user for c in _DELIMITERS):
        return (
            f"the DSN's password holds a character that must be percent-encoded in a URL ({_ENCODINGS}), or leave"
            " the password out of the DSN and set AGENT_DB_PASSWORD (or use a secret)"
        )
    return (
        f"the DSN's user name holds a character that must be percent-encoded in a URL ({_ENCODINGS}); an '@' in"
        " the database name or a parameter is written %40 too"
    )


def _check_hostport(hostport: str) -> None:
    """Two shapes urlsplit would misread as a bad port: several hosts, and an IPv6 address without brackets."""
    if "," in hostport:
        count = hostport.count(",") + 1
        raise DsnError(
            f"the DSN names {count} hosts: a target is one host (give each host its own connection in --config,"
            " or use the cluster endpoint, which follows the writer)"
        )
    if hostport.count(":") > 1 and "[" not in hostport:
        raise DsnError(f"could not extract endpoint from DSN: an IPv6 address goes in brackets ({_IPV6_FORM})")


def _check_host(host: str | None) -> None:
    if not host:
        raise DsnError(f"could not extract endpoint from DSN: no host ({EXPECTED_FORM})")
    problem = host_problem(host)
    if problem:
        raise DsnError(f"could not extract endpoint from DSN: {problem}")


def region_from_host(host: str) -> str | None:
    """The AWS region in an RDS endpoint such as db.abc.eu-west-1.rds.amazonaws.com, if it is one."""
    match = _RDS_HOST.search(host)
    return match.group(1).lower() if match else None


def is_proxy_host(host: str) -> bool:
    """Whether `host` is an RDS Proxy endpoint (its region comes from region_from_host like any RDS endpoint's)."""
    return _RDS_PROXY_NAME.match(host) is not None and region_from_host(host) is not None


def arn_region(arn: str | None) -> str | None:
    """The region in an ARN such as arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf; None for a
    name that is not an ARN, or an ARN without a region (arn:aws:iam::...)."""
    parts = arn.split(":") if arn and arn.startswith("arn:") else []
    return parts[3] if len(parts) > 3 and parts[3] else None


def _engine(scheme: str) -> Engine:
    base = scheme.lower().split("+", 1)[0]  # SQLAlchemy style: postgresql+asyncpg://
    if base not in SCHEMES:
        raise DsnError(f"unsupported DSN scheme {shown(scheme)} ({EXPECTED_FORM}; postgres:// also works)")
    return SCHEMES[base]


def _password(raw: str | None) -> SecretStr | None:
    """The DSN's password: None without one (or a placeholder); an empty one ("user:@host") is a password.

    A placeholder is matched as written: a percent-encoded one (`%24A`) was encoded on purpose, so it is a literal."""
    if raw is None or _PLACEHOLDER.match(raw):
        return None
    return SecretStr(unquote(raw))


def _port_problem(exc: ValueError) -> str:
    text = str(exc)
    if "port" in text.lower():
        return "the port is not a number from 1 to 65535"
    return "the host part is malformed"
