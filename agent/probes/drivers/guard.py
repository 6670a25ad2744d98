"""A cap on what a database server may send in answer to one request, around drivers that buffer answers whole.

asyncpg keeps every byte of an incomplete message, whatever length it claims (a "1 GiB" ErrorResponse is read to
its end, then copied), and aiomysql reads whatever length a packet header claims, joining 16 MiB packets for as
long as they come. Here the bytes a server sends between two requests of the client are counted; past
DB_ANSWER_BYTES the connection is dropped and the probe fails with `server` `db:answer_too_large`
(agent.shared.answers). What a login, SELECT 1 and the IAM grant check really get is a few hundred bytes.

- asyncpg builds each connection's protocol by looking up `asyncpg.protocol.Protocol` at connect time, where the
  agent installs its own subclass (agent/probes/drivers/pg_auth.py). MeteredAnswers, mixed into it, counts what
  the protocol receives, and what it writes through a thin transport wrapper, but only for connections opened by
  a connect() decorated with `bounded_answers` (a context variable says so): nothing else in the process changes.
- aiomysql reads through `Connection._read_bytes`, after learning from the packet header how much: MySqlGuard,
  mixed into the driver's own Connection subclass, refuses a claim past the cap before a byte of it is read.

Both rely on private API, listed in agent/shared/private_api.py with the tests that guard them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from typing import Any, Concatenate, ParamSpec, TypeVar

from agent.config.models import TargetConfig
from agent.shared.answers import CODE_SUFFIX, AnswerTooLarge, find_too_large
from agent.shared.reasons import Failure, Reason

CODE = f"db:{CODE_SUFFIX}"
# What a login, SELECT 1 or the grant check gets is under 2 KiB (a dozen ParameterStatus messages, an ERR packet of
# at most 512 bytes). Lower than the AWS cap: asyncpg turns an answer into Python objects, several times its size
# (1 MiB of ParameterStatus messages became 6 MiB of settings), held until the cyclic GC frees the connection.
DB_ANSWER_BYTES = 64 * 1024
_HANDSHAKE_V10 = 10  # MySQL client/server protocol, Connection Phase: the only greeting since MySQL 3.21


def too_large_failure(exc: BaseException) -> Failure | None:
    """`server` `db:answer_too_large` when the cap dropped the connection behind `exc`, else None."""
    found = find_too_large(exc)
    return None if found is None else Failure(Reason.SERVER, CODE, str(found))


class AnswerMeter:
    """Bytes received since the client last wrote, for one connection; trips once past the limit."""

    def __init__(self, peer: str, limit: int = DB_ANSWER_BYTES) -> None:
        self.peer = peer
        self.limit = limit
        self.received = 0
        self.tripped: AnswerTooLarge | None = None

    def wrote(self) -> None:
        """The client sent a request: what comes next is a new answer."""
        self.received = 0

    def admit(self, size: int) -> bool:
        """Count `size` more bytes; False (and tripped set) once the answer has passed the limit."""
        if self.tripped is None:
            self.received += size
            if self.received > self.limit:
                self.tripped = AnswerTooLarge(self.peer, self.limit)
        return self.tripped is None


# -- asyncpg --------------------------------------------------------------------------------------------------

# (peer, limit) for the asyncpg connections opened in this context; None: asyncpg as it is.
_PG_BOUND: ContextVar[tuple[str, int] | None] = ContextVar("pg_answer_bound", default=None)
P = ParamSpec("P")
T = TypeVar("T")


def bounded_answers(
    connect: Callable[Concatenate[TargetConfig, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[TargetConfig, P], Coroutine[Any, Any, T]]:
    """Decorates a driver's connect(target, ...): every asyncpg connection it opens gets its own AnswerMeter, for
    the connection's whole life (MeteredAnswers reads the context variable when asyncpg builds the protocol)."""

    @functools.wraps(connect)
    async def bounded(target: TargetConfig, /, *args: P.args, **kwargs: P.kwargs) -> T:
        token = _PG_BOUND.set((f"{target.host}:{target.port}", DB_ANSWER_BYTES))
        try:
            return await connect(target, *args, **kwargs)
        finally:
            _PG_BOUND.reset(token)

    return bounded


class MeteredAnswers:
    """Mixed into asyncpg's protocol (agent/probes/drivers/pg_auth.py GuardedProtocol, which asyncpg builds for every
    connection): when the connection was opened by a connect() decorated with `bounded_answers`, each answer is
    counted, and past the cap the transport is aborted; asyncpg then fails the connection with
    ConnectionDoesNotExistError, caused by the AnswerTooLarge."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        bound = _PG_BOUND.get()
        self._answer_meter = AnswerMeter(*bound) if bound is not None else None
        self._metered_transport: Any = None

    def connection_made(self, transport: Any) -> None:
        if self._answer_meter is not None:
            self._metered_transport = transport
            transport = _CountedWrites(transport, self._answer_meter)
        super().connection_made(transport)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        meter = self._answer_meter
        if meter is None or meter.admit(len(data)):
            super().data_received(data)  # type: ignore[misc]
        elif self._metered_transport is not None:
            self._metered_transport.abort()  # connection_lost follows, with the reason below

    def connection_lost(self, exc: Exception | None) -> None:
        tripped = self._answer_meter.tripped if self._answer_meter is not None else None
        super().connection_lost(tripped or exc)  # type: ignore[misc]


class _CountedWrites:
    """The transport asyncpg writes to: every write starts a new answer; everything else is the transport's."""

    def __init__(self, transport: Any, meter: AnswerMeter) -> None:
        self._transport = transport
        self._meter = meter

    def write(self, data: Any) -> None:
        self._meter.wrote()
        self._transport.write(data)

    def writelines(self, data: Any) -> None:
        self._meter.wrote()
        self._transport.writelines(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


# -- aiomysql -------------------------------------------------------------------------------------------------


class MySqlGuard:
    """Mixed into an aiomysql Connection subclass, what aiomysql does not check in a server's answers: no answer
    (one packet, or the packets between two writes) may pass the cap, and a header that claims more is refused
    before its payload is read; the greeting must be protocol version 10 (HandshakeV10, what MySQL and MariaDB
    send), or aiomysql goes on to fail on the garbage with a ValueError."""

    # Private API (listed in agent/shared/private_api.py): aiomysql.Connection._read_bytes, _write_bytes and
    # _get_server_information, overridden.
    answer_limit = DB_ANSWER_BYTES
    _answer_received = 0

    def _write_bytes(self, data: bytes) -> Any:
        self._answer_received = 0
        return super()._write_bytes(data)  # type: ignore[misc]

    async def _read_bytes(self, num_bytes: int) -> bytes:
        self._answer_received += num_bytes
        if self._answer_received > self.answer_limit:
            self.close()  # type: ignore[attr-defined]  # aiomysql's: the socket goes, nothing more is buffered
            claimed = num_bytes if num_bytes > self.answer_limit else None
            raise AnswerTooLarge(self._peer(), self.answer_limit, claimed=claimed)
        data: bytes = await super()._read_bytes(num_bytes)  # type: ignore[misc]
        return data

    async def _get_server_information(self) -> None:
        await super()._get_server_information()  # type: ignore[misc]
        version = self.protocol_version  # type: ignore[attr-defined]
        if version != _HANDSHAKE_V10:
            import pymysql  # loaded already: only aiomysql's connections get here

            self.close()  # type: ignore[attr-defined]
            raise pymysql.err.InternalError(
                f"{self._peer()} greeted with protocol version {version}, not {_HANDSHAKE_V10}: not a MySQL server"
            )

    def _peer(self) -> str:
        return f"{self._host}:{self._port}"  # type: ignore[attr-defined]
