"""`python -m tests.support.health_prober PORT SECONDS [INTERVAL]`: GET /health on a fresh loopback connection
every INTERVAL seconds (default 0.02) for SECONDS or until SIGTERM, as an ALB or ECS health check does. Prints a
line `probing` when it starts, then at the end the samples as JSON [[started_at, status, elapsed], ...] (seconds
since it started; status 0: no answer within 2 s).

A process of its own, so the latency measured is the agent's and the kernel's, not that of a test's busy event
loop opening two thousand connections beside it.
"""

from __future__ import annotations

import json
import signal
import socket
import sys
import time

TIMEOUT_SECONDS = 2.0  # the shortest ALB health-check timeout
REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def probe(port: int) -> int:
    """One health check: the HTTP status, or 0 if none came within TIMEOUT_SECONDS."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_SECONDS) as sock:
            sock.sendall(REQUEST)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    except OSError:
        return 0
    parts = answer.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def main(argv: list[str]) -> int:
    port, seconds = int(argv[0]), float(argv[1])
    interval = float(argv[2]) if len(argv) > 2 else 0.02
    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(True))
    print("probing", flush=True)  # from here on, SIGTERM ends the run and the samples are printed
    start = time.monotonic()
    samples = []
    while (now := time.monotonic()) - start < seconds and not stopped:
        status = probe(port)
        samples.append([round(now - start, 4), status, round(time.monotonic() - now, 5)])
        time.sleep(max(0.0, interval - (time.monotonic() - now)))
    print(json.dumps(samples))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
