"""Writer or reader: what the server a login reached says of its role, and a mismatch with AGENT_DB_EXPECT_ROLE.

Each driver reads the role on a fresh login (`Connection.read_role`, one round trip) and the address it reached
(`Connection.peer`, the transport's peername); a kept connection's pings stay SELECT 1. A mismatch is reason
`server`, scope `shared`:

- `server`, not a new Reason: the server is up and answers, but is not the one the backend needs, as with "too
  many connections"; the code (`db:read_only`, `db:not_a_reader`) tells them apart in /status, `check` and the
  logs. A new Reason would add a zero series to `health_agent_probe_failures_total` for every probe and target
  (credentials, secret, token and app too, which can never have it).
- `shared`: a failover is seen by every task at once, and what fixes it is a fresh DNS lookup once the endpoint
  points at the new writer, not a replacement task; `task` scope would have the ALB and ECS churn the fleet.

Sources: Amazon Aurora User Guide, "Best practices with Amazon Aurora MySQL", "Determining which DB instance you are
connected to" (innodb_read_only is ON on a reader DB instance, OFF on the writer); "Amazon Aurora endpoint
connections" / "Cluster endpoints" and AWS Knowledge Center "aurora-mysql-redirected-endpoint-writer" (Aurora's DNS
zone uses a TTL of 5 seconds; clients, resolvers and JVMs cache longer, so after a failover they reach the old
writer, now a reader); "Reader endpoints for Amazon Aurora" (a cluster without an available reader has its reader
endpoint connect to the writer). PostgreSQL: pg_is_in_recovery() is true on a hot standby, where every transaction
is read-only (SQLSTATE 25006 read_only_sql_transaction on a write). MySQL/MariaDB: a write on a read-only server is
1290 ER_OPTION_PREVENTS_STATEMENT ("running with the --read-only option") or 1836 ER_READ_ONLY_MODE.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.config.models import ExpectRole
from agent.probes.db_facts import READ_ONLY, RESOLVED_ADDRESS
from agent.shared.reasons import ProbeFailure, Reason, Scope

# Failure codes (docs/reasons.md); the driver tables map the write errors of a read-only server to the
# first one too (pg 25006, mysql 1290 and 1836), with the same hint.
READ_ONLY_CODE = "db:read_only"
NOT_A_READER_CODE = "db:not_a_reader"
UNKNOWN_ADDRESS = "not known"  # the hint's {resolved_address} when no login read it


@dataclass(frozen=True, slots=True)
class ServerRole:
    """What the server said of itself: read-only or not, and why, in its own settings' names."""

    read_only: bool
    why: str  # e.g. "pg_is_in_recovery() is true: a hot standby"


@dataclass(frozen=True, slots=True)
class RoleHold:
    """After a mismatch, no new login while the host name still resolves to the same address (serve only).

    What fixes a failover is the name resolving to the new writer; until it does, a login per interval would only
    repeat the answer, and at a fleet's scale (10,000 tasks, 10 s) be a storm of 1,000 logins/s on the old
    writer. So each run looks the name up (no login, no query) and repeats the failure while the address is the
    same, for at most `limit` seconds (AGENT_DB_REAUTH_SECONDS, the fresh-login cadence).
    """

    failure: ProbeFailure
    host: str
    address: str
    since: float  # time.monotonic() of the mismatched login

    def still(self, addresses: set[str], now: float, limit: float) -> ProbeFailure | None:
        """The failure to repeat, or None: the name resolves elsewhere now, or the fresh-login cadence is due."""
        left = limit - (now - self.since)
        if self.address not in addresses or left <= 0:
            return None
        held = self.failure.failure
        message = (
            f"{held.message}; {self.host} still resolves to {self.address}: the agent logs in again as soon as it"
            f" resolves elsewhere, or in {left:.0f}s"
        )
        return ProbeFailure(held.reason, held.code, message, held.scope, held.details)


def peer_address(transport: Any) -> str | None:
    """The IP address a transport is connected to (its "peername": (host, port) or, for IPv6, (host, port, flow,
    scope)): what the host name resolved to for this connection; None when the transport does not say."""
    peer = transport.get_extra_info("peername") if transport is not None else None
    return str(peer[0]) if isinstance(peer, tuple) and peer else None


def role_details(role: ServerRole, peer: str | None) -> dict[str, str]:
    """The details keys every output reads back (agent.probes.db_facts): read_only yes/no, resolved_address."""
    return {READ_ONLY: "yes" if role.read_only else "no"} | ({RESOLVED_ADDRESS: peer} if peer else {})


def mismatch(expect: ExpectRole, role: ServerRole, host: str, details: Mapping[str, str]) -> ProbeFailure | None:
    """The failure for a server whose role is not the expected one (None when it is, or any role will do); it
    carries the login's details, so /status still shows the address and the role."""
    address = details.get(RESOLVED_ADDRESS, UNKNOWN_ADDRESS)
    if expect is ExpectRole.WRITER and role.read_only:
        code, expected = READ_ONLY_CODE, "a writer"
    elif expect is ExpectRole.READER and not role.read_only:
        code, expected = NOT_A_READER_CODE, "a reader"
    else:
        return None
    message = f"expected {expected} (expect_role={expect}), but {host} resolved to {address}, where {role.why}"
    return ProbeFailure(Reason.SERVER, code, message, Scope.SHARED, details)


_RECONNECT = (
    "An endpoint's old address stays cached for a while: Aurora's endpoints have a DNS TTL of 5 s, but"
    " resolvers, the OS and runtimes cache longer (a JVM's networkaddress.cache.ttl, at worst for ever), and pooled"
    " connections stay where they were opened. Have the backend reconnect: close its pooled connections, and give"
    " the pool a maximum connection lifetime (HikariCP maxLifetime, SQLAlchemy pool_recycle, Go's"
    " SetConnMaxLifetime), so that new connections resolve {host} again; this holds for PostgreSQL and MySQL alike."
    " The agent drops its own connection, looks the name up again on every run, and logs in anew as soon as it"
    " resolves elsewhere (or every AGENT_DB_REAUTH_SECONDS), until it passes."
)

HINTS: Mapping[str, str] = {
    READ_ONLY_CODE: (
        "{host} resolved to {resolved_address}, and the server there is read-only, but this target"
        " expects the writer: after a failover, the old writer is a reader. "
        + _RECONNECT
        + " If it lasts, check that {host} is the cluster (writer) endpoint, not an instance or reader endpoint"
        " (`aws rds describe-db-clusters` lists them), or set expect_role to reader or any."
    ),
    NOT_A_READER_CODE: (
        "{host} resolved to {resolved_address}, and the server there accepts writes, but this target"
        " expects a reader. Aurora's reader endpoint connects to the writer while the cluster has no available"
        " reader (none, or all restarting after a failover), and after a failover a reader's address may now be"
        " the writer's. " + _RECONNECT + " If it lasts, check that the cluster has a reader in state available"
        " and that {host} is its reader endpoint."
    ),
}
