"""AGENT_DB_IAM_HOST (`aws_iam_auth.host`): the RDS endpoint an IAM token is signed for, when the connection goes
through another name (an SSH tunnel on localhost, an IP address, a CNAME, a load balancer).

An RDS IAM token is a SigV4 presigned URL for `host:port` (botocore's generate_db_auth_token signs
`https://{host}:{port}/?Action=connect&DBUser=...`), and RDS accepts it only for its own endpoint: a token signed for
`localhost` or a CNAME is rejected like a wrong password. Standard library only, like the rest of agent.config's
host helpers.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.config.dsn import region_from_host
from agent.config.echo import shown
from agent.config.hosts import host_problem, is_ip

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
EXAMPLE = "orders.c9akciq32.eu-west-1.rds.amazonaws.com or orders.c9akciq32.eu-west-1.rds.amazonaws.com:5432"


@dataclass(frozen=True, slots=True)
class IamHost:
    """The endpoint to sign for; `port` None means the connection's port."""

    host: str
    port: int | None


def parse_iam_host(value: str | None, *, field: str, iam_auth: bool, problems: list[str]) -> IamHost | None:
    """`host` or `host:port` as an IamHost; None when unset, or with the reason appended to `problems`."""
    if value is None:
        return None
    text = value.strip()
    if not iam_auth:
        problems.append(
            f"{field}: is set, but IAM auth is not enabled for this connection: the endpoint name is only used to"
            " sign an IAM token; set AGENT_DB_IAM_AUTH=true (aws_iam_auth.enabled), or unset it"
        )
        return None
    host, port = _split(text)
    problem = host_problem(host) if host else "the host is empty"
    if problem is None and port is not None and not (port.isdigit() and 1 <= int(port) <= 65535):
        problem = f"the port {shown(port)} is not a number from 1 to 65535"
    if problem is None and (is_ip(host) or host.lower() in _LOCAL_NAMES):
        problem = f"{shown(host)} cannot be an RDS endpoint name: name the endpoint RDS gave the database"
    if problem is not None:
        problems.append(f"{field}: {problem} (expected the RDS endpoint the token is signed for, e.g. {EXAMPLE})")
        return None
    return IamHost(host, int(port) if port else None)


def _split(text: str) -> tuple[str, str | None]:
    """`host` -> (host, None); `host:port` -> (host, port). An IPv6 literal has several ':' and is kept whole."""
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, port
    return text, None


def not_an_endpoint(host: str) -> str | None:
    """Why a connection host is not an RDS endpoint name to sign a token for (None when it is one).

    Certain for an IP address or localhost; for any other name it may still be right (a name in a partition
    this check does not know), so callers note it and do not fail."""
    if region_from_host(host):
        return None
    if is_ip(host):
        return "an IP address"
    if host.lower() in _LOCAL_NAMES:
        return "a loopback name (a tunnel or a port-forward)"
    return "not an RDS endpoint name (a CNAME, a load balancer or a proxy of your own?)"
