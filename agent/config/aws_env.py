"""The standard AWS and proxy variables botocore reads itself, as facts the agent may name in messages and hints.

botocore reads the environment on its own; the agent reads the same values only to say which variable is at
fault (never to change what botocore does). Stdlib only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import ip_address, ip_network
from urllib.parse import urlsplit

WEB_IDENTITY_TOKEN_FILE = "AWS_WEB_IDENTITY_TOKEN_FILE"  # EKS IRSA: the projected service account token
ROLE_ARN = "AWS_ROLE_ARN"  # the role AssumeRoleWithWebIdentity asks for
# Lower case first: urllib (and so botocore's get_environ_proxies) and curl prefer it when both are set.
_PROXY_NAMES = {"http": ("http_proxy", "HTTP_PROXY"), "https": ("https_proxy", "HTTPS_PROXY")}
_NO_PROXY_NAMES = ("no_proxy", "NO_PROXY")


def aws_environ() -> Mapping[str, str]:
    """The process environment, as botocore sees it."""
    return os.environ


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """HTTP(S)_PROXY and NO_PROXY as set. Proxies are host:port only: a proxy URL may carry a user and password."""

    http_proxy: str | None  # "name=host:port", e.g. "HTTP_PROXY=proxy.corp:3128"
    https_proxy: str | None
    no_proxy: str | None  # "NO_PROXY=value" or None when unset
    _no_proxy_value: str = ""

    def bypasses(self, host: str) -> bool:
        """Whether NO_PROXY exempts `host`: `*`, the host itself, a domain suffix, or a CIDR block (curl, Go)."""
        return any(_matches(host.lower(), entry.strip().lower()) for entry in self._no_proxy_value.split(","))

    @property
    def any_proxy(self) -> bool:
        """Whether an HTTP or HTTPS proxy is set."""
        return bool(self.http_proxy or self.https_proxy)


def proxy_settings(environ: Mapping[str, str]) -> ProxySettings:
    """The proxy variables of `environ`, with any user and password removed from the proxy URLs."""
    found: dict[str, str | None] = {}
    for scheme, names in _PROXY_NAMES.items():
        name = next((n for n in names if environ.get(n)), None)
        found[scheme] = f"{name}={_host_port(environ[name])}" if name else None
    no_name = next((n for n in _NO_PROXY_NAMES if n in environ), None)
    no_value = environ.get(no_name, "") if no_name else ""
    return ProxySettings(found["http"], found["https"], f"{no_name}={no_value}" if no_name else None, no_value)


def _matches(host: str, entry: str) -> bool:
    entry = entry.split(":", 1)[0] if entry.count(":") == 1 else entry  # host:port
    if entry == "*":
        return True
    if "/" in entry:
        try:
            return ip_address(host) in ip_network(entry, strict=False)
        except ValueError:
            return False
    entry = entry.lstrip(".")
    return bool(entry) and (host == entry or host.endswith(f".{entry}"))


def _host_port(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or "?"
    return f"{host}:{port}" if port else host


@dataclass(frozen=True, slots=True)
class WebIdentity:
    """EKS IRSA's variables: the token file botocore reads for AssumeRoleWithWebIdentity, and the role."""

    token_file: str | None
    role_arn: str | None


def web_identity(environ: Mapping[str, str]) -> WebIdentity:
    """AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN as set (empty counts as unset, as botocore treats it)."""
    return WebIdentity(environ.get(WEB_IDENTITY_TOKEN_FILE) or None, environ.get(ROLE_ARN) or None)
