"""The bound on one answer from a peer: a database server, an AWS endpoint, the ECS credentials endpoint.

The drivers and botocore keep a whole answer in memory before anyone looks at it: asyncpg every byte of a message
whatever length it claims, aiomysql 16 MiB packets joined for as long as they come, botocore the whole HTTP body.
A peer that is not what it claims (anyone in the middle under sslmode=prefer, a proxy, a wrong endpoint URL) could
so grow the agent without bound. Each of those paths counts what it receives against a cap (MAX_ANSWER_BYTES for
HTTP bodies, a lower one for the drivers: agent/probes/drivers/guard.py) and, past it, drops the connection and
raises AnswerTooLarge, which the tables report as `server`, `<probe>:answer_too_large`.
"""

from __future__ import annotations

from agent.shared.reasons import chain

# The largest HTTP body the agent gets is a Secrets Manager secret (at most 64 KiB, JSON-escaped or base64 in the
# answer); a credentials document or GetCallerIdentity is under 2 KiB: 1 MiB leaves a wide margin.
MAX_ANSWER_BYTES = 1 << 20
CODE_SUFFIX = "answer_too_large"


class AnswerTooLarge(Exception):
    """A peer sent more than `limit` bytes in one answer (or claimed it would): the connection was dropped.

    `peer` names it for the message (host:port, a URL without its query); `source` is the code prefix when it
    is not the caller's own (the credentials endpoint, met during an STS or Secrets Manager call).
    """

    def __init__(self, peer: str, limit: int = MAX_ANSWER_BYTES, *, claimed: int | None = None, source: str = ""):
        self.peer, self.limit, self.claimed, self.source = peer, limit, claimed, source
        size = f"claimed {claimed:,} bytes" if claimed is not None else f"sent more than {limit // 1024:,} KiB"
        super().__init__(
            f"{peer} {size} in one answer, past the agent's cap of {limit // 1024:,} KiB: the connection was"
            " dropped (no such answer comes from the real service)"
        )


def find_too_large(exc: BaseException) -> AnswerTooLarge | None:
    """The AnswerTooLarge behind an exception (itself, its cause or context at any depth), or None.

    A driver reports the dropped connection in its own words (asyncpg: ConnectionDoesNotExistError) with ours as
    the cause.
    """
    return next((e for e in chain(exc) if isinstance(e, AnswerTooLarge)), None)
