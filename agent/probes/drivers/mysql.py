"""MySQL and MariaDB through aiomysql: connect, ping, TLS facts, the IAM plugin check, and the error table.

Imported only by the database probe of a MySQL target, so a PostgreSQL-only agent never loads aiomysql.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.config.dsn import SslMode
from agent.config.hosts import address
from agent.config.models import TargetConfig
from agent.probes.base import Login
from agent.probes.db_facts import CONNECTIONS, MAX_CONNECTIONS, PASSWORD_EXPIRES_AT
from agent.probes.drivers import limits as sql
from agent.probes.drivers.certificate import server_certificate
from agent.probes.drivers.mysql_sha2 import Sha2Auth, held_back
from agent.probes.drivers.role import READ_ONLY_CODE, ServerRole, peer_address
from agent.probes.drivers.wire import PATIENCE, greeting_or_wrong_server
from agent.shared.answers import AnswerTooLarge
from agent.shared.reasons import Failure, ProbeFailure, Reason
from agent.shared.redact import one_line

# PyMySQL imports cryptography when it is first imported: held back here, before anything imports PyMySQL (the
# guards below do), so it is imported only when a login needs RSA (mysql_sha2.rsa_encrypt).
with held_back("cryptography"):
    import aiomysql
    import pymysql
    from pymysql.constants import CLIENT

from agent.probes.drivers.guard import MySqlGuard, too_large_failure
from agent.probes.drivers.mysql_auth import ClearPasswordGuard

APPLICATION_NAME = "ecs-health-agent"  # sent as program_name: shows in performance_schema connect attributes
CLOSE_TIMEOUT = 1.0
DEFAULT_DATABASE = "<database>"  # MySQL selects no database when the DSN names none
EXPIRED_READS_AS: str | None = None  # an expired password is said as such (1862, 1820): see TABLE
# Exceptions that mean "this connection or this attempt failed"; anything else is a bug and propagates.
ERRORS: tuple[type[BaseException], ...] = (pymysql.err.MySQLError, OSError, AnswerTooLarge)
_CLOSE_ERRORS: tuple[type[BaseException], ...] = (*ERRORS, TimeoutError)
_SKIP_GRANTS = "skip-grants user@"  # MySQL's CURRENT_USER() under --skip-grant-tables
_CLIENT_ERRORS = 2000  # error numbers from here on are the client's (CR_*), the server's below
_CANNOT_CHECK = frozenset({1044, 1064, 1142, 1227})  # no privilege, or a server without SHOW CREATE USER


@dataclass(frozen=True, slots=True)
class Rule:
    """How one kind of error is reported; an empty code means `mysql:<errno>`."""

    reason: Reason
    label: str
    code: str = ""
    show_text: bool = True  # False when the driver's text could carry part of a secret


# Keys: a server/client error number (`args[0]`) or an exception class (matched along its MRO).
# 2003 is refused, DNS failure, timeout and TLS failure alike: its entry splits by the `__cause__`'s class.
TABLE: Mapping[int | type[BaseException], Rule | Mapping[type[BaseException], Rule]] = {
    1045: Rule(Reason.AUTH, "login rejected"),
    1698: Rule(Reason.AUTH, "login rejected without a password check"),  # none sent, or a plugin that takes none
    # An expired password: refused at login when the client cannot handle it (PyMySQL does not say it can) and
    # disconnect_on_expired_password is on; otherwise let in, in "sandbox mode", where every statement but SET
    # PASSWORD / ALTER USER fails with 1820. MySQL and MariaDB docs, "Password Expiration and Sandbox Mode".
    1862: Rule(Reason.AUTH, "password expired", "db:password_expired"),
    1820: Rule(Reason.AUTH, "password expired (nothing runs until it is changed)", "db:password_expired"),
    # A write on a read-only server (drivers/role.py). 1290 is any option that prevents a statement; the agent's
    # own statements (SELECTs) meet it only as --read-only / --super-read-only.
    1290: Rule(Reason.SERVER, "the server runs with --read-only", READ_ONLY_CODE),
    1836: Rule(Reason.SERVER, "the server is in read-only mode", READ_ONLY_CODE),
    1044: Rule(Reason.AUTH, "no access to the database"),
    1130: Rule(Reason.AUTH, "this host may not connect"),
    1049: Rule(Reason.CONFIG, "database does not exist"),
    1251: Rule(Reason.CONFIG, "authentication method not supported by the client"),
    2059: Rule(Reason.CONFIG, "authentication plugin not supported by the client"),
    1040: Rule(Reason.SERVER, "too many connections"),
    1203: Rule(Reason.SERVER, "too many connections for this user"),
    1226: Rule(Reason.SERVER, "user resource limit reached"),
    1129: Rule(Reason.SERVER, "host blocked after too many connection errors"),
    1053: Rule(Reason.SERVER, "server shutting down"),
    3159: Rule(Reason.TLS, "server requires TLS"),
    2013: Rule(Reason.NETWORK, "lost connection"),
    2006: Rule(Reason.NETWORK, "server has gone away"),
    2003: {
        ssl.SSLCertVerificationError: Rule(Reason.TLS, "server certificate not trusted", "mysql:2003:tls_verify"),
        ssl.SSLError: Rule(Reason.TLS, "TLS handshake failed", "mysql:2003:tls"),
        socket.gaierror: Rule(Reason.DNS, "host name does not resolve", "mysql:2003:dns"),
        ConnectionRefusedError: Rule(Reason.NETWORK, "connection refused", "mysql:2003:refused"),
        TimeoutError: Rule(Reason.TIMEOUT, "TCP connect timed out", "mysql:2003:timeout"),
        OSError: Rule(Reason.NETWORK, "cannot connect", "mysql:2003:network"),
        BaseException: Rule(Reason.NETWORK, "cannot connect", "mysql:2003"),
    },
    pymysql.err.InterfaceError: Rule(Reason.NETWORK, "not connected", "mysql:not_connected"),
    pymysql.err.InternalError: Rule(Reason.NETWORK, "protocol error (is this a MySQL server?)", "mysql:protocol"),
    # aiomysql's own complaints about the exchange carry text, not an error number
    pymysql.err.OperationalError: Rule(Reason.NETWORK, "protocol error", "mysql:protocol"),
    socket.gaierror: Rule(Reason.DNS, "host name does not resolve", "db:dns"),
    ConnectionRefusedError: Rule(Reason.NETWORK, "connection refused", "db:refused"),
    TimeoutError: Rule(Reason.TIMEOUT, "timed out", "db:timeout"),
    OSError: Rule(Reason.NETWORK, "network error", "db:network"),
}


# Server messages that decide the rule before the error number: RDS Proxy answers a login it throttles with
# 1040, the number of "too many connections". Source: "Troubleshooting for RDS Proxy", MySQL errors
# (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy.troubleshooting.html): "ERROR 1040 (HY000):
# Connections rate limit exceeded (limit_value)" and "ERROR 1040 (HY000): IAM authentication rate limit exceeded".
MESSAGES: Mapping[str, Rule] = {
    "rate limit exceeded": Rule(Reason.THROTTLED, "RDS Proxy is throttling new logins", "mysql:1040:throttled"),
    # Same page: "ERROR 1040 (HY000): Number simultaneous connections exceeded (limit_value)" (a limit on connections
    # at once, not a rate: `server`, like 1040 itself), "ERROR 3159 (HY000): This RDS Proxy requires TLS connections."
    # (3159 alone is MySQL's require_secure_transport) and "ERROR 9501 (HY000): Timed-out waiting to acquire database
    # connection". Hints: proxy.py.
    "simultaneous connections exceeded": Rule(
        Reason.SERVER, "RDS Proxy is at its limit of client connections", "db:proxy_connections"
    ),
    "this rds proxy requires tls connections": Rule(Reason.TLS, "RDS Proxy requires TLS", "db:proxy_requires_tls"),
    "timed-out waiting to acquire database connection": Rule(
        Reason.SERVER, "RDS Proxy got no database connection in time", "db:proxy_borrow_timeout"
    ),
}
_PROXY_ERRNOS = frozenset({1040, 3159, 9501})  # the numbers RDS Proxy's own answers come with


def classify(exc: BaseException) -> Failure | None:
    """The Failure for an aiomysql/PyMySQL or socket error, from MESSAGES and TABLE; None if neither knows it."""
    if (too_large := too_large_failure(exc)) is not None:
        return too_large
    errno = exc.args[0] if isinstance(exc, pymysql.err.MySQLError) and exc.args else None
    said = next(
        (r for fragment, r in MESSAGES.items() if errno in _PROXY_ERRNOS and fragment in _text(exc).lower()), None
    )
    if said is not None:
        return _failure(said, exc, "")
    if isinstance(errno, int):
        entry = TABLE.get(errno)
        if isinstance(entry, Mapping):
            cause = exc.__cause__
            entry = _lookup(entry, type(cause) if cause is not None else BaseException)
        if entry is None:
            return Failure(Reason.UNKNOWN, f"mysql:{errno}", _text(exc))
        return _failure(entry, exc, f"mysql:{errno}")
    rule = _lookup(TABLE, type(exc))
    return _failure(rule, exc, "") if isinstance(rule, Rule) else None


def _lookup(table: Mapping[Any, Any], cls: type[BaseException]) -> Any:
    return next((table[c] for c in cls.__mro__ if c in table), None)


def _failure(rule: Rule, exc: BaseException, default_code: str) -> Failure:
    message = f"{rule.label}: {_text(exc)}" if rule.show_text else rule.label
    return Failure(rule.reason, rule.code or default_code, message)


def _text(exc: BaseException) -> str:
    args = exc.args
    text = str(args[1]) if isinstance(exc, pymysql.err.MySQLError) and len(args) > 1 else str(exc)
    cause = exc.__cause__
    if cause is not None and not isinstance(cause, UnicodeError):
        text += f" ({type(cause).__name__}: {cause})"
    return one_line(text) or type(exc).__name__  # redacted before its whitespace changes


class MySqlConnection:
    """An open aiomysql connection, reduced to what the probe needs."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.server_version: str = raw.get_server_info()
        # aiomysql exposes no TLS accessor; the transport is what was really negotiated
        # (private API: listed in agent/shared/private_api.py).
        ssl_object = raw._writer.transport.get_extra_info("ssl_object")
        self.tls: str | None = str(ssl_object.version()) if ssl_object is not None else None
        self.peer = peer_address(raw._writer.transport)
        self.certificate = server_certificate(ssl_object)
        self._watch: _CloseWatch | None = None

    def on_close(self, callback: Callable[[], None]) -> None:
        """aiomysql has no close event: watch the transport's own (connection_lost) through a relay protocol."""
        transport = self._raw._writer.transport
        self._watch = _CloseWatch(transport.get_protocol(), callback)
        transport.set_protocol(self._watch)

    async def ping(self) -> None:
        """Run SELECT 1."""
        async with self._raw.cursor() as cursor:
            await cursor.execute("SELECT 1")
            await cursor.fetchone()

    async def read_role(self) -> ServerRole:
        """read_only (--read-only, a replica) or innodb_read_only (an Aurora MySQL reader); both variables exist on
        MySQL 5.7/8.x and MariaDB. MariaDB 11 makes read_only an enum (OFF, ON, NO_LOCK, NO_LOCK_NO_ADMIN): every
        value but OFF refuses writes, with 1290 or 1836."""
        async with self._raw.cursor() as cursor:
            await cursor.execute("SELECT @@global.read_only, @@global.innodb_read_only")
            row = await cursor.fetchone()
        names = ("read_only", "innodb_read_only")
        on = [name for name, value in zip(names, row or (), strict=False) if str(value).upper() not in {"0", "OFF"}]
        if on:
            return ServerRole(True, f"{' and '.join(f'@@global.{name}' for name in on)} is on")
        return ServerRole(False, "@@global.read_only and @@global.innodb_read_only are off")

    async def check_iam_grant(self) -> bool | None:
        """Whether the logged-in user uses AWSAuthenticationPlugin; None when that cannot be checked."""
        try:
            async with self._raw.cursor() as cursor:
                # Allowed for one's own account without privileges; the row also holds a password hash,
                # which is only searched here and never kept.
                await cursor.execute("SHOW CREATE USER CURRENT_USER()")
                row = await cursor.fetchone()
        except pymysql.err.MySQLError as exc:
            if exc.args and exc.args[0] in _CANNOT_CHECK:
                return None
            raise
        return row is not None and "awsauthenticationplugin" in str(row[0]).lower()

    async def limits(self, *, password_expiry: bool) -> dict[str, str]:
        """Threads_connected and max_connections, and (with `password_expiry`) the account's password expiry where
        the user may read the account tables (agent.probes.drivers.limits); a fact it may not read is left out or
        "unknown (why)"."""
        facts: dict[str, str] = {}
        threads = sql.first_row(await self._rows(sql.MYSQL_THREADS), 2)
        settings = sql.first_row(await self._rows(sql.MYSQL_SETTINGS), 2)
        if settings is None:
            return facts
        if threads is not None:
            facts[CONNECTIONS] = str(threads[1])
        facts[MAX_CONNECTIONS] = str(settings[0])
        if password_expiry:
            facts[PASSWORD_EXPIRES_AT] = await self._password_expiry(settings[1])
        return facts

    async def _password_expiry(self, default_lifetime: object) -> str:
        mariadb = "mariadb" in self.server_version.lower()
        table = "mysql.global_priv" if mariadb else "mysql.user"
        rows = await self._rows(sql.MARIADB_EXPIRY if mariadb else sql.MYSQL_EXPIRY)
        if isinstance(rows, pymysql.err.MySQLError):
            return sql.unreadable(table, rows.args[0], _text(rows))
        row = sql.first_row(rows, 2)
        if row is None:
            return f"unknown (no row for CURRENT_USER() in {table})"
        return sql.mysql_expiry(row[0], row[1], default_lifetime)

    async def _rows(self, statement: str) -> list[tuple[Any, ...]] | pymysql.err.MySQLError:
        """The rows, or the server's refusal (an error number below 2000); a client error propagates."""
        try:
            async with self._raw.cursor() as cursor:
                await cursor.execute(statement)
                return list(await cursor.fetchall())
        except pymysql.err.MySQLError as exc:
            if exc.args and isinstance(exc.args[0], int) and exc.args[0] < _CLIENT_ERRORS:
                return exc
            raise

    async def unchecked_login(self) -> str | None:
        """Why the server let the login in without checking the password: it runs with --skip-grant-tables.

        MySQL and MariaDB always check the scramble the client sends, except then; the session's account is then
        'skip-grants user@skip-grants host' (MySQL) or '@' (MariaDB), never the user's own.
        """
        async with self._raw.cursor() as cursor:
            await cursor.execute("SELECT CURRENT_USER()")
            row = await cursor.fetchone()
        account = str(row[0]) if row else ""
        if account.strip("@") and not account.startswith(_SKIP_GRANTS):
            return None
        return f"runs with --skip-grant-tables (CURRENT_USER() is '{account}'), which checks no password at all"

    async def close(self) -> None:
        """Say goodbye (COM_QUIT) within CLOSE_TIMEOUT; then, or if that fails or is cancelled, drop it."""
        self._forget_watch()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._raw.ensure_closed()
        except _CLOSE_ERRORS:
            pass  # the socket is closed below either way
        finally:
            self.terminate()

    def terminate(self) -> None:
        """Drop the connection at once, without telling the server."""
        self._forget_watch()
        self._raw.close()

    def _forget_watch(self) -> None:
        if self._watch is not None:
            self._watch.callback = None  # our own close is not the server's


class _CloseWatch(asyncio.Protocol):
    """Relays every protocol event to aiomysql's own protocol, and says when the connection is lost."""

    def __init__(self, inner: asyncio.Protocol, callback: Callable[[], None]) -> None:
        self.inner = inner
        self.callback: Callable[[], None] | None = callback

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        # The server closed its side (KILL, shutdown). StreamReaderProtocol keeps a plain socket half-open, so
        # connection_lost would come only when aiomysql next writes: the EOF is the event.
        keep_open = self.inner.eof_received()
        self._fire()
        return keep_open

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)
        self._fire()

    def _fire(self) -> None:
        callback, self.callback = self.callback, None  # once
        if callback is not None:
            callback()


class _Connection(ClearPasswordGuard, MySqlGuard, Sha2Auth, aiomysql.Connection):  # type: ignore[misc]  # no types
    """aiomysql's connection, reporting progress and refusing to log in without TLS when TLS is required (and,
    through ClearPasswordGuard, to hand the password to a server without TLS in a form it can read; through
    MySqlGuard, to buffer an answer past the cap or read a greeting that is not MySQL's; Sha2Auth runs MySQL 8's
    default plugin with a reason for each outcome)."""

    # Overrides and reads aiomysql's private members (_get_server_information, _request_authentication, _host,
    # _port, _ssl_context): each is listed, with the test that guards it, in agent/shared/private_api.py.

    def __init__(self, *, require_tls: bool, on_step: Callable[[str], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._require_tls = require_tls
        self._on_step = on_step

    async def _get_server_information(self) -> None:
        self._on_step(f"waiting for the server greeting from {address(self._host, self._port)} (TCP connected)")
        patience = min(PATIENCE, self.connect_timeout / 4)  # a PostgreSQL or HTTP server never greets
        await greeting_or_wrong_server(
            super()._get_server_information(), host=self._host, port=self._port, patience=patience
        )

    async def _request_authentication(self) -> None:
        offers_tls = bool(self.server_capabilities & CLIENT.SSL)
        # aiomysql would silently continue in plaintext; stop before any credential is sent.
        if self._require_tls and not offers_tls:
            raise ProbeFailure(
                Reason.TLS,
                "db:tls_not_negotiated",
                f"server {address(self._host, self._port)} does not offer TLS, which this sslmode requires;"
                " no credentials were sent",
            )
        tls = self._ssl_context is not None and offers_tls
        self._on_step(f"TLS and login as {self.user}" if tls else f"login as {self.user}")
        await super()._request_authentication()


async def connect(
    target: TargetConfig,
    login: Login,
    *,
    context: ssl.SSLContext | None,
    connect_timeout: float,
    on_step: Callable[[str], None],
) -> MySqlConnection:
    """Open a connection and log in; with TLS required, no credential leaves before TLS is up."""
    on_step(f"TCP connect to {target.address}")
    raw = _Connection(
        require_tls=target.sslmode.required,
        on_step=on_step,
        host=target.host,
        port=target.port,
        user=login.user,
        password=utf8_for_aiomysql(login.password.get_secret_value()),
        db=target.database,
        ssl=None if target.sslmode is SslMode.DISABLE else context,
        connect_timeout=connect_timeout,  # covers only the TCP open; the caller bounds the whole login
        autocommit=True,
        program_name=APPLICATION_NAME,
    )
    connected = False
    try:
        await raw._connect()  # what aiomysql.connect() does, with our subclass (private API: see private_api.py)
        connected = True
    finally:
        if not connected:  # failed or cancelled part-way: never leave the socket to the garbage collector
            raw.close()
    return MySqlConnection(raw)


def utf8_for_aiomysql(password: str) -> str:
    """The password as aiomysql must be handed it to send its UTF-8 bytes.

    aiomysql puts `password.encode("latin1")` on the wire (every auth plugin), while the server hashed the bytes
    the password was set with, UTF-8 under utf8mb4 (MySQL and MariaDB's default): `café` would go out as one byte
    for `é` instead of two and be rejected (or not encode at all: `€`). The latin-1 string of the UTF-8 bytes
    encodes back to exactly those bytes; for ASCII it is the password itself.
    """
    return password.encode("utf-8").decode("latin-1")


HINTS: Mapping[str, str] = {
    "mysql:1045": (
        "The password for {user} was rejected by {host}, or no account {user} matches this task's address: "
        "compare the task definition's password ({password_source}) with the database's current password for "
        "{user}, and list the accounts as an admin: SELECT user, host, plugin FROM mysql.user WHERE user = "
        "'{user}'; (the host part must match this task, e.g. '%')."
    ),
    "mysql:1698": (
        "{host} turned {user} away without checking a password; none was sent (an empty password), or the account "
        "authenticates with a plugin that takes none (unix_socket or auth_socket, as root has on Debian and "
        "Ubuntu: it logs in only through the local socket). Give the agent an account of its own that has a "
        "password (IDENTIFIED BY), or AWSAuthenticationPlugin for IAM."
    ),
    "db:password_expired": (
        "The password of {user} on {host} has expired{password_expiry}: the server refuses the login (1862) or runs"
        " nothing until it is changed (1820, sandbox mode). An admin sets a new one: ALTER USER '{user}'@'%' "
        "IDENTIFIED BY '...'; (or SET PASSWORD FOR '{user}'@'%' = PASSWORD('...'); on MariaDB), and the task gets"
        " it ({password_source}). A service account should not expire: ALTER USER '{user}'@'%' PASSWORD EXPIRE "
        "NEVER; or default_password_lifetime = 0 in the DB parameter group."
    ),
    "mysql:1251": (
        "{user}'s account on {host} uses an authentication method aiomysql does not support: have an admin "
        "switch it to one it does, e.g. ALTER USER '{user}'@'%' IDENTIFIED WITH caching_sha2_password BY '...'; "
        "(or mysql_native_password), or use IAM auth."
    ),
    "mysql:2059": (
        "{host} switched {user}'s login to an authentication plugin aiomysql cannot speak ({detail}): e.g. "
        "MariaDB's client_ed25519 or auth_gssapi_client, or PAM's dialog. Give the agent's account a password "
        "plugin: ALTER USER '{user}'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('...'); (MariaDB) "
        "or IDENTIFIED WITH caching_sha2_password BY '...'; (MySQL)."
    ),
    "mysql:1053": (
        "{host} is shutting down (a restart, failover or maintenance): see the instance's RDS events; logins "
        "work again once it is back."
    ),
    "mysql:2013": (
        "{host}:{port} closed the connection in the middle of the conversation ({detail}). During the handshake "
        "that is usually a proxy or load balancer in between, a handshake slower than the server's "
        "connect_timeout, or a TLS setting the server refuses; the server's error log says which."
    ),
    "mysql:2006": (
        "{host} closed the connection ({detail}): a restart or failover, a KILL, or wait_timeout on an idle "
        "connection. The agent logs in again on its next run."
    ),
    "mysql:not_connected": (
        "The connection to {host}:{port} was already closed when it was used ({detail}): the server or a proxy "
        "ended it. The agent opens a new one on its next run."
    ),
    "mysql:protocol": (
        "{host}:{port} answered out of step with the MySQL protocol ({detail}): a proxy in between that does not"
        " speak MySQL, or a server that is not MySQL or MariaDB. Check the port and what listens on it."
    ),
    "mysql:1044": (
        "{user} may not use database {database} on {host}, or it does not exist (MySQL reports a missing "
        "database as access denied to users without privileges on it): check {database_in_dsn}, "
        "then GRANT ... ON `{database}`.* TO '{user}'@'%';"
    ),
    "mysql:1049": (
        "Database {database} does not exist on {host}: check {database_in_dsn};"
        " if it should exist, create it (CREATE DATABASE `{database}`;) or restore it."
    ),
    "mysql:1130": (
        "{host} has no account {user} for this task's address: the account's host part must match it (e.g. "
        "'{user}'@'%' or the VPC's CIDR)."
    ),
    "mysql:1040": (
        "The server is at max_connections. See who holds them (SHOW PROCESSLIST), look for leaked connections"
        " or oversized pools across the fleet, or raise max_connections in the DB parameter group."
    ),
    "mysql:1226": (
        "{user} has reached its own limit (MAX_USER_CONNECTIONS or another per-user resource limit): look for"
        " leaked connections, or raise it: ALTER USER '{user}'@'%' WITH MAX_USER_CONNECTIONS <n>;"
    ),
    "mysql:1203": (
        "{user} has reached the server-wide max_user_connections on {host} (a limit for every account, set in "
        "the DB parameter group): look for leaked connections or oversized pools, or raise it."
    ),
    "mysql:1129": (
        "{host} blocks this task's address after too many failed handshakes (max_connect_errors): run FLUSH "
        "HOSTS (or mysqladmin flush-hosts) and find what keeps failing."
    ),
    "mysql:3159": "{host} requires TLS (require_secure_transport): use sslmode=require or verify-full.",
    "mysql:2003:tls_verify": (
        "The server's certificate was not trusted under sslmode={sslmode} ({detail}). Point sslrootcert at "
        "the CA that signed it; for RDS: https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem."
    ),
    "mysql:sha2:needs_tls": (
        "{host} does the full SHA-2 authentication of {user} (caching_sha2_password, MySQL 8's default, after a "
        "cache miss; or sha256_password) only over TLS: it has no RSA key pair for logins without it. Set "
        "sslmode=require or verify-full (every RDS endpoint offers TLS)."
    ),
    "mysql:sha2:no_rsa": (
        "This installation of the agent lacks the Python package cryptography, which a full caching_sha2_password"
        " login without TLS needs (RSA): reinstall the agent with its dependencies, or set sslmode=require, with "
        "which no RSA is needed."
    ),
    "mysql:sha2:bad_key": (
        "{host} sent an RSA public key that cannot be used ({detail}): an admin checks the server's "
        "caching_sha2_password_public_key_path and sha256_password_public_key_path; or set sslmode=require, with "
        "which no key is needed."
    ),
    "mysql:sha2:protocol": (
        "{host}:{port} answered the SHA-2 authentication out of step ({detail}): a proxy in between that rewrites "
        "the login, or a server that is not MySQL. Set sslmode=require, or compare with a login to the server "
        "itself."
    ),
}

_IAM_CHECKLIST = (
    "IAM login as {user} was rejected by {host}. 1) As the master user, check the account's plugin: "
    "SELECT user, host, plugin FROM mysql.user WHERE user = '{user}'; it must be AWSAuthenticationPlugin."
    " If not: CREATE USER {user} IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'; (or ALTER USER {user} "
    "IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS';) and GRANT the privileges it needs on "
    "`{database}`.*. 2) IAM auth requires TLS (sslmode=require or verify-full); without it the server "
    "answers 'using password: NO'. 3) The task role needs rds-db:connect on "
    "arn:aws:rds-db:{region}:<account-id>:dbuser:<DbiResourceId>/{user}, IAM database authentication must"
    " be enabled on the instance, and the token must be made for host {host}, port {port}, user {user}, "
    "region {region}."
)

# With IAM auth, the server's access-denied answers mean the checklist, not a stale password.
IAM_HINTS: Mapping[str, str] = {
    "auth": _IAM_CHECKLIST,
    "mysql:1045": _IAM_CHECKLIST,
    "mysql:1698": _IAM_CHECKLIST,
}
