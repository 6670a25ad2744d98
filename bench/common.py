"""What every bench phase shares: child processes on loopback ports, HTTP GETs, /proc readings, metric samples."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable  # run.sh starts the bench with the project's .venv/bin/python
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024
# What a Prometheus server sends; mysqld_exporter and blackbox_exporter derive their own deadline from it.
SCRAPE_HEADERS = {"X-Prometheus-Scrape-Timeout-Seconds": "10"}
SCRAPE_TIMEOUT = 10.0  # Prometheus' default scrape_timeout


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without AGENT_* and AWS_* leftovers, with no way to reach real AWS, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_", "AWS_"))}
    env.update(
        AWS_CONFIG_FILE="/nonexistent/aws-config",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/aws-credentials",
        AWS_EC2_METADATA_DISABLED="true",
    )
    return {**env, **(extra or {})}


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer; status 0 means no answer at all (refused, reset, or timed out: see `error`)."""

    status: int
    body: bytes
    seconds: float
    error: str = ""

    def text(self) -> str:
        """The body as text."""
        return self.body.decode("utf-8", "replace")


def get(url: str, timeout: float = 5.0, headers: Mapping[str, str] | None = None) -> Reply:
    """GET a loopback URL; never raises for network trouble (the bench records it instead)."""
    started = time.monotonic()
    request = urllib.request.Request(url, headers=dict(headers or {}))  # noqa: S310 - http://127.0.0.1 only
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return Reply(answer.status, answer.read(), time.monotonic() - started)
    except urllib.error.HTTPError as err:
        return Reply(err.code, err.read(), time.monotonic() - started)
    except (OSError, urllib.error.URLError) as err:  # refused, reset, timed out
        return Reply(0, b"", time.monotonic() - started, type(err).__name__ if not str(err) else str(err))


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the first sample called `name` whose labels include `labels`, in Prometheus text."""
    for family in text_string_to_metric_families(text):
        for item in family.samples:
            if item.name == name and all(item.labels.get(k) == v for k, v in labels.items()):
                return float(item.value)
    return None


def sample_sum(text: str, name: str, **labels: str) -> float:
    """The sum of every sample called `name` whose labels include `labels` (0 if there is none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for item in family.samples:
            if item.name == name and all(item.labels.get(k) == v for k, v in labels.items()):
                total += float(item.value)
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all threads (/proc/PID/stat fields 14 and 15)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may contain spaces: skip past it
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_bytes(pid: int, field: str = "VmRSS") -> int:
    """A memory figure from /proc/PID/status: VmRSS (resident now) or VmHWM (peak resident)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no {field} in /proc/{pid}/status")


@dataclass
class Service:
    """A child process listening on a loopback port, its output in a log file."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    started_at: float  # time.monotonic() just before the process was started

    def url(self, path: str) -> str:
        """http://127.0.0.1:PORT/path"""
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def pid(self) -> int:
        """The process id."""
        return self.proc.pid

    def log_size(self) -> int:
        """Bytes of output so far (to read only what came after a moment)."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_since(self, offset: int) -> str:
        """Output written after `offset`."""
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode("utf-8", "replace")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)


def spawn(name: str, argv: Sequence[str], env: Mapping[str, str], port: int, workdir: Path) -> Service:
    """Start argv with its stdout and stderr in workdir/NAME.log."""
    log_path = workdir / f"{name}.log"
    with log_path.open("ab") as log:
        started = time.monotonic()
        # argv is built by the bench from fixed programs and its own paths, never from outside input
        proc = subprocess.Popen(argv, env=dict(env), stdout=log, stderr=subprocess.STDOUT, cwd=REPO)  # noqa: S603
    return Service(name, proc, port, log_path, started)


def wait_until(check: Callable[[], bool], timeout: float, period: float = 0.05) -> float | None:
    """Call `check` every `period` seconds until it holds; the seconds it took, or None after `timeout`."""
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic() - started
        time.sleep(period)
    return None


def run(argv: Sequence[str], timeout: float, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command to completion (bounded), capturing its output as text."""
    # argv is built by the bench from fixed programs and its own paths, never from outside input
    return subprocess.run(  # noqa: S603
        list(argv), capture_output=True, text=True, timeout=timeout, check=False, env=None if env is None else dict(env)
    )


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages."""
    one, five, fifteen = os.getloadavg()
    return one, five, fifteen
