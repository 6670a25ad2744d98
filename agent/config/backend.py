"""The backend probe's settings: AGENT_APP_URL / AGENT_APP_EXPECT_STATUS, or `app: {url, expect_status}` in --config.

The variables win over the file, field by field (like AGENT_LOG_LEVEL over `logging.level`). No message echoes
a query string or a user and password: either may be a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import SplitResult, urlsplit

from pydantic import SecretStr

from agent.config.echo import shown
from agent.config.hosts import host_problem
from agent.config.inputs import ConfigFile, EnvSettings
from agent.config.models import AppConfig, AppScheme, StatusRange

_URL_FORM = "expected http://host:port/path (an HTTP GET), https://... or tcp://host:port (a TCP connect only)"
_STATUS_FORM = "expected HTTP status codes and ranges within 100-599, e.g. 200-399, 200 or 200,204,300-399"
_STATUS = re.compile(r"^(\d+)(?:\s*-\s*(\d+))?$")
_SCHEMES: Mapping[str, AppScheme] = {"http": "http", "https": "https", "tcp": "tcp"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


class _Invalid(ValueError):
    """One problem with a value; the caller prefixes the field."""


def app_config(env: EnvSettings, file: ConfigFile | None, problems: list[str]) -> AppConfig | None:
    """The backend probe's AppConfig, None when no URL is configured; problems are appended, naming the field."""
    section = file.app if file else None
    url_field, url = "app.url", section.url.strip() if section else ""
    if env.app_url is not None and env.app_url.get_secret_value().strip():
        url_field, url = "AGENT_APP_URL", env.app_url.get_secret_value().strip()
    status_field, status = "app.expect_status", section.expect_status if section else None
    if env.app_expect_status is not None and env.app_expect_status.strip():
        status_field, status = "AGENT_APP_EXPECT_STATUS", env.app_expect_status
    if not url:
        if status is not None:
            problems.append(f"{status_field}: is set but there is no backend URL: set AGENT_APP_URL (or app.url)")
        return None
    try:
        parts = _split(url)
    except _Invalid as exc:
        problems.append(f"{url_field}: {exc}")
        return None
    ranges: tuple[StatusRange, ...] = ((200, 399),)
    if status is not None:
        if parts.scheme == "tcp":
            problems.append(f"{status_field}: applies to http:// and https:// URLs only; {url_field} is tcp://")
            return None
        try:
            ranges = parse_statuses(status)
        except _Invalid as exc:
            problems.append(f"{status_field}: {exc}")
            return None
    return _app(parts, ranges)


def parse_statuses(value: str | int | list[str | int]) -> tuple[StatusRange, ...]:
    """`200`, `200-299`, `200,204,300-399` (or a YAML list of those) -> ((low, high), ...); raises ValueError."""
    items = value if isinstance(value, list) else [value]
    tokens = [token.strip() for item in items for token in str(item).split(",")]
    if not tokens or not all(tokens):
        raise _Invalid(f"has an empty entry: {_STATUS_FORM}")
    return tuple(_status_range(token) for token in tokens)


def _status_range(token: str) -> StatusRange:
    match = _STATUS.match(token)
    if match is None:
        raise _Invalid(f"{shown(token)} is not a status code or range: {_STATUS_FORM}")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if not (100 <= low <= 599 and 100 <= high <= 599):
        raise _Invalid(f"{shown(token)} is outside 100-599: {_STATUS_FORM}")
    if low > high:
        raise _Invalid(f"{shown(token)} goes from high to low: write the range low-high ({high}-{low})")
    return low, high


def _split(url: str) -> SplitResult:
    if any(c.isspace() or not c.isprintable() for c in url):
        raise _Invalid(f"contains whitespace or control characters: {_URL_FORM}")
    visible = shown(_without_secrets(url))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _Invalid(f"{visible} is not a URL with a valid host and port (1-65535): {_URL_FORM}") from None
    if parts.scheme not in _SCHEMES or "://" not in url:
        raise _Invalid(f"{visible}: the scheme must be http://, https:// or tcp://: {_URL_FORM}")
    if "@" in parts.netloc:
        raise _Invalid(
            "a user or password in the URL is refused: it would show in /status and the logs. Point the probe at"
            " the backend's shallow liveness endpoint, which needs no credentials"
        )
    if not parts.hostname:
        raise _Invalid(f"{visible} has no host: {_URL_FORM}")
    if problem := host_problem(parts.hostname):
        raise _Invalid(f"{problem}: {_URL_FORM}")
    if port == 0 or (port is None and parts.scheme == "tcp"):
        raise _Invalid(f"{visible} needs a port within 1-65535, e.g. tcp://127.0.0.1:8000")
    if parts.scheme == "tcp" and (parts.path not in ("", "/") or parts.query):
        raise _Invalid(f"{visible}: a tcp:// URL only connects: drop the path and query string, or use http://")
    return parts


def _app(parts: SplitResult, ranges: tuple[StatusRange, ...]) -> AppConfig:
    scheme = _SCHEMES[parts.scheme]
    http = scheme != "tcp"
    return AppConfig(
        scheme=scheme,
        host=parts.hostname or "",
        port=parts.port or _DEFAULT_PORTS[scheme],
        path=(parts.path or "/") if http else "",
        query=SecretStr(parts.query) if parts.query else None,
        expect_status=ranges,
        url=f"{scheme}://{parts.netloc}{parts.path if http else ''}",
    )


def _without_secrets(url: str) -> str:
    """The URL for an error message: no query string, no fragment, no user or password."""
    base = re.split(r"[?#]", url, maxsplit=1)[0]
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/]*@", r"\1", base)
