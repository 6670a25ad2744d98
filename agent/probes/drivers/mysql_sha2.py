"""MySQL 8's default authentication, caching_sha2_password (and the older sha256_password), with a reason for
each way its exchange can end. RSA comes from `cryptography`, imported only when a login needs it.

The exchange (MySQL Reference Manual, "Caching SHA-2 Pluggable Authentication"): the client sends a SHA-256
scramble of the password; the server answers 0x01 0x03 (fast authentication: the account is in its cache, the
scramble matched) or 0x01 0x04 (perform full authentication: a cache miss, not a wrong password). Full
authentication sends the password itself: in the clear over TLS, or else encrypted with the server's RSA public key,
which the client asks for with 0x02 and the server sends as 0x01 + PEM (RSA-OAEP with SHA-1, over the password XOR
the nonce). A server without RSA keys refuses a full authentication without TLS: it answers the key request with
an access-denied error before any password was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import sys
from collections.abc import Iterator
from typing import Any

from agent.shared.reasons import ProbeFailure, Reason

FAST_AUTH_OK = 3
FULL_AUTH = 4
REQUEST_KEY = {"caching_sha2_password": b"\x02", "sha256_password": b"\x01"}
ACCESS_DENIED = 1045


@contextlib.contextmanager
def held_back(module: str) -> Iterator[None]:
    """While the block runs, `import module` fails (unless it is imported already): PyMySQL imports cryptography
    when it is imported (pymysql/_auth.py), ~10 MB and ~50 ms for every MySQL agent, for a step few logins take."""
    if module in sys.modules:
        yield
        return
    sys.modules[module] = None  # type: ignore[assignment]  # None in sys.modules: the import raises ImportError
    try:
        yield
    finally:
        if sys.modules.get(module, ...) is None:
            del sys.modules[module]


def scramble(password: bytes, nonce: bytes) -> bytes:
    """The fast-authentication answer: SHA256(password) XOR SHA256(SHA256(SHA256(password)) + nonce)."""
    once = hashlib.sha256(password).digest()
    salted = hashlib.sha256(hashlib.sha256(once).digest() + nonce).digest()
    return bytes(a ^ b for a, b in zip(once, salted, strict=True))


def load_rsa() -> None:
    """Import what rsa_encrypt needs (run in a thread: the first import reads files). ProbeFailure if missing."""
    try:
        for module in ("serialization", "hashes", "asymmetric.padding", "asymmetric.rsa"):
            importlib.import_module(f"cryptography.hazmat.primitives.{module}")
    except ImportError:
        raise ProbeFailure(
            Reason.CONFIG,
            "mysql:sha2:no_rsa",
            "the server asked for a full SHA-2 authentication without TLS, which needs RSA from the Python package"
            " cryptography, and it is not installed",
        ) from None


def rsa_encrypt(password: bytes, nonce: bytes, public_key: bytes) -> bytes:
    """The password for a full authentication without TLS: (password + NUL) XOR nonce, RSA-OAEP (SHA-1) with the
    server's PEM key. Raises ProbeFailure when the key cannot be used; call load_rsa first."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    message = bytes(b ^ nonce[i % len(nonce)] for i, b in enumerate(password + b"\0"))
    try:
        key = serialization.load_pem_public_key(public_key)
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError(f"a {type(key).__name__}, not an RSA key")
        sha1 = hashes.SHA1()  # noqa: S303 - the protocol's choice: MySQL's server decrypts with OAEP over SHA-1
        oaep = padding.OAEP(mgf=padding.MGF1(algorithm=sha1), algorithm=sha1, label=None)
        return key.encrypt(message, oaep)
    except ValueError as exc:
        raise ProbeFailure(
            Reason.SERVER, "mysql:sha2:bad_key", f"the server's RSA public key cannot be used: {exc}"
        ) from None


class Sha2Auth:
    """The two SHA-2 plugins' exchanges, for the agent's aiomysql connection class (a mixin over
    aiomysql.Connection, whose methods of the same names they replace: aiomysql's call PyMySQL's RSA step, which
    needs cryptography imported up front). Private members of aiomysql used here are listed in
    agent/shared/private_api.py."""

    _password: str
    _secure: bool
    salt: bytes
    server_public_key: bytes | None
    write_packet: Any
    _read_packet: Any

    async def caching_sha2_password_auth(self, pkt: Any) -> Any:
        """After the handshake (or a switch to this plugin): fast authentication, else a full one."""
        if not self._password:  # an empty password: the server checks that the answer is empty
            self.write_packet(b"")
            return await self._read_packet()
        if pkt.is_auth_switch_request():  # switched to this plugin: the scramble again, with the new nonce
            self.salt = _nonce(pkt)
            self.write_packet(scramble(self._password.encode("latin1"), self.salt))
            pkt = await self._read_packet()
        state = _extra_byte(pkt, "the answer to the fast authentication")
        if state == FAST_AUTH_OK:
            return await self._read_packet()  # the OK packet
        if state != FULL_AUTH:
            raise _protocol(f"the fast authentication ended with an unknown state {state}")
        return await self._full_authentication("caching_sha2_password")

    async def sha256_password_auth(self, pkt: Any) -> Any:
        """sha256_password: the password over TLS, or RSA-encrypted with the server's key."""
        if self._secure:
            self.write_packet(self._password.encode("latin1") + b"\0")
            return await self._read_packet()
        if pkt.is_auth_switch_request():
            self.salt = _nonce(pkt)
            if not self._password:
                self.write_packet(b"")
                return await self._read_packet()
        elif pkt.is_extra_auth_data():  # the key, asked for in the handshake
            pkt.advance(1)
            self.server_public_key = pkt.read_all()
        return await self._full_authentication("sha256_password")

    async def _full_authentication(self, plugin: str) -> Any:
        """The password itself: in the clear over TLS, else encrypted with the server's RSA public key."""
        password = self._password.encode("latin1")
        if self._secure:
            self.write_packet(password + b"\0")
            return await self._read_packet()
        if not self.server_public_key:
            self.server_public_key = await self._public_key(plugin)
        await asyncio.to_thread(load_rsa)
        self.write_packet(rsa_encrypt(password, self.salt, self.server_public_key))
        return await self._read_packet()

    async def _public_key(self, plugin: str) -> bytes:
        """Ask for the server's RSA public key; a refusal means the server demands TLS for this login."""
        import pymysql

        self.write_packet(REQUEST_KEY[plugin])
        try:
            pkt = await self._read_packet()
        except pymysql.err.OperationalError as exc:
            if not exc.args or exc.args[0] != ACCESS_DENIED:
                raise
            raise ProbeFailure(
                Reason.TLS,
                "mysql:sha2:needs_tls",
                f"{plugin} needs a full authentication, and the server refused to do one without TLS (it has no RSA"
                f" key to offer): {exc.args[-1]}",
            ) from None
        _extra_byte(pkt, "the answer to the public key request", read=False)
        return bytes(pkt.read_all())


def _nonce(pkt: Any) -> bytes:
    """The nonce of an AuthSwitchRequest: 20 bytes and a NUL, which is not part of it (libmysqlclient uses the 20;
    aiomysql keeps the NUL, which breaks the scramble and, for passwords of 20 bytes or more, the RSA step)."""
    data = bytes(pkt.read_all())
    return data[:-1] if data.endswith(b"\0") else data


def _extra_byte(pkt: Any, what: str, *, read: bool = True) -> int:
    """The byte after a 0x01 (extra authentication data) packet's marker; ProbeFailure if it is another packet."""
    if not pkt.is_extra_auth_data():
        raise _protocol(f"{what} is not the plugin's data (packet type {pkt.read_all()[:1]!r})")
    pkt.advance(1)
    return int(pkt.read_uint8()) if read else 0


def _protocol(what: str) -> ProbeFailure:
    return ProbeFailure(Reason.NETWORK, "mysql:sha2:protocol", f"the SHA-2 authentication went out of step: {what}")
