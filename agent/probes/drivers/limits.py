"""The limits a login runs into next: its password's expiry and the server's connection headroom.

Read once per fresh login (agent.probes.db_facts names the details keys), by each driver's `limits()`:
PostgreSQL in one query, MySQL/MariaDB in three statements (SHOW GLOBAL STATUS cannot be joined to a SELECT, and
the account tables are often not readable). A fact the login may not read becomes "unknown (why)" or is left out;
it never fails the probe.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agent.probes.db_facts import CONNECTIONS, MAX_CONNECTIONS, NEVER, PASSWORD_EXPIRES_AT, iso

_DAY = 86400

# PostgreSQL: one round trip. pg_roles (rolpassword masked) and pg_stat_activity (others' queries hidden) are
# readable by every role. `session_user` is the role that logged in, whatever SET ROLE did since. rolvaliduntil
# NULL or 'infinity' is "never" (isfinite is false for infinity, NULL for NULL).
# Connections are the `client backend` rows: max_connections limits exactly those; background workers, autovacuum
# and WAL senders have slots of their own (max_worker_processes, autovacuum_max_workers, max_wal_senders) and are
# not counted. A role without pg_read_all_stats sees other roles' rows with backend_type NULL, but their datid and
# usesysid kept: a client backend has both, autovacuum and the auxiliary processes have no usesysid, physical WAL
# senders and launchers no datid; only another role's parallel or logical replication worker (rare) is counted too.
# With pg_read_all_stats (pg_monitor) the count is exact. A role without superuser (or, from PostgreSQL 16,
# pg_use_reserved_connections) may fill max_connections - superuser_reserved_connections - reserved_connections
# (that last one PostgreSQL 16+ only, so read with missing_ok: NULL before). Source: PostgreSQL docs, "Connection
# Settings" and "pg_stat_activity".
PG_QUERY = """
SELECT (SELECT CASE WHEN isfinite(rolvaliduntil) THEN extract(epoch FROM rolvaliduntil) END
          FROM pg_roles WHERE rolname = session_user) AS valid_until,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'
          OR backend_type IS NULL AND datid IS NOT NULL AND usesysid IS NOT NULL) AS connections,
       current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int
         - coalesce(current_setting('reserved_connections', true)::int, 0) AS max_connections
"""

# MySQL and MariaDB: Threads_connected counts every session, the agent's included; max_connections is what a login
# without SUPER / CONNECTION_ADMIN may fill (both servers keep one more for such an account).
MYSQL_THREADS = "SHOW GLOBAL STATUS LIKE 'Threads_connected'"
MYSQL_SETTINGS = "SELECT @@max_connections, @@default_password_lifetime"
# The account's password change time (Unix seconds) and lifetime in days (-1 or NULL: default_password_lifetime;
# 0: never). MariaDB 10.4+ keeps accounts as JSON in mysql.global_priv (PASSWORD EXPIRE sets password_last_changed
# to 0); MySQL 5.7+ in mysql.user's columns. Both need SELECT on that table, which application accounts rarely have.
MARIADB_EXPIRY = (
    "SELECT JSON_VALUE(Priv, '$.password_last_changed'), JSON_VALUE(Priv, '$.password_lifetime')"
    " FROM mysql.global_priv WHERE CONCAT(User, '@', Host) = CURRENT_USER()"
)
MYSQL_EXPIRY = (
    "SELECT UNIX_TIMESTAMP(password_last_changed), password_lifetime"
    " FROM mysql.user WHERE CONCAT(User, '@', Host) = CURRENT_USER()"
)
ACCESS_DENIED = frozenset({1142, 1143})  # SELECT denied on the table, on a column


def pg_limits(row: Any, *, password: bool) -> dict[str, str]:
    """The details from PG_QUERY's row (an asyncpg Record, or None); a value that is not a number is left out."""
    if row is None:
        return {}
    facts: dict[str, str] = {}
    connections, max_connections = _int(row.get("connections")), _int(row.get("max_connections"))
    if connections is not None and max_connections is not None:
        facts = {CONNECTIONS: str(connections), MAX_CONNECTIONS: str(max_connections)}
    if password:
        valid_until = row.get("valid_until")  # Unix seconds (numeric), None for never
        facts[PASSWORD_EXPIRES_AT] = NEVER if valid_until is None else _at(valid_until, 0, "rolvaliduntil")
    return facts


def first_row(rows: object, width: int) -> tuple[Any, ...] | None:
    """The first row of a statement's answer if it has `width` columns: a server that answers otherwise (a
    stand-in, a proxy) gives no facts rather than an error."""
    if isinstance(rows, list) and rows and isinstance(rows[0], tuple) and len(rows[0]) >= width:
        return rows[0]
    return None


def mysql_expiry(last_changed: object, lifetime: object, default_lifetime: object) -> str:
    """The PASSWORD_EXPIRES_AT detail from an account row: an ISO time, "never" or "unknown (why)"."""
    days = _int(lifetime)
    if days is None or days < 0:
        days = _int(default_lifetime)
    if days == 0:
        return NEVER
    changed = _int(last_changed)
    if days is None or not changed:  # 0: PASSWORD EXPIRE (the login would not have got this far)
        return "unknown (the account records no password change time or lifetime)"
    return _at(changed, days * _DAY, "password_last_changed")


def unreadable(table: str, errno: int, text: str) -> str:
    """The PASSWORD_EXPIRES_AT detail when the account table could not be read."""
    if errno in ACCESS_DENIED:
        return f"unknown (the user has no SELECT on {table})"
    return f"unknown ({table} cannot be read: {text})"


def _at(seconds: object, plus: int, column: str) -> str:
    try:
        return iso(datetime.fromtimestamp(float(str(seconds)) + plus, UTC))
    except (ValueError, OverflowError, OSError):  # not a number, or past what datetime holds
        return f"unknown ({column} reads {str(seconds)[:40]!r})"


def _int(value: object) -> int | None:
    try:
        return int(str(value)) if value is not None else None
    except ValueError:
        return None
