"""The database probe: a real login with the task's password, secret or IAM token, then SELECT 1.

The drivers live in drivers/ (pg.py, mysql.py), each with its own error table; only the engine's driver is
imported. In continuous mode one connection is kept and pinged, and a fresh login proves the credentials
again every `reauth_seconds`. A kept connection the server closes is noticed through the driver's close
event, at once; logins are paced (agent.probes.pacing) so a fleet never storms the database.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar, NoReturn, TypeVar

from pydantic import SecretStr

from agent.config.dsn import region_from_host
from agent.config.facts import target_facts
from agent.config.models import TargetConfig
from agent.probes.base import NOTE, Details, Login, TargetState, now
from agent.probes.db_facts import RESOLVED_ADDRESS
from agent.probes.drivers.base import Connection, client_ssl_context, load_driver
from agent.probes.drivers.certificate import EXPIRING, certificate_details, expired_failure, expiring
from agent.probes.drivers.hints import COMMON_HINTS
from agent.probes.drivers.role import UNKNOWN_ADDRESS, RoleHold, mismatch, role_details
from agent.probes.drivers.tls import verification
from agent.probes.drivers.wire import login_or_wrong_server
from agent.probes.expiry import PasswordExpiry
from agent.probes.iam_login import login_note
from agent.probes.pacing import LoginGate, LoginPacing
from agent.probes.rereads import SecretRereads
from agent.probes.rotation import CODES as ROTATION_CODES
from agent.probes.rotation import RotationWatch
from agent.shared.counters import COUNTERS
from agent.shared.hints import pick, render
from agent.shared.reasons import Failure, ProbeFailure, Reason, Scope, describe
from agent.shared.redact import SECRETS

log = logging.getLogger(__name__)
T = TypeVar("T")
_TIMEOUT_HINTS = (("DNS", "dns"), ("TCP connect", "timeout"), ("refetching", "db:timeout:secret"))
_CONNECTED = "db:timeout:connected"  # TCP was up, so not a security group
_LOST = "db:connection_lost"
_CLOSED_BY_SERVER = Failure(
    Reason.NETWORK, _LOST, "the server closed the kept connection (restart, failover, terminate)"
)
REACHABILITY_TIMEOUT = 1.0  # seconds for the TCP-only look while a re-login waits


@dataclass(slots=True)
class _Kept:
    conn: Connection
    opened_at: float
    details: dict[str, str]
    lost: bool = False  # the server closed it (the driver's close event): never used again


class DatabaseProbe:
    """Logs in to one database as the backend would, and says precisely why a login failed."""

    name: ClassVar[str] = "db"
    failure_scope: ClassVar[Scope | None] = None  # by reason

    def __init__(
        self,
        target: TargetConfig,
        state: TargetState,
        *,
        timeout: float,
        keep_connection: bool = False,
        reauth_seconds: float | None = None,
        refresh_secret: Callable[[], Awaitable[None]] | None = None,
        pacing: LoginPacing | None = None,
        on_lost: Callable[[], None] | None = None,
        rotation: RotationWatch | None = None,
    ) -> None:
        self.target = target.name
        self.config = target
        self.state = state
        self.timeout = timeout
        self.keep_connection = keep_connection
        self.reauth_seconds = reauth_seconds
        self.refresh_secret = refresh_secret
        self.rotation = rotation  # reads AWSPENDING after a rejection that a re-read of the secret does not explain
        # Where the password is read from in AWS ("secret ID" or "parameter NAME"), and that login's source.
        self._reference = target.password_reference
        self._fetched = "parameter" if target.password_parameter is not None else "secret"
        # GetSecretValue is billed per call: a rejection streak re-reads at doubling gaps, not at every login.
        self._rereads = SecretRereads(rotation, quick=pacing.failure_threshold if pacing else 1)
        self.step = "not started"
        self._driver = load_driver(target.engine)
        errors = self._driver.ERRORS
        self._ping_errors: tuple[type[BaseException], ...] = (*errors, TimeoutError)
        self._retry_errors: tuple[type[BaseException], ...] = (*errors, ProbeFailure)
        self._context: ssl.SSLContext | None = None
        self._kept: _Kept | None = None
        self._deadline = 0.0
        self._refetched = False
        self._gate = LoginGate(pacing)  # pacing None (`check`): log in every run
        self._on_lost = on_lost  # wakes the scheduler when the server closes the kept connection
        self._relogin_timer: asyncio.TimerHandle | None = None
        self._role_hold: RoleHold | None = None  # after a writer/reader mismatch: log in again once DNS moves
        self._expiry = PasswordExpiry(self._driver.EXPIRED_READS_AS)  # explains a refusal once it has passed
        self._tried: Login | None = None  # the login last tried: the one a rejection is about

    async def run(self) -> Details:
        """Ping the kept connection, or log in anew and run SELECT 1; raise on failure."""
        self._deadline = asyncio.get_running_loop().time() + self.timeout
        self._refetched = False
        if self._kept is not None and (details := await self._reuse(self._kept)) is not None:
            return details
        if self._role_hold is not None:
            await self._held(self._role_hold)
        await self._paced()
        try:
            conn, login = await self._login()
        except BaseException as exc:
            self._gate.login_failed(exc.failure if isinstance(exc, ProbeFailure) else self._driver.classify(exc))
            if (expired := self._password_expired(exc)) is not None:
                raise expired from None
            raise
        self._gate.login_passed()
        try:
            return await self._check(conn, login)
        except self._retry_errors as exc:  # MySQL's sandbox mode: logged in, but 1820 on SELECT 1
            if (expired := self._password_expired(exc)) is not None:
                raise expired from None
            raise

    async def close(self) -> None:
        """Close the kept connection, if any (on shutdown)."""
        kept, self._kept = self._kept, None
        if self._relogin_timer is not None:
            self._relogin_timer.cancel()
        if kept is not None:
            await kept.conn.close()

    def classify(self, exc: BaseException) -> Failure | None:
        """The driver table's verdict, with the step it happened in."""
        failure = self._driver.classify(exc)
        if failure is None:
            return None
        return Failure(failure.reason, failure.code, f"{failure.message} (during {self.step})", failure.scope)

    def hint(self, failure: Failure) -> str:
        """The next step for this failure, with this target's host, port, user and region filled in."""
        user = self.config.user or self.state.secret_user or "<user>"
        facts = target_facts(self.config) | {
            "user": user,
            "database": self.config.database or self._driver.DEFAULT_DATABASE.format(user=user),
            "sslrootcert": self.config.sslrootcert or "<sslrootcert>",
            "detail": failure.message,
            "resolved_address": failure.details.get(RESOLVED_ADDRESS) or UNKNOWN_ADDRESS,
            **(self.rotation.facts() if self.rotation else {}),
            **self._expiry.facts(),
        }
        table = {
            **COMMON_HINTS,
            **self._driver.HINTS,
            **(self._driver.IAM_HINTS if self.config.iam_auth else {}),
        }
        key, reason = failure.code, failure.reason.value
        if failure.reason is Reason.TIMEOUT:  # where it stopped decides: DNS, security group, or past TCP
            key = next((k for prefix, k in _TIMEOUT_HINTS if self.step.startswith(prefix)), _CONNECTED)
        if failure.reason is Reason.DNS and region_from_host(self.config.host):
            reason = "dns:rds"  # an RDS endpoint name (instance, cluster, proxy): what is true of those
        text = render(pick(table, key, reason), facts)
        if failure.reason is Reason.AUTH and (note := login_note(self.config, failure.code)):
            return f"{note} {text}" if text else note  # the token's name or clock, a proxy: before the checklist
        return text

    # -- one run ------------------------------------------------------------------------------------------

    async def _reuse(self, kept: _Kept) -> Details | None:
        if kept.lost:
            self._lose(kept, _CLOSED_BY_SERVER)
            return None
        if self.reauth_seconds is not None and now() - kept.opened_at >= self.reauth_seconds:
            # Close first: a user limited to one connection could otherwise never log in again.
            self.step = "closing the connection that is due for a fresh login"
            self._kept = None
            await kept.conn.close()
            return None
        self.step = "SELECT 1 on the kept connection"
        loop = asyncio.get_running_loop()
        healthy = False
        try:  # half the budget at most, so a fresh login still fits when the old connection hangs
            async with asyncio.timeout_at(min(self._deadline, loop.time() + self.timeout / 2)):
                await kept.conn.ping()
            healthy = True
        except self._ping_errors as exc:
            self._lose(kept, self._ping_failure(exc))
        finally:
            if not healthy:  # broken, hung, or cancelled mid-query: it is never used again
                self._kept = None
                kept.conn.terminate()
        return {**kept.details, "connection": "kept"} if healthy else None

    def _ping_failure(self, exc: BaseException) -> Failure:
        """Why the kept connection failed its SELECT 1: no answer (timeout), or the driver's own verdict."""
        if isinstance(exc, TimeoutError):
            return Failure(Reason.TIMEOUT, "db:timeout", "SELECT 1 on the kept connection got no answer in time")
        failure = self._driver.classify(exc)
        message = f"SELECT 1 on the kept connection failed ({describe(exc)})"
        return Failure(failure.reason, failure.code, message) if failure else Failure(Reason.NETWORK, _LOST, message)

    def _lose(self, kept: _Kept, why: Failure) -> None:
        """Drop a kept connection the server closed or that stopped answering; pace the re-login."""
        self._kept = None
        kept.conn.terminate()
        delay = self._gate.connection_lost(why)
        if delay > 0 and self._on_lost is not None:  # run at the drawn moment, not at the next interval
            self._relogin_timer = asyncio.get_running_loop().call_later(delay, self._on_lost)
        log.info("db %s: %s; logging in again in %.1fs", self.target, why.message, delay)

    def _closed_by_server(self) -> None:
        """The driver's close event for the kept connection: mark it lost and have the probe run now."""
        if self._kept is not None:
            self._kept.lost = True
            if self._on_lost is not None:
                self._on_lost()

    # -- pacing -------------------------------------------------------------------------------------------

    async def _paced(self) -> None:
        """Raise instead of logging in while the backoff or the re-login spread says wait."""
        wait = self._gate.wait()
        if wait <= 0:
            return
        lost = self._gate.lost
        if lost is not None:  # reported as why it was lost: the server closed it, or it stopped answering
            message = f"{lost.message}; {await self._reachability(wait)}"
            raise ProbeFailure(lost.reason, lost.code, message, details=self._gate.details(wait))
        held = self._gate.backing_off(wait)
        raise ProbeFailure(held.reason, held.code, held.message, held.scope, held.details)

    async def _reachability(self, wait: float) -> str:
        """When the kept connection was lost, when the re-login comes, and whether the server takes TCP
        connections again (a connect, no login)."""
        host, port = self.config.host, self.config.port
        age = now() - (self._gate.lost_at or now())
        try:  # a short look: the run must still fit its timeout
            async with asyncio.timeout(min(REACHABILITY_TIMEOUT, self.timeout / 2)):
                _, writer = await asyncio.open_connection(host, port)
            writer.close()
            reachable = f"{self.config.address} accepts TCP connections again"
        except (OSError, TimeoutError) as exc:
            reachable = f"{self.config.address} does not accept TCP connections yet ({describe(exc)})"
        return (
            f"{age:.1f}s ago; logging in again in {wait:.1f}s (AGENT_DB_RELOGIN_SPREAD_SECONDS spreads a fleet's"
            f" logins); {reachable}"
        )

    async def _login(self) -> tuple[Connection, Login]:
        login = self._choose_login()
        await self._resolve()
        if login.source == self._fetched:
            return await self._open_secret(login)
        try:
            return await self._open(login), login
        except self._driver.ERRORS as exc:
            drift_check = login.source == "static" and self.state.secret_password is not None
            if drift_check and self._reason(exc) is Reason.AUTH:
                await self._explain_drift(login, exc)
            raise

    async def _check(self, conn: Connection, login: Login) -> Details:
        kept = False
        try:
            self.step = "SELECT 1"
            await self._bounded(conn.ping())
            details = {
                "server_version": conn.server_version,
                "tls": conn.tls or "none",
                **verification(conn.tls, self._context),  # tls_verified: encrypted, but was the server checked?
                "login": login.source,
                "user": login.user,
            }
            if self._refetched:
                details["secret_refetched"] = "yes"
            self.step = "asking the server whether it checked the password"
            unchecked = await self._bounded(conn.unchecked_login())
            if unchecked is not None:  # a pass that proves the network path, not the credentials
                what = "token" if login.source == "iam" else "password"
                details["password_checked"] = "no"
                details[NOTE] = f"the login worked, but the server {unchecked}: a wrong {what} would have worked too"
            await self._read_certificate(conn, details)
            if login.source == "iam":
                self.step = f"checking the IAM grant of {login.user}"
                granted = await self._bounded(conn.check_iam_grant())
                details["iam_grant"] = "unknown" if granted is None else ("yes" if granted else "no")
            self.step = "reading the password expiry and the connection headroom"
            details |= await self._bounded(conn.limits(password_expiry=login.source != "iam"))
            self._expiry.seen(login, details)
            details |= await self._role(conn, details)  # raises on a mismatch: that connection is never kept
            if self.keep_connection:
                self._kept, kept = _Kept(conn, now(), details), True
                conn.on_close(self._closed_by_server)
        finally:
            if not kept:
                await conn.close()
        return {**details, "connection": "new"}

    async def _role(self, conn: Connection, details: Details) -> dict[str, str]:
        """read_only and resolved_address for every target; the mismatch failure (agent.probes.drivers.role) when
        the server is not the expected writer or reader. Read on a fresh login only: pings stay SELECT 1."""
        self.step = "reading whether the server is read-only"
        role = await self._bounded(conn.read_role())
        found = role_details(role, conn.peer)
        failure = mismatch(self.config.expect_role, role, self.config.host, {**details, **found})
        self._role_hold = None
        if failure is not None:
            if self.reauth_seconds is not None and conn.peer is not None:  # serve: hold logins until DNS moves
                self._role_hold = RoleHold(failure, self.config.host, conn.peer, now())
            raise failure
        return found

    async def _held(self, hold: RoleHold) -> None:
        """Repeat a role mismatch without logging in while the host name still resolves to the same address."""
        addresses = await self._resolve()
        held = hold.still(addresses, now(), self.reauth_seconds or 0.0)
        if held is not None:
            raise held
        self._role_hold = None

    async def _read_certificate(self, conn: Connection, details: dict[str, str]) -> None:
        """Add the server certificate's facts to the details (none without TLS), and, within 30 days of its
        notAfter or past it, the hint that names the RDS CA rotation to the pass's note."""
        self.step = "reading the server's TLS certificate"
        details |= await self._bounded(certificate_details(conn.certificate))
        if (renew := expiring(details, time.time())) is not None:
            hint = self.hint(Failure(Reason.TLS, EXPIRING, renew))
            details[NOTE] = f"{details[NOTE]}; {hint}" if NOTE in details else hint

    # -- logins -------------------------------------------------------------------------------------------

    def _choose_login(self) -> Login:
        cfg, state = self.config, self.state
        if cfg.iam_auth:
            if state.token is None:
                raise ProbeFailure(
                    Reason.UNKNOWN,
                    "db:no_token",
                    "no IAM token to log in with: the token probe has not succeeded",
                )
            return self._login_as(state.token, "iam")
        if cfg.password is not None:
            return self._login_as(cfg.password, "static")
        if self._reference is not None:
            login = self._secret_login()
            if login is None:
                raise ProbeFailure(
                    Reason.UNKNOWN,
                    "db:no_secret",
                    f"no password to log in with: {self._reference} has not been fetched successfully",
                )
            return login
        raise ProbeFailure(Reason.CONFIG, "db:no_credentials", "no password, secret or IAM auth is configured")

    def _secret_login(self) -> Login | None:
        password = self.state.secret_password
        return self._login_as(password, self._fetched) if password is not None else None

    def _login_as(self, password: SecretStr, source: str) -> Login:
        user = self.config.user or self.state.secret_user
        if not user:
            raise ProbeFailure(Reason.CONFIG, "db:no_user", "no database user: set one in the DSN or the secret")
        SECRETS.add(password.get_secret_value())  # so no message can ever show it
        return Login(user, password, source)

    async def _open_secret(self, login: Login) -> tuple[Connection, Login]:
        """Log in with the secret; if it is rejected, refetch it once (it may have rotated) and retry; if the
        refetch holds the rejected password, see whether a rotation holds the database (_rotation_note)."""
        try:
            conn = await self._open(login)
        except self._driver.ERRORS as exc:
            if self.refresh_secret is None or self._reason(exc) is not Reason.AUTH:
                raise
            if not self._rereads.allowed():
                raise await self._rejected_again(exc, login) from None
            self._rereads.taken()
            self.step = f"refetching {self._reference}"
            await self._bounded(self.refresh_secret())
            fresh = self._secret_login()
            if fresh is None or _same(fresh.password, login.password):
                rejected = self._driver.classify(exc) or Failure(Reason.AUTH, "db:auth", describe(exc))
                note = (
                    f"fetching {self._reference} again failed (see the {self._fetched} probe)"
                    if fresh is None
                    else f"{self._reference} was fetched again and still holds the rejected password"
                    + await self._rotation_note(login)
                )
                raise ProbeFailure(Reason.AUTH, rejected.code, f"{rejected.message}; {note}") from None
            self._refetched = True
            conn, login = await self._open(fresh), fresh
        self._rereads.streak_ended()
        if self.rotation is not None:
            self.rotation.clear()  # AWSCURRENT logs in: no rotation is holding the database
        return conn, login

    async def _rejected_again(self, exc: BaseException, login: Login) -> ProbeFailure:
        """A rejection after this streak's re-read (agent.probes.rereads): no AWS call. A rotation in progress is
        confirmed with the AWSPENDING password already read (raised); otherwise the rejection, saying so."""
        rotation = await self._rotation_note(login, reread=False)
        rejected = self._driver.classify(exc) or Failure(Reason.AUTH, "db:auth", describe(exc))
        note = (
            f"{self._reference} was read again during these rejections and held this password; it is"
            " read again at doubling gaps while they last, and every AGENT_SECRET_REFRESH_SECONDS"
        )
        return ProbeFailure(Reason.AUTH, rejected.code, f"{rejected.message}; {note}{rotation}")

    async def _rotation_note(self, current: Login, *, reread: bool = True) -> str:
        """AWSCURRENT was rejected and read again unchanged: does the AWSPENDING version log in?

        Raises the rotation failure (scope shared) if it does, after closing that connection at once; otherwise
        returns what was found, for the rejection's message. Without `reread`, only the AWSPENDING password of a
        rotation already in progress is tried again (no AWS call).
        """
        watch = self.rotation
        if watch is None or not (reread or watch.since is not None):
            return ""
        if reread:
            self.step = f"reading the AWSPENDING version of secret {watch.secret_id}"
            try:
                pending = await self._bounded(watch.fetch_pending())
            except ProbeFailure as exc:
                return f"; its AWSPENDING version could not be read ({exc.failure.message})"
        else:
            pending = watch.last
        if pending is None or _same(pending.password, current.password):
            watch.clear()
            return "; it has no AWSPENDING version with another password (no rotation in progress)"
        login = Login(pending.user or current.user, pending.password, "secret")
        try:
            conn = await self._open(login)
        except self._retry_errors as exc:
            failure = exc.failure if isinstance(exc, ProbeFailure) else self._driver.classify(exc)
            if failure is not None and failure.reason is Reason.AUTH:
                watch.clear()
            code = failure.code if failure else type(exc).__name__
            return f"; its AWSPENDING version does not log in as {login.user} either ({code})"
        await conn.close()
        raise watch.confirmed(pending, login.user)

    async def _explain_drift(self, static: Login, exc: BaseException) -> NoReturn:
        """The static password was rejected: does the secret's password work, and do the two differ?"""
        rejected = self._driver.classify(exc) or Failure(Reason.AUTH, "db:auth", describe(exc))
        reference, kind = self._reference, self._fetched
        secret = self._secret_login()
        if secret is None:
            raise exc
        try:
            conn, _ = await self._open_secret(secret)
        except self._retry_errors as second:
            if isinstance(second, ProbeFailure) and second.failure.code in ROTATION_CODES:
                raise  # a rotation in progress explains the rejection of both passwords
            if self._reason(second) is not Reason.AUTH:
                raise exc from None  # the secret could not be tried: report the rejection itself
            current = self.state.secret_password
            if current is None:
                verdict = f"{reference}'s password was rejected too, and fetching it again failed"
            else:
                relation = "the same password" if _same(current, static.password) else "a different password"
                verdict = f"{reference} holds {relation}, which is rejected too"
            message = f"{rejected.message}, with the task's static password; {verdict}"
            raise ProbeFailure(Reason.AUTH, rejected.code, message) from None
        await conn.close()
        source = self.config.password_from or "AGENT_DB_PASSWORD"
        raise ProbeFailure(
            Reason.AUTH,
            "db:password_drift",
            f"login as {static.user} with {source} was rejected, but the current value of {reference}"
            f" logs in: {source} differs from the {kind}, and the {kind}'s password works",
        )

    # -- steps --------------------------------------------------------------------------------------------

    async def _resolve(self) -> set[str]:
        """The host's addresses (IPs, as strings); a name that does not resolve is `dns`."""
        host, port = self.config.host, self.config.port
        self.step = f"DNS lookup of {host}"
        loop = asyncio.get_running_loop()
        try:
            found = await self._bounded(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except socket.gaierror as exc:
            raise ProbeFailure(Reason.DNS, "db:dns", f"{host} does not resolve: {exc.strerror or exc}") from None
        return {str(sockaddr[0]) for *_, sockaddr in found}

    async def _open(self, login: Login) -> Connection:
        self._tried = login
        if self._context is None:
            self._context = client_ssl_context(self.config.sslmode, self.config.sslrootcert)
        remaining = self._deadline - asyncio.get_running_loop().time()
        connecting = self._driver.connect(
            self.config, login, context=self._context, connect_timeout=remaining + 1, on_step=self._set_step
        )  # the driver's own timer is a backstop; ours (in _bounded) fires first and names the step
        cfg = self.config  # a login that stalls or fails oddly may have reached another kind of server
        connecting = login_or_wrong_server(
            connecting,
            engine=cfg.engine,
            host=cfg.host,
            port=cfg.port,
            errors=self._driver.ERRORS,
            classify=self._driver.classify,
        )
        try:
            conn = await self._bounded(connecting)
        except BaseException as exc:
            COUNTERS.db_login_attempt(self.target, self._outcome(exc))
            if isinstance(exc, Exception) and (expired := await self._certificate_expired(exc)) is not None:
                raise expired from None  # the date the certificate expired, and the rotation hint
            raise
        COUNTERS.db_login_attempt(self.target, "success")
        COUNTERS.db_connection_opened(self.target)
        if self.config.sslmode.required and conn.tls is None:
            self.step = "TLS"
            await conn.close()
            raise ProbeFailure(
                Reason.TLS,
                "db:tls_not_negotiated",
                f"the connection to {self.config.address} is not encrypted although"
                f" sslmode={self.config.sslmode} requires TLS",
            )
        return conn

    async def _certificate_expired(self, exc: Exception) -> ProbeFailure | None:
        """`db:tls_expired` for a login refused because the server's certificate has expired; else None."""
        return await self._bounded(expired_failure(exc, self.config.sslmode.value))

    async def _bounded(self, step: Awaitable[T]) -> T:
        """Await one step within what is left of this run's budget; a timeout names the step."""
        try:
            async with asyncio.timeout_at(self._deadline) as budget:
                return await step
        except TimeoutError:
            if not budget.expired():
                raise  # the driver's own timer: its table knows the case
            raise ProbeFailure(
                Reason.TIMEOUT, "db:timeout", f"no answer within {self.timeout:g}s during {self.step}"
            ) from None

    def _password_expired(self, exc: BaseException) -> ProbeFailure | None:
        """The failure to raise when the password's expiry explains `exc` (agent.probes.expiry), else None."""
        if not isinstance(exc, self._retry_errors):
            return None
        failure = exc.failure if isinstance(exc, ProbeFailure) else self.classify(exc)
        return self._expiry.explain(failure, self._tried) if failure is not None else None

    def _set_step(self, step: str) -> None:
        self.step = step

    def _outcome(self, exc: BaseException) -> str:
        """A failed login attempt's outcome for the attempts counter: the failure's reason."""
        if isinstance(exc, asyncio.CancelledError):  # the probe's timeout cancelled the login
            return Reason.TIMEOUT.value
        return (self._reason(exc) or Reason.UNKNOWN).value

    def _reason(self, exc: BaseException) -> Reason | None:
        if isinstance(exc, ProbeFailure):
            return exc.failure.reason
        failure = self._driver.classify(exc)
        return failure.reason if failure else None


def _same(a: SecretStr, b: SecretStr) -> bool:
    """Constant-time comparison: how long it takes must not hint at how much of a password matched."""
    return hmac.compare_digest(a.get_secret_value().encode(), b.get_secret_value().encode())
