"""TLS rules both drivers share: what a login's TLS verified, and the refusal to hand a password or token to a
server that asks for it in a readable form on a connection without TLS.

The guards themselves sit where each driver authenticates (pg_auth.py for asyncpg, mysql_auth.py for aiomysql);
this module holds what they say, so the two engines word it alike and the hints live in one place.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping

from agent.shared.reasons import ProbeFailure, Reason

# Failure codes (docs/reasons.md): the server asked for the password in a form a peer can read.
PG_CLEARTEXT = "pg:cleartext_password"  # AuthenticationCleartextPassword
MYSQL_CLEAR_PASSWORD = "mysql:clear_password"  # the mysql_clear_password plugin
MYSQL_SERVER_PUBLIC_KEY = "mysql:server_public_key"  # RSA-encrypt to a key the server itself sends

_NOTHING_SENT = "the password or token was not sent"


def refusal(code: str, server: str, request: str) -> ProbeFailure:
    """The `tls` failure for a server (host:port) that asked for the password as `request` without TLS."""
    return ProbeFailure(Reason.TLS, code, f"{server} {request} on a connection without TLS; {_NOTHING_SENT}")


def verification(tls_version: str | None, context: ssl.SSLContext | None) -> dict[str, str]:
    """`{"tls_verified": ...}` for an encrypted login: `verify-full` (certificate chain and host name),
    `verify-ca` (chain only) or `no` (encrypted, but any certificate would have done); `{}` without TLS."""
    if tls_version is None:
        return {}
    if context is None or context.verify_mode != ssl.CERT_REQUIRED:
        return {"tls_verified": "no"}
    return {"tls_verified": "verify-full" if context.check_hostname else "verify-ca"}


_WHY = (
    "Anyone on the network path could read it, or could be that server: a server that should offer TLS (every RDS"
    " endpoint does) and does not may be an impostor."
)
HINTS: Mapping[str, str] = {
    PG_CLEARTEXT: (
        "{host}:{port} asked for the password in cleartext (AuthenticationCleartextPassword: pg_hba.conf method"
        " password, ldap, pam or radius, or a pooler with a plain-text auth type) on a connection without TLS"
        f" (sslmode={{sslmode}}), so the agent sent nothing. {_WHY} Enable TLS on the server and use"
        " sslmode=verify-full with sslrootcert set to its CA, or change the pg_hba.conf method to scram-sha-256."
    ),
    MYSQL_CLEAR_PASSWORD: (
        "{host}:{port} asked for the password in cleartext (the mysql_clear_password plugin, which RDS IAM auth,"
        " PAM and LDAP accounts use) on a connection without TLS (sslmode={sslmode}), so the agent sent nothing,"
        f" as the official mysql client refuses to. {_WHY} Enable TLS on the server and use sslmode=verify-full"
        " with sslrootcert set to its CA."
    ),
    MYSQL_SERVER_PUBLIC_KEY: (
        "{host}:{port} wants the password encrypted with an RSA public key that it sends itself"
        " (caching_sha2_password full authentication, or sha256_password) on a connection without TLS"
        " (sslmode={sslmode}); a server in the middle could send its own key and read the password, so the agent"
        " sent nothing. The official mysql client refuses this too (error 2061, 'Authentication requires secure"
        " connection'). Use sslmode=require or verify-full: MySQL 8 servers offer TLS by default."
    ),
}
