"""Ask an agent's /health about 100 times a second and print each answer: `<monotonic> <seconds> <status>` a line.

Run as its own process (`python -m tests.faults.hostile.health_watch PORT`) by tests/faults/hostile/measure.py:
the test process also runs moto and the hostile peers, whose work would hold the GIL and slow a clock kept there.
CLOCK_MONOTONIC is system-wide, so the test slices the lines by its own time.monotonic(). Standard library only.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import time

EVERY = 0.005  # seconds between two requests (each takes a few ms more)


def health_once(port: int, timeout: float = 1.0) -> tuple[float, int]:
    """GET /health on a fresh connection: (seconds, HTTP status; 0 when there was no answer in time)."""
    started = time.perf_counter()
    request = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(request)
            head = sock.recv(64)
            while sock.recv(4096):
                pass
        status = int(head.split(b" ", 2)[1])
    except (OSError, ValueError, IndexError):
        status = 0
    return time.perf_counter() - started, status


def main(port: int) -> None:
    while True:
        at = time.monotonic()
        took, status = health_once(port)
        print(f"{at:.6f} {took:.6f} {status}", flush=True)
        time.sleep(EVERY)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):  # stopped by the test (terminate, pipe closed)
        main(int(sys.argv[1]))
