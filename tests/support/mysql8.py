"""A stand-in for a MySQL 8 server's login: caching_sha2_password (its default) and sha256_password, as the
server speaks them, with its RSA keys, its cache, with or without TLS; then just enough of the command phase for
the agent's queries (SELECT 1, SELECT CURRENT_USER()). No MySQL 8 server runs here; MariaDB has neither plugin.

The exchange follows the MySQL Reference Manual ("Caching SHA-2 Pluggable Authentication") and the server's
sql/auth/sha2_password.cc: fast authentication (0x01 0x03) only for an account in the cache whose scramble
matches, otherwise "perform full authentication" (0x01 0x04); then the password in the clear over TLS, or RSA-OAEP
(SHA-1) with the server's key (asked for with 0x02), or, for a server without RSA keys, access denied.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import ipaddress
import secrets
import socket
import ssl
import struct
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from pymysql.constants import CLIENT

from tests.support.protocol_front import MYSQL_CAPABILITIES

CACHING_SHA2 = "caching_sha2_password"
SHA256 = "sha256_password"
NATIVE = "mysql_native_password"
_FAST_OK, _FULL = b"\x01\x03", b"\x01\x04"
_OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


@dataclass(frozen=True)
class Keys:
    """The server's RSA key pair (for full authentication without TLS) and a TLS context with its certificate."""

    private: rsa.RSAPrivateKey
    public_pem: bytes
    tls: ssl.SSLContext


def make_keys() -> Keys:
    """A fresh RSA key and a self-signed certificate for 127.0.0.1 (file I/O: call it outside the event loop)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mysql8-stand-in")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as scratch:
        cert_file, key_file = Path(scratch) / "cert.pem", Path(scratch) / "key.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        tls.load_cert_chain(cert_file, key_file)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return Keys(key, public, tls)


def scramble_sha2(password: bytes, nonce: bytes) -> bytes:
    """What a client sends for fast authentication: XOR(SHA256(p), SHA256(SHA256(SHA256(p)) + nonce))."""
    p1 = hashlib.sha256(password).digest()
    p3 = hashlib.sha256(hashlib.sha256(p1).digest() + nonce).digest()
    return bytes(a ^ b for a, b in zip(p1, p3, strict=True))


@dataclass
class Mysql8StandIn:
    """127.0.0.1:port, answering logins as a MySQL 8 server configured by these fields.

    `accounts`: user -> password, all with `plugin`; `cached`: users in the fast-authentication cache (a user who
    logs in by full authentication is added, as the server does); `rsa`: whether the server has RSA keys;
    `tls`: whether it offers TLS; `greeting_plugin`: the plugin named in the greeting (another one makes the server
    switch). `seen` records each login's path: "fast", "full:tls", "full:rsa", "key_refused", "denied".
    """

    keys: Keys
    accounts: dict[str, str]
    plugin: str = CACHING_SHA2
    greeting_plugin: str = CACHING_SHA2
    rsa: bool = True
    tls: bool = False
    cached: set[str] = field(default_factory=set)
    seen: list[str] = field(default_factory=list)
    port: int = 0
    _listener: socket.socket | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> Mysql8StandIn:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.setblocking(False)
        self._listener, self.port = listener, listener.getsockname()[1]
        self._spawn(self._accept())
        return self

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._listener is not None:
            self._listener.close()

    def _spawn(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self) -> None:
        assert self._listener is not None
        while True:
            sock, _ = await asyncio.get_running_loop().sock_accept(self._listener)
            self._spawn(self._handle(sock))

    async def _handle(self, sock: socket.socket) -> None:
        writer: asyncio.StreamWriter | None = None
        try:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, ssl.SSLError):
                nonce = bytes(33 + b % 90 for b in secrets.token_bytes(20))  # printable, never NUL
                loop = asyncio.get_running_loop()
                await loop.sock_sendall(sock, _packet(0, _greeting(nonce, self.greeting_plugin, self.tls)))
                # Read the first packet off the socket itself: after an SSLRequest, the client's TLS hello must
                # stay in the kernel's buffer for the TLS layer, not in a stream's.
                header = await _recv(sock, 4)
                first = await _recv(sock, int.from_bytes(header[:3], "little"))
                secure = self.tls and len(first) == 32 and bool(struct.unpack_from("<I", first)[0] & CLIENT.SSL)
                reader = asyncio.StreamReader()
                transport, protocol = await loop.connect_accepted_socket(
                    lambda: asyncio.StreamReaderProtocol(reader), sock, ssl=self.keys.tls if secure else None
                )
                writer = asyncio.StreamWriter(transport, protocol, reader, loop)
                conn = _Wire(reader, writer, sequence=header[3] + 1, secure=secure)
                user = await self._login(conn, nonce, None if secure else first)
                if user is not None:
                    await _commands(conn, user)
        finally:
            if writer is not None:
                writer.close()
            else:
                sock.close()

    async def _login(self, conn: _Wire, nonce: bytes, response: bytes | None) -> str | None:
        if response is None:  # over TLS: the handshake response comes now
            response = await conn.read()
        user, answer, plugin = _handshake_response(response)
        if plugin != self.plugin:  # AuthSwitchRequest: the account's plugin, with a new nonce
            nonce = bytes(33 + b % 90 for b in secrets.token_bytes(20))
            await conn.send(b"\xfe" + self.plugin.encode() + b"\0" + nonce + b"\0")
            answer = await conn.read()
        password = self.accounts.get(user)
        check = self._caching_sha2 if self.plugin == CACHING_SHA2 else self._sha256
        ok = password is not None and await check(conn, user, password.encode(), nonce, answer)
        if not ok:
            if not self.seen or self.seen[-1] != "key_refused":
                self.seen.append("denied")
            await conn.send(_error(1045, f"Access denied for user '{user}'@'127.0.0.1' (using password: YES)"))
            return None
        await conn.send(_ok())
        return user

    async def _caching_sha2(self, conn: _Wire, user: str, password: bytes, nonce: bytes, answer: bytes) -> bool:
        if not password:
            return answer == b""
        if user in self.cached and answer == scramble_sha2(password, nonce):
            self.seen.append("fast")
            await conn.send(_FAST_OK)
            return True
        await conn.send(_FULL)
        ok = await self._full(conn, password, nonce, b"\x02")
        if ok:
            self.cached.add(user)
        return ok

    async def _sha256(self, conn: _Wire, user: str, password: bytes, nonce: bytes, answer: bytes) -> bool:
        if conn.secure:
            self.seen.append("full:tls")
            return answer == password + b"\0"
        if answer != b"\x01":  # the client asks for the key in its handshake response (or switch answer)
            return False
        if not self.rsa:
            self.seen.append("key_refused")
            return False
        await conn.send(b"\x01" + self.keys.public_pem)
        self.seen.append("full:rsa")
        return self._decrypt(await conn.read(), nonce) == password

    async def _full(self, conn: _Wire, password: bytes, nonce: bytes, key_request: bytes) -> bool:
        answer = await conn.read()
        if conn.secure:
            self.seen.append("full:tls")
            return answer == password + b"\0"
        if answer != key_request:
            return False
        if not self.rsa:  # sha2_password.cc: no RSA keys and no TLS, so no full authentication
            self.seen.append("key_refused")
            return False
        await conn.send(b"\x01" + self.keys.public_pem)
        self.seen.append("full:rsa")
        return self._decrypt(await conn.read(), nonce) == password

    def _decrypt(self, data: bytes, nonce: bytes) -> bytes:
        try:
            plain = self.keys.private.decrypt(data, _OAEP)
        except ValueError:
            return b""
        xored = bytes(b ^ nonce[i % len(nonce)] for i, b in enumerate(plain))
        return xored[:-1] if xored.endswith(b"\0") else b""


class _Wire:
    """MySQL packets: 3-byte length, sequence id, payload; the sequence restarts with each command."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sequence: int, secure: bool) -> None:
        self.reader, self.writer = reader, writer
        self.sequence = sequence
        self.secure = secure

    async def read(self) -> bytes:
        header = await self.reader.readexactly(4)
        self.sequence = (header[3] + 1) % 256
        return await self.reader.readexactly(int.from_bytes(header[:3], "little"))

    async def send(self, payload: bytes) -> None:
        self.writer.write(len(payload).to_bytes(3, "little") + bytes([self.sequence]) + payload)
        self.sequence = (self.sequence + 1) % 256
        await self.writer.drain()


async def _commands(conn: _Wire, user: str) -> None:
    """COM_QUERY: a one-row result for a SELECT (CURRENT_USER() is user@%), OK otherwise; COM_PING; COM_QUIT."""
    while True:
        packet = await conn.read()
        if packet[:1] == b"\x01":  # COM_QUIT
            return
        query = packet[1:].decode(errors="replace").strip().upper()
        if packet[:1] != b"\x03" or not query.startswith("SELECT"):
            await conn.send(_ok())
            continue
        value = f"{user}@%" if "CURRENT_USER" in query else ("0" if "READ_ONLY" in query else "1")  # a writer
        column = b"".join(_lenenc(s) for s in (b"def", b"", b"", b"", b"v", b"")) + b"\x0c"
        column += struct.pack("<HIBHB", 33, 255, 0xFD, 0, 0) + b"\0\0"
        for payload in (b"\x01", column, _eof(), _lenenc(value.encode()), _eof()):
            await conn.send(payload)


def _greeting(nonce: bytes, plugin: str, tls: bool) -> bytes:
    capabilities = MYSQL_CAPABILITIES | (CLIENT.SSL if tls else 0)
    return (
        b"\x0a8.0.36-eha-stand-in\0"
        + struct.pack("<I", 7)
        + nonce[:8]
        + b"\0"
        + struct.pack("<H", capabilities & 0xFFFF)
        + bytes([33])
        + struct.pack("<H", 2)
        + struct.pack("<H", capabilities >> 16)
        + bytes([len(nonce) + 1])
        + b"\0" * 10
        + nonce[8:]
        + b"\0"
        + plugin.encode()
        + b"\0"
    )


def _handshake_response(data: bytes) -> tuple[str, bytes, str]:
    """HandshakeResponse41: the user, the auth response and the client's plugin name."""
    flags = struct.unpack_from("<I", data)[0]
    i = 32
    end = data.index(b"\0", i)
    user, i = data[i:end].decode(), end + 1
    length = data[i]  # a length-encoded integer: below 251, one byte
    answer, i = data[i + 1 : i + 1 + length], i + 1 + length
    if flags & CLIENT.CONNECT_WITH_DB:
        i = data.index(b"\0", i) + 1
    plugin = data[i : data.index(b"\0", i)].decode() if flags & CLIENT.PLUGIN_AUTH else NATIVE
    return user, answer, plugin


async def _recv(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await asyncio.get_running_loop().sock_recv(sock, size - len(data))
        if not chunk:
            raise asyncio.IncompleteReadError(data, size)
        data += chunk
    return data


def _packet(sequence: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([sequence]) + payload


def _lenenc(value: bytes) -> bytes:
    return bytes([len(value)]) + value


def _ok() -> bytes:
    return b"\x00\x00\x00" + struct.pack("<HH", 2, 0)


def _eof() -> bytes:
    return b"\xfe" + struct.pack("<HH", 0, 2)


def _error(errno: int, message: str) -> bytes:
    return b"\xff" + struct.pack("<H", errno) + b"#28000" + message.encode()
