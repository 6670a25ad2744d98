"""Loopback ports for tests: one to listen on, one where connecting is refused, one that never answers."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port nothing listens on right now (bound, then closed), for a server a test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def refused_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    return free_port()


class SilentListener:
    """A loopback port that completes the TCP handshake and never answers (a black-holed service)."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)  # never accept(): the kernel completes handshakes, nothing ever replies
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        """Stop listening (pending connections are reset)."""
        self._sock.close()
