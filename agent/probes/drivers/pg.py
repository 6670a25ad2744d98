"""PostgreSQL through asyncpg: connect, ping, TLS facts, the rds_iam check, and asyncpg's error table.

Imported only by the database probe of a PostgreSQL target, so a MySQL-only agent never loads asyncpg.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import asyncpg

from agent.config.dsn import SslMode
from agent.config.models import TargetConfig
from agent.probes.base import Login
from agent.probes.db_facts import PASSWORD_EXPIRES_AT
from agent.probes.drivers import pg_auth
from agent.probes.drivers.certificate import ServerCertificate, server_certificate
from agent.probes.drivers.guard import bounded_answers, too_large_failure
from agent.probes.drivers.limits import PG_QUERY, pg_limits
from agent.probes.drivers.pg_auth import guarded
from agent.probes.drivers.role import READ_ONLY_CODE, ServerRole, peer_address
from agent.shared.reasons import Failure, Reason
from agent.shared.redact import one_line

APPLICATION_NAME = "ecs-health-agent"  # shows in pg_stat_activity, so a DBA can tell who is connected
CLOSE_TIMEOUT = 1.0
DEFAULT_DATABASE = "{user}"  # what PostgreSQL connects to when the DSN names no database
# A role whose VALID UNTIL has passed is refused like a wrong password (auth.c logs 'User "x" has an expired
# password' on the server only): the probe tells the two apart with the expiry an earlier login read.
EXPIRED_READS_AS: str | None = "pg:28P01"
# Exceptions that mean "this connection or this attempt failed"; anything else is a bug and propagates.
ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # e.g. a query on a connection the server has just terminated
    OSError,
)
_CLOSE_ERRORS: tuple[type[BaseException], ...] = (*ERRORS, TimeoutError)


@dataclass(frozen=True, slots=True)
class Rule:
    """How one kind of error is reported; an empty code means `pg:<sqlstate>`."""

    reason: Reason
    label: str
    code: str = ""


# Keys: a full SQLSTATE, a two-character SQLSTATE class, or an exception class (matched along its MRO).
# A plain ConnectionError carries no type of its own, so its entry maps message fragments to rules.
TABLE: Mapping[str | type[BaseException], Rule | Mapping[str, Rule]] = {
    "28P01": Rule(Reason.AUTH, "login rejected"),
    "28000": Rule(Reason.AUTH, "login not allowed"),
    "28": Rule(Reason.AUTH, "login rejected"),
    "42501": Rule(Reason.AUTH, "permission denied"),
    "25006": Rule(Reason.SERVER, "read-only transaction (a hot standby)", READ_ONLY_CODE),  # drivers/role.py
    "3D000": Rule(Reason.CONFIG, "database does not exist"),
    "53300": Rule(Reason.SERVER, "too many connections"),
    "53": Rule(Reason.SERVER, "server out of resources"),
    "57P03": Rule(Reason.SERVER, "server not accepting connections (starting up, shutting down or recovering)"),
    "57P01": Rule(Reason.SERVER, "connection ended by the server"),
    "57": Rule(Reason.SERVER, "server intervened"),
    "08": Rule(Reason.NETWORK, "connection failure"),
    ssl.SSLCertVerificationError: Rule(Reason.TLS, "server certificate not trusted", "db:tls_verify"),
    ssl.SSLError: Rule(Reason.TLS, "TLS handshake failed", "db:tls"),
    socket.gaierror: Rule(Reason.DNS, "host name does not resolve", "db:dns"),
    ConnectionRefusedError: Rule(Reason.NETWORK, "connection refused", "db:refused"),
    ConnectionResetError: Rule(Reason.NETWORK, "connection reset", "db:reset"),
    TimeoutError: Rule(Reason.TIMEOUT, "connect timed out", "db:timeout"),
    ConnectionError: {
        "rejected SSL upgrade": Rule(Reason.TLS, "server does not offer TLS", "db:tls_not_negotiated"),
        "error response during SSL exchange": Rule(Reason.SERVER, "server refused before TLS", "pg:ssl_exchange"),
        "": Rule(Reason.NETWORK, "connection failed", "db:network"),
    },
    OSError: Rule(Reason.NETWORK, "network error", "db:network"),
    asyncpg.InterfaceError: Rule(Reason.NETWORK, "connection lost", "pg:connection_closed"),
    asyncpg.InternalClientError: Rule(Reason.NETWORK, "connection in a broken state", "pg:client_state"),
    asyncpg.ClientConfigurationError: Rule(Reason.CONFIG, "client configuration", "pg:client_config"),
}


# Server messages that decide the rule whatever their SQLSTATE: RDS Proxy's answers to a login it throttles. The
# RDS User Guide gives their text, not their SQLSTATE, and under 28000 they would read as a rejected login. Source:
# "Troubleshooting for RDS Proxy", PostgreSQL errors
# (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy.troubleshooting.html): "The IAM authentication
# failed because of too many competing requests." and "Rate of connection to proxy exceeded number_value."
MESSAGES: Mapping[str, Rule] = {
    "too many competing requests": Rule(Reason.THROTTLED, "RDS Proxy is throttling IAM logins", "pg:throttled"),
    "rate of connection to proxy exceeded": Rule(
        Reason.THROTTLED, "RDS Proxy is throttling new connections", "pg:throttled"
    ),
    # The proxy's other answers, as listed on the same page ("Troubleshooting RDS Proxy issues with RDS for
    # PostgreSQL"); their SQLSTATE is not documented (28000 is seen with the TLS one). Hints: drivers/proxy.py.
    "maximum number of client connections to the proxy exceeded": Rule(  # at once, not a rate: like 53300
        Reason.SERVER, "RDS Proxy is at its limit of client connections", "db:proxy_connections"
    ),
    "this rds proxy requires tls connections": Rule(Reason.TLS, "RDS Proxy requires TLS", "db:proxy_requires_tls"),
    "allowed only with ssl connections": Rule(  # "IAM [authentication] is allowed only with SSL connections."
        Reason.TLS, "RDS Proxy takes IAM logins only over TLS", "db:proxy_requires_tls"
    ),
    "iam authentication failed for": Rule(Reason.AUTH, "RDS Proxy rejected the IAM login", "db:proxy_iam_auth"),
    "has no credentials for the role": Rule(
        Reason.AUTH, "RDS Proxy has no secret for this database user", "db:proxy_no_credentials"
    ),
    "the password that was provided for the role": Rule(
        Reason.AUTH, "RDS Proxy rejected the login (its secret differs)", "db:proxy_password"
    ),
    "timed-out waiting to acquire database connection": Rule(
        Reason.SERVER, "RDS Proxy got no database connection in time", "db:proxy_borrow_timeout"
    ),
}


# One SQLSTATE, several causes, each with its own fix: 28000 ("not allowed") is a pg_hba.conf rule, with or without
# encryption (auth.c's "no pg_hba.conf entry for host ..., no encryption | SSL encryption | GSS encryption"; "SSL
# off|on" before PostgreSQL 14), a failed PAM login (RDS's answer to a rejected IAM token), or a role (miscinit.c:
# 'role "x" is not permitted to log in', 'role "x" does not exist'). The server's message tells which.
KINDS: Mapping[str, Mapping[str, Rule]] = {
    "28000": {
        "pam authentication failed": Rule(Reason.AUTH, "PAM (RDS IAM) login rejected", "pg:28000:pam"),
        "is not permitted to log in": Rule(Reason.AUTH, "role may not log in", "pg:28000:nologin"),
        "does not exist": Rule(Reason.AUTH, "role does not exist", "pg:28000:no_role"),
        "no encryption": Rule(Reason.AUTH, "not allowed without TLS", "pg:28000:hba_plaintext"),
        "ssl off": Rule(Reason.AUTH, "not allowed without TLS", "pg:28000:hba_plaintext"),
        "ssl encryption": Rule(Reason.AUTH, "not allowed over TLS", "pg:28000:hba_tls"),
        "gss encryption": Rule(Reason.AUTH, "not allowed over GSS encryption", "pg:28000:hba_tls"),
        "ssl on": Rule(Reason.AUTH, "not allowed over TLS", "pg:28000:hba_tls"),
    },
}


def classify(exc: BaseException) -> Failure | None:
    """The Failure for an asyncpg or socket error, from MESSAGES, KINDS and TABLE; None if none knows it."""
    # asyncpg says "connection closed" when the cap, or the guard of the start-up (pg_auth.py), closed it
    if (cut := too_large_failure(exc) or pg_auth.malformed(exc)) is not None:
        return cut
    text = one_line(str(exc)) or type(exc).__name__  # redacted before its whitespace changes
    sqlstate = getattr(exc, "sqlstate", None) if isinstance(exc, asyncpg.PostgresError) else None
    if isinstance(sqlstate, str):
        said = next((r for fragment, r in MESSAGES.items() if fragment in text.lower()), None)
        if said is not None:
            return Failure(said.reason, said.code, f"{said.label}: {text} (SQLSTATE {sqlstate})")
        kinds = KINDS.get(sqlstate, {})
        kind = next((r for fragment, r in kinds.items() if fragment in text.lower()), None)
        rule = kind or TABLE.get(sqlstate) or TABLE.get(sqlstate[:2])
        if isinstance(rule, Rule):
            return Failure(rule.reason, rule.code or f"pg:{sqlstate}", f"{rule.label}: {text}")
        return Failure(Reason.UNKNOWN, f"pg:{sqlstate}", text)
    for cls in type(exc).__mro__:
        entry = TABLE.get(cls)
        if isinstance(entry, Rule):
            return Failure(entry.reason, entry.code, f"{entry.label}: {text}")
        if entry is not None:
            rule = next((r for fragment, r in entry.items() if fragment in text), None)
            return Failure(rule.reason, rule.code, f"{rule.label}: {text}") if rule else None
    return None


class PgConnection:
    """An open asyncpg connection, reduced to what the probe needs."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._password_asked = pg_auth.password_asked(raw)
        self.server_version: str = raw.get_settings().server_version
        self.tls = _tls_version(raw)
        self.peer = peer_address(raw._transport)  # private API, as for TLS (agent/shared/private_api.py)
        self.certificate = _server_certificate(raw)
        self._on_close: Callable[[], None] | None = None

    def on_close(self, callback: Callable[[], None]) -> None:
        """asyncpg's termination listener: called once the connection ends, whoever ended it."""
        self._on_close = callback
        self._raw.add_termination_listener(self._terminated)

    def _terminated(self, _raw: Any) -> None:
        if self._on_close is not None:
            self._on_close()

    async def ping(self) -> None:
        """Run SELECT 1."""
        await self._raw.fetchval("SELECT 1")

    async def read_role(self) -> ServerRole:
        """A hot standby (pg_is_in_recovery(); an Aurora PostgreSQL reader too) or a read-only session
        (transaction_read_only, from default_transaction_read_only): writes fail with SQLSTATE 25006."""
        row = await self._raw.fetchrow("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')")
        in_recovery, read_only = bool(row[0]), str(row[1]) == "on"
        if in_recovery:
            return ServerRole(True, "pg_is_in_recovery() is true: a hot standby")
        if read_only:
            return ServerRole(True, "transaction_read_only is on (default_transaction_read_only)")
        return ServerRole(False, "pg_is_in_recovery() is false and transaction_read_only is off")

    async def check_iam_grant(self) -> bool | None:
        """Whether the logged-in user is a member of rds_iam; None when that cannot be checked."""
        query = "SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = 'rds_iam'"
        try:
            member = await self._raw.fetchval(query)
        except asyncpg.InsufficientPrivilegeError:
            return None
        return bool(member)  # no row: there is no rds_iam role at all, so not a member

    async def limits(self, *, password_expiry: bool) -> dict[str, str]:
        """The role's VALID UNTIL (with `password_expiry`) and the connection headroom, in one query
        (agent.probes.drivers.limits); "unknown (why)" when the server cannot answer it (a PostgreSQL look-alike)."""
        try:
            row = await self._raw.fetchrow(PG_QUERY)
        except asyncpg.PostgresError as exc:
            return {PASSWORD_EXPIRES_AT: f"unknown ({one_line(str(exc))})"} if password_expiry else {}
        return pg_limits(row, password=password_expiry)

    async def unchecked_login(self) -> str | None:
        """Why the server let the login in without a password (after "the server"): it never asked for one."""
        if self._password_asked is not False:
            return None
        return "never asked for a password (pg_hba.conf trust, or cert or peer authentication)"

    async def close(self) -> None:
        """Close politely within CLOSE_TIMEOUT; otherwise, or if cancelled, drop the socket."""
        self._on_close = None  # our own close is not the server's
        try:
            await self._raw.close(timeout=CLOSE_TIMEOUT)
        except _CLOSE_ERRORS:
            pass  # asyncpg has already aborted the transport
        finally:
            self.terminate()

    def terminate(self) -> None:
        """Drop the connection at once, without telling the server."""
        self._on_close = None
        if not self._raw.is_closed():
            self._raw.terminate()


@bounded_answers  # no answer of the server may pass the cap (agent/probes/drivers/guard.py)
async def connect(
    target: TargetConfig,
    login: Login,
    *,
    context: ssl.SSLContext | None,
    connect_timeout: float,
    on_step: Callable[[str], None],
) -> PgConnection:
    """Open a TCP connection, then log in (TLS first when the sslmode asks for it)."""
    on_step(f"TCP connect to {target.address}")
    await _tcp_reachable(target.host, target.port)
    tls = target.sslmode is not SslMode.DISABLE
    on_step(f"TLS and login as {login.user}" if tls else f"login as {login.user}")
    connecting = partial(
        asyncpg.connect,
        host=target.host,
        port=target.port,
        user=login.user,
        password=login.password.get_secret_value(),
        database=target.database,
        ssl=_ssl_argument(target.sslmode, context),
        timeout=connect_timeout,
        statement_cache_size=0,  # nothing is run twice; also safe behind RDS Proxy / pgbouncer
        server_settings={"application_name": APPLICATION_NAME},
    )
    raw = await guarded(connecting, f"{target.host}:{target.port}")  # never a cleartext password without TLS
    return PgConnection(raw)


async def _tcp_reachable(host: str, port: int) -> None:
    # asyncpg reports no progress, so a hung connect could not tell "no TCP" (a security group) from "TCP up,
    # no answer". PostgreSQL ends a connection that sends nothing without an error in its log (only
    # log_connections=on shows a "connection received" line), so checking first is cheap. Not done for MySQL:
    # it counts such connections against max_connect_errors and would block this host.
    transport, _ = await asyncio.get_running_loop().create_connection(asyncio.Protocol, host, port)
    transport.abort()


def _ssl_argument(mode: SslMode, context: ssl.SSLContext | None) -> ssl.SSLContext | str | bool:
    if mode is SslMode.DISABLE:
        return False
    if mode is SslMode.PREFER or context is None:
        return "prefer"  # only asyncpg's own mode falls back to plaintext when the server has no TLS
    return context


def _tls_version(raw: Any) -> str | None:
    # asyncpg exposes no public TLS accessor; the transport is what was really negotiated
    # (private API: listed in agent/shared/private_api.py).
    ssl_object = raw._transport.get_extra_info("ssl_object")
    return str(ssl_object.version()) if ssl_object is not None else None


def _server_certificate(raw: Any) -> ServerCertificate | None:
    # the same private transport as _tls_version
    return server_certificate(raw._transport.get_extra_info("ssl_object"))


_IAM_CHECKLIST = (
    "IAM login as {user} was rejected by {host}. 1) As the master user, check that {user} can log in and "
    "is a member of rds_iam: SELECT r.rolname, r.rolcanlogin FROM pg_roles r JOIN pg_auth_members m ON "
    "r.oid = m.member WHERE m.roleid = (SELECT oid FROM pg_roles WHERE rolname = 'rds_iam') AND r.rolname"
    " = '{user}'; no row means: GRANT rds_iam TO {user}; 2) The task role needs rds-db:connect on "
    "arn:aws:rds-db:{region}:<account-id>:dbuser:<DbiResourceId>/{user} (the instance's DbiResourceId, or"
    " cluster-XXXX for Aurora). 3) IAM database authentication must be enabled on the instance, and the "
    "token must be made for host {host}, port {port}, user {user}, region {region}."
)

HINTS: Mapping[str, str] = {
    "pg:28000": (
        "{host} did not let {user} log in to database {database} ({detail}): the pg_hba.conf rule that matches "
        "this connection rejects it or uses a method a password cannot satisfy (ident, cert, ldap...). As an admin,"
        " see which rule matches: SELECT line_number, type, database, user_name, address, auth_method FROM "
        "pg_hba_file_rules;"
    ),
    "pg:28000:hba_plaintext": (
        "pg_hba.conf on {host} has no rule that lets {user} connect to database {database} from this task "
        "without TLS, or a rule rejects it ({detail}): servers that accept only TLS (hostssl rules; on RDS, "
        "rds.force_ssl=1, the default from PostgreSQL 15) answer a plaintext connection this way. Set "
        "sslmode=require or verify-full."
    ),
    "pg:28000:hba_tls": (
        "pg_hba.conf on {host} has no rule that lets {user} connect to database {database} from this task's "
        "address, although the connection uses TLS, or a rule rejects it ({detail}). Rules match on database, "
        "user and client address: check the user and database names in the DSN, then have an admin add a "
        "hostssl rule for them and the task's subnet (and SELECT pg_reload_conf();)."
    ),
    "pg:28000:pam": (
        "{host} checks {user}'s login through PAM and rejected the password; on RDS, that means {user} is a "
        "member of rds_iam, so RDS expects an IAM token instead of a password. Either log in with IAM "
        "(AGENT_DB_IAM_AUTH=true), or have the master user run REVOKE rds_iam FROM {user}; to log in with its "
        "password."
    ),
    "pg:28000:nologin": (
        "Role {user} exists on {host} but may not log in (rolcanlogin is false: created as a group role, or "
        "with NOLOGIN). As an admin: ALTER ROLE {user} LOGIN; or log in as a role that has LOGIN."
    ),
    "pg:28000:no_role": (
        "Role {user} does not exist on {host}: check the user name (in the DSN, AGENT_DB_USER or the secret's "
        "username), or have an admin create it: CREATE ROLE {user} LOGIN;"
    ),
    "db:password_expired": (
        "The password of role {user} on {host} expired{password_expiry} (its VALID UNTIL): PostgreSQL then "
        "refuses every login of {user} with 28P01, as for a wrong password, and says why only in its own log. As an"
        " admin: ALTER ROLE {user} VALID UNTIL 'infinity'; (or a later date; a service account's password is best "
        "kept without one). The same password works again at once."
    ),
    "pg:42501": ("{user} may not connect to database {database}: GRANT CONNECT ON DATABASE {database} TO {user};"),
    "pg:3D000": (
        "Database {database} does not exist on {host}: check {database_in_dsn};"
        " if it should exist, create it (CREATE DATABASE {database};) or restore it."
    ),
    "pg:53300": (
        "The server, or the role {user} (CONNECTION LIMIT), is at its connection limit (max_connections). See"
        " who holds them: SELECT usename, application_name, count(*) FROM pg_stat_activity GROUP BY 1, 2; "
        "then look for leaked connections or oversized pools across the fleet, or raise max_connections in "
        "the DB parameter group."
    ),
    "pg:57P03": (
        "The server is starting up, shutting down or recovering: usually a reboot, failover or maintenance. "
        "Check the instance's RDS events; if it lasts, the instance may be stuck in recovery."
    ),
}

# With IAM auth, a rejected token reads as a failed PAM login (28000) on RDS: the checklist, not pg_hba.conf.
IAM_HINTS: Mapping[str, str] = {
    "auth": _IAM_CHECKLIST,
    "pg:28000:pam": _IAM_CHECKLIST,
}
