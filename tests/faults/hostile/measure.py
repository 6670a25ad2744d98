"""What a hostile-peer row measures on the agent process: its memory (VmRSS, and the peak VmHWM since a reset) and
how fast /health answers meanwhile, from a thread of its own so the test's event loop cannot slow the clock."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HEALTH_EVERY = 0.02  # seconds between two /health requests: 50 a second


def memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in KiB (/proc/PID/status)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def reset_peak(pid: int) -> None:
    """Make VmHWM start again from the current RSS (proc(5): writing 5 to /proc/PID/clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


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


@dataclass
class HealthWatch:
    """Requests /health every HEALTH_EVERY seconds on a thread until stopped; keeps every latency and status."""

    port: int
    latencies: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> HealthWatch:
        self._thread = threading.Thread(target=self._run, name="health-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> HealthWatch:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            took, status = health_once(self.port)
            self.latencies.append(took)
            self.statuses.append(status)
            self._stop.wait(HEALTH_EVERY)

    def p99_ms(self) -> float:
        """The 99th percentile latency in milliseconds (nearest rank)."""
        ordered = sorted(self.latencies)
        if not ordered:
            return float("inf")
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000

    def failures(self) -> int:
        return sum(1 for status in self.statuses if status != 200)
