"""Metrics of the outputs under pressure: the HTTP connection cap, and log lines dropped or left out.

A collector read at scrape time, like agent.outputs.metrics: the counts live where they happen (the cap, the
stdout writer, the malformed-request filter), nothing is updated per event here.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from agent.outputs.connections import ConnectionCap
from agent.outputs.log_queue import DROP_REASONS, running_writer
from agent.outputs.logs import bad_request_lines_suppressed
from agent.outputs.metrics import PREFIX


class OutputsCollector:
    """A prometheus_client Collector over the connection cap and the log writer."""

    def __init__(self, cap: ConnectionCap) -> None:
        self._cap = cap

    def collect(self) -> Iterator[Metric]:
        """The connection and log-line metrics as they are now."""
        yield from _connection_metrics(self._cap)
        yield from _log_metrics()


def _connection_metrics(cap: ConnectionCap) -> Iterator[Metric]:
    open_now = GaugeMetricFamily(f"{PREFIX}http_connections", "HTTP connections open now.")
    open_now.add_metric([], cap.open_connections())
    limit = GaugeMetricFamily(
        f"{PREFIX}http_connections_max",
        "The cap on open HTTP connections (from RLIMIT_NOFILE, less the descriptors kept for the probes).",
    )
    limit.add_metric([], cap.limit)
    evicted = CounterMetricFamily(
        f"{PREFIX}http_connections_evicted",
        "HTTP connections closed at the cap to make room for a new one (the oldest open one goes).",
    )
    evicted.add_metric([], cap.evicted)
    yield from (open_now, limit, evicted)


def _log_metrics() -> Iterator[Metric]:
    dropped = CounterMetricFamily(
        f"{PREFIX}log_lines_dropped",
        "Log and EMF lines never written: queue_full (stdout not taking them), write_failed (stdout closed),"
        " format_failed (a bad log call).",
        labels=["reason"],
    )
    writer = running_writer()
    counts = writer.dropped() if writer is not None else dict.fromkeys(DROP_REASONS, 0)
    for reason, count in counts.items():
        dropped.add_metric([reason], count)
    suppressed = CounterMetricFamily(
        f"{PREFIX}log_lines_suppressed",
        "Log lines about malformed HTTP requests left out by their rate limit.",
    )
    suppressed.add_metric([], bad_request_lines_suppressed())
    yield from (dropped, suppressed)
