"""aiomysql never hands the password, in a form a server without TLS can read, to a connection without TLS.

aiomysql answers whatever the server asks, TLS or not (the official mysql client does not):
- a server whose greeting names mysql_clear_password gets the password in the handshake response;
- an auth switch to mysql_clear_password gets it in the next packet;
- caching_sha2_password's full authentication and sha256_password encrypt it with an RSA public key the server
  itself sends, so a server in the middle sends its own key and reads it (libmysqlclient refuses both without TLS
  or a configured key: CR_AUTH_PLUGIN_ERR 2061 "Authentication requires secure connection"). The agent refuses it
  where TLS was wanted and not had (sslmode=prefer); under sslmode=disable, which asks for no TLS, it goes on.
ClearPasswordGuard overrides the two aiomysql methods where the first two happen, and the attribute aiomysql
reads just before the third (`server_public_key`), and raises the `tls` failure instead. The private names are
listed in agent/shared/private_api.py with the tests that guard them.

mysql_native_password and the fast path of caching_sha2_password send a scramble, never the password.
"""

from __future__ import annotations

from typing import Any

from pymysql.constants import CLIENT

from agent.probes.drivers.tls import MYSQL_CLEAR_PASSWORD, MYSQL_SERVER_PUBLIC_KEY, refusal

CLEAR_PASSWORD = "mysql_clear_password"


class ClearPasswordGuard:
    """A mixin for aiomysql.Connection (put it first among the bases)."""

    # aiomysql's own attributes, set in its __init__ and handshake.
    _host: str
    _port: int
    _password: str
    _secure: bool
    _ssl_context: Any
    _client_auth_plugin: str
    _server_auth_plugin: str
    server_capabilities: int
    _pinned_public_key: bytes | None = None

    async def _request_authentication(self) -> None:
        tls = bool(self._ssl_context) and bool(self.server_capabilities & CLIENT.SSL)
        plugin = self._client_auth_plugin or self._server_auth_plugin
        if not tls and plugin == CLEAR_PASSWORD:
            raise refusal(MYSQL_CLEAR_PASSWORD, self._server(), f"greets with the {CLEAR_PASSWORD} plugin")
        await super()._request_authentication()  # type: ignore[misc]  # aiomysql.Connection's, after this mixin

    async def _process_auth(self, plugin_name: bytes, auth_packet: Any) -> Any:
        if not self._secure and plugin_name == CLEAR_PASSWORD.encode():
            raise refusal(MYSQL_CLEAR_PASSWORD, self._server(), f"switched the login to {CLEAR_PASSWORD}")
        return await super()._process_auth(plugin_name, auth_packet)  # type: ignore[misc]

    @property
    def server_public_key(self) -> bytes | None:
        """The server's RSA key, read only to encrypt the password without TLS: refused when TLS was wanted
        (sslmode=prefer: a server that refuses TLS and then sends its own key may be an impostor in the middle, so
        the official client refuses too); under sslmode=disable, where no TLS was asked for, the exchange goes on
        (agent/probes/drivers/mysql_sha2.py), as `--get-server-public-key` does."""
        if not self._secure and self._password and self._ssl_context is not None:
            request = "asked for the password encrypted with an RSA key it sends itself"
            raise refusal(MYSQL_SERVER_PUBLIC_KEY, self._server(), request)
        return self._pinned_public_key

    @server_public_key.setter
    def server_public_key(self, value: bytes | None) -> None:
        self._pinned_public_key = value

    def _server(self) -> str:
        return f"{self._host}:{self._port}"
