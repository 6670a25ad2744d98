"""Loopback database stand-ins that ask for the password the way a hostile (or badly configured) server would, and
keep every byte the client sends after its greeting, so a test can prove a password never arrived.

PostgreSQL: refuses TLS ('N') or, given a server SSLContext, speaks TLS; after the StartupMessage it sends the
authentication request it was given (AuthenticationCleartextPassword, AuthenticationMD5Password, ...), in chunks
if asked. MySQL: greets without TLS naming an authentication plugin, then switches to mysql_clear_password or asks
for caching_sha2_password's full authentication; for RSA it sends a real public key and decrypts what comes back
(openssl), so a password sent that way would be found too.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import ssl
import struct
from dataclasses import dataclass, field
from pathlib import Path

from pymysql.constants import CLIENT

from tests.support.protocol_front import MYSQL_CAPABILITIES

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
READ_SECONDS = 2.0  # how long a stand-in waits for what the client sends after its request


def pg_cleartext() -> bytes:
    """AuthenticationCleartextPassword."""
    return b"R" + struct.pack("!ii", 8, 3)


def pg_md5(salt: bytes = b"salt") -> bytes:
    """AuthenticationMD5Password with a 4-byte salt."""
    return b"R" + struct.pack("!ii", 12, 5) + salt


def pg_notice(text: str) -> bytes:
    """A NoticeResponse (servers may send one before authentication)."""
    body = b"SNOTICE\0M" + text.encode() + b"\0\0"
    return b"N" + struct.pack("!i", len(body) + 4) + body


def pg_error(sqlstate: str = "28P01", message: str = "password authentication failed") -> bytes:
    body = b"SFATAL\0C" + sqlstate.encode() + b"\0M" + message.encode() + b"\0\0"
    return b"E" + struct.pack("!i", len(body) + 4) + body


class _Server:
    """One asyncio loopback server; `received` holds what clients sent after the greeting, per connection."""

    def __init__(self) -> None:
        self.port = 0
        self.received: list[bytes] = []
        self._server: asyncio.Server | None = None

    @property
    def everything(self) -> bytes:
        return b"".join(self.received)

    async def __aenter__(self) -> _Server:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        kept = bytearray()
        index = len(self.received)
        self.received.append(b"")
        try:
            async with asyncio.timeout(READ_SECONDS * 3):
                await self.converse(reader, writer, kept)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, struct.error):
            pass
        finally:
            self.received[index] = bytes(kept)
            writer.close()

    async def converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, kept: bytearray) -> None:
        raise NotImplementedError


async def read_some(reader: asyncio.StreamReader, kept: bytearray, want: int = 1) -> bytes:
    """What the client sends within READ_SECONDS (at least `want` bytes unless it closes), also kept."""
    data = bytearray()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(READ_SECONDS):
            while len(data) < want and (chunk := await reader.read(65536)):
                data += chunk
    kept += data
    return bytes(data)


class PgStandIn(_Server):
    """Refuses TLS (or speaks it with `tls`), then sends `request` (in `chunk`-byte pieces if set)."""

    def __init__(self, request: bytes, *, tls: ssl.SSLContext | None = None, chunk: int = 0) -> None:
        super().__init__()
        self.request, self.tls, self.chunk = request, tls, chunk

    async def converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, kept: bytearray) -> None:
        while True:
            length, code = struct.unpack("!ii", await reader.readexactly(8))
            if code not in (SSL_REQUEST, GSSENC_REQUEST):
                await reader.readexactly(length - 8)  # the StartupMessage
                break
            writer.write(b"S" if code == SSL_REQUEST and self.tls else b"N")
            await writer.drain()
            if code == SSL_REQUEST and self.tls:
                await writer.start_tls(self.tls)
        step = self.chunk or len(self.request)
        for at in range(0, len(self.request), step):
            writer.write(self.request[at : at + step])
            await writer.drain()
            await asyncio.sleep(0.01 if self.chunk else 0)
        if await read_some(reader, kept, want=5):  # a PasswordMessage: turn it down, as a server would
            writer.write(pg_error())
            await writer.drain()


async def self_signed(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server SSLContext with a self-signed certificate for 127.0.0.1 and localhost, and the certificate's path
    (the CA a client would verify against)."""
    key, cert = directory / "server.key", directory / "server.crt"
    await _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
        "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context, cert


@dataclass
class RsaKey:
    """An RSA key pair in PEM files (openssl), for the MySQL stand-in's public-key exchange."""

    private: Path
    public_pem: bytes = field(default=b"", repr=False)

    @classmethod
    async def make(cls, directory: Path) -> RsaKey:
        private = directory / "rsa.key"
        await _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(private))
        public = await _openssl("pkey", "-in", str(private), "-pubout")
        return cls(private, public)

    async def decrypt(self, blob: bytes) -> bytes:
        """RSA-OAEP (SHA-1), as PyMySQL's sha2_rsa_encrypt and the MySQL server use."""
        oaep = ("-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha1")
        return await _openssl("pkeyutl", "-decrypt", "-inkey", str(self.private), *oaep, stdin=blob)


async def _openssl(*args: str, stdin: bytes | None = None) -> bytes:
    process = await asyncio.create_subprocess_exec(
        "openssl", *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate(stdin)
    assert process.returncode == 0, err.decode(errors="replace")
    return out


_CAPABILITIES = MYSQL_CAPABILITIES & ~CLIENT.CONNECT_ATTRS  # no CLIENT.SSL: this server refuses TLS


class MySqlStandIn(_Server):
    """Greets without TLS naming `plugin`, then: `then="switch"` switches to mysql_clear_password, `"full_auth"`
    asks for caching_sha2_password's full authentication; RSA-encrypted passwords are decrypted into `received`."""

    def __init__(self, plugin: str, then: str = "", rsa: RsaKey | None = None) -> None:
        super().__init__()
        self.plugin, self.then, self.rsa = plugin, then, rsa
        self.salt = bytes(33 + b % 90 for b in secrets.token_bytes(20))  # printable, never NUL

    async def converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, kept: bytearray) -> None:
        writer.write(_packet(0, self._greeting()))
        seq, payload = await _read_packet(reader, kept)
        if self.then == "switch":
            writer.write(_packet(seq + 1, b"\xfe" + b"mysql_clear_password\0" + self.salt + b"\0"))
            seq, payload = await _read_packet(reader, kept)
        elif self.then == "full_auth":
            writer.write(_packet(seq + 1, b"\x01\x04"))  # perform_full_authentication
            seq, payload = await _read_packet(reader, kept)
        # caching_sha2_password asks for the key with 0x02; sha256_password's handshake response asked with 0x01
        wants_key = payload == b"\x02" or self.plugin == "sha256_password"
        if wants_key and self.rsa is not None:
            writer.write(_packet(seq + 1, b"\x01" + self.rsa.public_pem))
            seq, payload = await _read_packet(reader, kept)
            decrypted = await self.rsa.decrypt(payload)
            kept += bytes(c ^ self.salt[i % len(self.salt)] for i, c in enumerate(decrypted))
        writer.write(_packet(seq + 1, b"\xff" + struct.pack("<H", 1045) + b"#28000Access denied"))
        await writer.drain()

    def _greeting(self) -> bytes:
        return (
            b"\x0a8.0.36-stand-in\0"
            + struct.pack("<I", 7)
            + self.salt[:8]
            + b"\0"
            + struct.pack("<H", _CAPABILITIES & 0xFFFF)
            + bytes([33])
            + struct.pack("<H", 2)
            + struct.pack("<H", _CAPABILITIES >> 16)
            + bytes([len(self.salt) + 1])
            + b"\0" * 10
            + self.salt[8:]
            + b"\0"
            + self.plugin.encode()
            + b"\0"
        )


def _packet(seq: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([seq & 0xFF]) + payload


async def _read_packet(reader: asyncio.StreamReader, kept: bytearray) -> tuple[int, bytes]:
    async with asyncio.timeout(READ_SECONDS):
        header = await reader.readexactly(4)
        payload = await reader.readexactly(int.from_bytes(header[:3], "little"))
    kept += payload
    return header[3], payload
