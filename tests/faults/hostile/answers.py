"""Every peer that can turn hostile, and what it answers with each hostility: the rows of the suite.

A new hostility (say, a cleartext-password request) is a new member of Hostility plus what each peer does with it
in its module; a new peer is a new entry here.
"""

from __future__ import annotations

from enum import StrEnum

from tests.faults.hostile import http, mysql, postgres
from tests.faults.hostile.wire import Build, Hostility


class Peer(StrEnum):
    PG_GREETING = "PostgreSQL greeting"
    PG_ERROR = "PostgreSQL error"
    PG_TLS = "PostgreSQL TLS handshake"
    MYSQL_GREETING = "MySQL greeting"
    MYSQL_ERROR = "MySQL error"
    MYSQL_TLS = "MySQL TLS handshake"
    CREDENTIALS = "ECS credentials endpoint"
    STS = "STS"
    SECRETS_MANAGER = "Secrets Manager"


BUILDERS: dict[Peer, Build] = {
    Peer.PG_GREETING: postgres.greeting,
    Peer.PG_ERROR: postgres.error,
    Peer.PG_TLS: postgres.tls,
    Peer.MYSQL_GREETING: mysql.greeting,
    Peer.MYSQL_ERROR: mysql.error,
    Peer.MYSQL_TLS: mysql.tls,
    Peer.CREDENTIALS: http.answer("credentials"),
    Peer.STS: http.answer("sts"),
    Peer.SECRETS_MANAGER: http.answer("secretsmanager"),
}
ROWS: tuple[tuple[Peer, Hostility], ...] = tuple((peer, hostility) for peer in Peer for hostility in Hostility)
