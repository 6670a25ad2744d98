"""Watchers: a thread per observed signal (agent /ready, probe_success, pg_up, ...) polling it in a bounded loop
and keeping every reading with the time it arrived, so detection and recovery times are read off afterwards."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.common import Reply, Service, get, sample
from bench.subjects import blackbox_path, scrape

Read = Callable[[], tuple[str, bool]]  # -> (what it says, healthy?)
AGENT_PERIOD, EXPORTER_PERIOD = 0.2, 0.5  # exporters run their checks on every scrape: poll them less often
MAX_READINGS = 20_000  # a bound on memory whatever the windows (a 15-minute run polls far fewer times)


@dataclass(frozen=True, slots=True)
class Reading:
    """One poll: when its answer arrived (time.monotonic()), what it said, and whether that is healthy."""

    at: float
    state: str
    healthy: bool


@dataclass
class Watcher:
    """Polls `read` every `period` seconds on its own thread until stopped."""

    name: str
    read: Read
    period: float
    readings: list[Reading] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Watcher:
        """Begin polling."""
        self._thread = threading.Thread(target=self._loop, name=f"watch {self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling (waits for a scrape in flight, which is itself bounded by its timeout)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def first_after(self, moment: float, healthy: bool) -> Reading | None:
        """The first reading that arrived after `moment` with the given health."""
        return next((r for r in list(self.readings) if r.at > moment and r.healthy is healthy), None)

    def latest(self) -> Reading | None:
        """The newest reading."""
        return self.readings[-1] if self.readings else None

    def _loop(self) -> None:
        while not self._stop.is_set() and len(self.readings) < MAX_READINGS:
            began = time.monotonic()
            state, healthy = self.read()
            self.readings.append(Reading(time.monotonic(), state, healthy))
            self._stop.wait(max(0.0, self.period - (time.monotonic() - began)))


def agent_ready_reader(agent: Service) -> Read:
    """/ready: healthy while it says `ready` (`degraded` is still 200, but it is a change worth timing)."""

    def read() -> tuple[str, bool]:
        reply = get(agent.url("/ready"), timeout=2.0)
        if reply.status == 0:
            return f"no answer ({reply.error})", False
        status = json.loads(reply.body).get("status", "?")
        return f"{reply.status} {status}", status == "ready"

    return read


def agent_success_reader(agent: Service, target: str = "default") -> Read:
    """health_agent_probe_success for the db probe, from /metrics."""
    labels = {"probe": "db", "target": target}
    return _metric_reader(lambda: get(agent.url("/metrics"), timeout=2.0), "health_agent_probe_success", labels)


def exporter_reader(exporter: Service, name: str) -> Read:
    """An exporter's own up gauge (pg_up, mysql_up), scraped as Prometheus would."""
    return _metric_reader(lambda: scrape(exporter), name, {})


def blackbox_reader(blackbox: Service, port: int) -> Read:
    """blackbox probe_success for a TCP connect to 127.0.0.1:port."""
    return _metric_reader(lambda: scrape(blackbox, blackbox_path(port)), "probe_success", {})


def _metric_reader(fetch: Callable[[], Reply], name: str, labels: dict[str, str]) -> Read:
    def read() -> tuple[str, bool]:
        reply = fetch()
        if reply.status != 200:
            return f"scrape failed ({reply.error or f'HTTP {reply.status}'})", False
        value = sample(reply.text(), name, **labels)
        shown = "absent" if value is None else f"{value:g}"
        return f"{name}={shown}", value == 1.0

    return read
