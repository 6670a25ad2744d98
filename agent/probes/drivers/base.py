"""What the database probe needs from a driver module (pg.py, mysql.py), and the TLS context it hands over."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol

from agent.config.dsn import Engine, SslMode
from agent.config.models import TargetConfig
from agent.probes.base import Login
from agent.probes.drivers.certificate import KeepsServerCertificate, ServerCertificate
from agent.probes.drivers.role import ServerRole
from agent.shared.reasons import Failure, ProbeFailure, Reason, describe


class Connection(Protocol):
    """What the probe needs from an open connection of either driver."""

    server_version: str
    tls: str | None  # the negotiated TLS version, read from the transport; None for plaintext
    peer: str | None  # the IP address the connection reached (the transport's peername); None if not known
    certificate: ServerCertificate | None  # the server's certificate from the transport, whatever was verified

    async def ping(self) -> None: ...

    async def read_role(self) -> ServerRole:
        """Whether the server is read-only (a standby, a reader), in one round trip; on a fresh login only."""
        ...

    async def check_iam_grant(self) -> bool | None: ...

    async def limits(self, *, password_expiry: bool) -> dict[str, str]:
        """The password expiry (with `password_expiry`) and connection headroom as details
        (agent.probes.drivers.limits); a fact the login may not read is "unknown (why)" or left out."""
        ...

    async def unchecked_login(self) -> str | None:
        """Why the server let this login in unchecked, said after "the server"; None if it checked (or cannot
        tell)."""
        ...

    async def close(self) -> None: ...
    def terminate(self) -> None: ...

    def on_close(self, callback: Callable[[], None]) -> None:
        """Have `callback` called when the server or the network closes the connection (not when we do)."""
        ...


class Driver(Protocol):
    """A driver module (pg, mysql): its connect function, error table and hints."""

    ERRORS: tuple[type[BaseException], ...]
    DEFAULT_DATABASE: str  # for hints, when the DSN names no database ({user} is filled in)
    HINTS: Mapping[str, str]
    IAM_HINTS: Mapping[str, str]
    EXPIRED_READS_AS: str | None  # the code an expired password is refused with, when the server hides why

    def classify(self, exc: BaseException) -> Failure | None: ...

    def connect(
        self,
        target: TargetConfig,
        login: Login,
        *,
        context: ssl.SSLContext | None,
        connect_timeout: float,
        on_step: Callable[[str], None],
    ) -> Coroutine[Any, Any, Connection]: ...


def load_driver(engine: Engine) -> Driver:
    """The engine's driver module, imported on first use: a PostgreSQL-only agent never loads aiomysql."""
    if engine is Engine.POSTGRESQL:
        from agent.probes.drivers import pg

        return pg
    from agent.probes.drivers import mysql

    return mysql


def client_ssl_context(mode: SslMode, rootcert: str | None) -> ssl.SSLContext | None:
    """The SSLContext for an sslmode: none for disable, unverified for prefer and for require without a root
    certificate, verified above that. require with a root certificate verifies the chain, as libpq does
    (its docs, sslmode: "if a root CA file exists, verify the certificate in the same way as if verify-ca")."""
    if mode is SslMode.DISABLE:
        return None
    if not mode.required or (mode is SslMode.REQUIRE and not rootcert):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # libpq's require: encrypted, but any certificate will do
        return context
    try:
        context = ssl.create_default_context(cafile=rootcert)  # None: the system's CA store
    except (OSError, ssl.SSLError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else describe(exc)
        raise ProbeFailure(Reason.CONFIG, "db:sslrootcert", f"cannot load sslrootcert {rootcert}: {why}") from None
    context.check_hostname = mode is SslMode.VERIFY_FULL
    context.sslobject_class = KeepsServerCertificate  # an expired certificate's failure can name its date
    return context
