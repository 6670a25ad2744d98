"""CloudWatch Embedded Metric Format: probe results, aggregated per minute, written to stdout as EMF lines.

The awslogs driver ships stdout to CloudWatch Logs, which turns EMF lines into metrics: no CloudWatch agent,
no PutMetricData call, no IAM permission. Why per minute rather than per run: CloudWatch bills a custom metric
per name + dimension values per month, whatever its number of data points, so per-run documents buy no extra
metrics, only more log lines (6 times more at the default 10 s interval) and ingestion. A minute's runs go out
as arrays of values (the spec allows up to 100 per metric), so Minimum, Average, Sum and SampleCount stay
exact per run; what is given up is the second within the minute. A window fills up early (100 values) only
with intervals under ~0.6 s; it is then written at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

from agent.aws.ecs_metadata import TaskIdentity, read_task_identity
from agent.config.models import AgentConfig
from agent.outputs.log_queue import stdout_writer
from agent.outputs.logs import iso_utc
from agent.probes.base import ProbeResult
from agent.runtime.readiness import Status
from agent.runtime.state import AgentState
from agent.shared.reasons import NOT_RUN_CODE, Reason

log = logging.getLogger("agent.emf")  # a documented logger name: users filter on it

MAX_VALUES = 100  # EMF: a metric's array of values holds at most 100 numbers
WINDOW_SECONDS = 60  # CloudWatch's standard resolution: one data point per metric per minute
FLUSH_DELAY_SECONDS = 0.5  # past the minute, so a run finishing on the boundary lands in the right window
LOGGER = "agent.emf"  # the `logger` member of each EMF line, like every other log line of the agent

# The contract alarms are written against (docs/emf-and-costs.md). ClusterName is in every set: services
# in different clusters (staging, prod) may share a name, and with one cluster per service it adds no metric.
PROBE_DIMENSIONS = ("ClusterName", "ServiceName", "Probe", "Target")
FAILURE_DIMENSIONS = ("ClusterName", "ServiceName", "Probe", "Reason")
READY_DIMENSIONS = ("ClusterName", "ServiceName")
UNITS = {"ProbeSuccess": "None", "ProbeDuration": "Milliseconds", "ProbeFailures": "Count", "Ready": "None"}

Document = dict[str, object]


@dataclass(slots=True)
class ProbeSeries:
    """One (probe, target)'s runs in a window: 1/0 per run, and the duration of each run that ran."""

    success: list[int] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)  # not-run results took no time: left out


@dataclass(slots=True)
class Window:
    """The observations of one minute (or of part of one, when a series filled up)."""

    minute: int  # whole minutes since the epoch
    first_ms: int  # when the first observation came: the documents' Timestamp, inside `minute`
    probes: dict[tuple[str, str], ProbeSeries] = field(default_factory=dict)
    failures: Counter[tuple[str, str]] = field(default_factory=Counter)  # (probe, reason) -> failed runs
    ready: list[int] = field(default_factory=list)  # 1/0 per observation, sampled after each run

    def full(self) -> bool:
        """Whether one more value could overflow a metric's array."""
        return len(self.ready) >= MAX_VALUES or any(len(s.success) >= MAX_VALUES for s in self.probes.values())


class EmfAggregator:
    """Collects probe runs into per-minute windows. Pure: no I/O and no clock of its own."""

    def __init__(self) -> None:
        self._current: Window | None = None
        self._closed: list[Window] = []

    def observe(self, result: ProbeResult, ready: bool | None, now: float) -> bool:
        """Take one run and the readiness it left (None: not sampled); True if a window is complete."""
        window = self._window(now)
        series = window.probes.setdefault((result.probe, result.target), ProbeSeries())
        series.success.append(1 if result.ok else 0)
        if result.code != NOT_RUN_CODE:
            series.durations.append(round(result.duration_ms, 1))
        if not result.ok:
            window.failures[(result.probe, (result.reason or Reason.UNKNOWN).value)] += 1
        if ready is not None:
            window.ready.append(1 if ready else 0)
        if window.full():
            self._close()
        return bool(self._closed)

    def complete(self, now: float) -> list[Window]:
        """Hand over the windows that are complete at `now` (the current one too, once its minute is over)."""
        if self._current is not None and self._current.minute < _minute(now):
            self._close()
        return self._take()

    def drain(self) -> list[Window]:
        """Hand over every window, the current one included (at shutdown)."""
        self._close()
        return self._take()

    def _window(self, now: float) -> Window:
        if self._current is not None and self._current.minute != _minute(now):
            self._close()
        if self._current is None:
            self._current = Window(_minute(now), int(now * 1000))
        return self._current

    def _close(self) -> None:
        if self._current is not None:
            self._closed.append(self._current)
            self._current = None

    def _take(self) -> list[Window]:
        taken, self._closed = self._closed, []
        return taken


def window_documents(window: Window, namespace: str, task: TaskIdentity) -> list[Document]:
    """One window as EMF documents: one per (probe, target), one per (probe, reason) that failed, one for Ready."""
    common = {
        "ClusterName": task.cluster,
        "ServiceName": task.service,
        "TaskFamily": task.family,
        "TaskId": task.task_id,
    }
    documents = []
    for (probe, target), series in window.probes.items():
        values: dict[str, object] = {"ProbeSuccess": series.success}
        if series.durations:
            values["ProbeDuration"] = series.durations
        failed = len(series.success) - sum(series.success)
        summary = f"{probe} ({target}): {len(series.success)} runs, {failed} failed"
        members = {**common, "Probe": probe, "Target": target}
        documents.append(_document(namespace, window.first_ms, PROBE_DIMENSIONS, values, members, summary))
    for (probe, reason), count in window.failures.items():
        members = {**common, "Probe": probe, "Reason": reason}
        summary = f"{probe}: {count} failures ({reason})"
        documents.append(
            _document(namespace, window.first_ms, FAILURE_DIMENSIONS, {"ProbeFailures": count}, members, summary)
        )
    if window.ready:
        summary = f"ready in {sum(window.ready)} of {len(window.ready)} samples"
        documents.append(
            _document(namespace, window.first_ms, READY_DIMENSIONS, {"Ready": window.ready}, common, summary)
        )
    return documents


def _document(
    namespace: str,
    timestamp_ms: int,
    dimensions: Sequence[str],
    values: Mapping[str, object],
    members: Mapping[str, str],
    message: str,
) -> Document:
    directive = {
        "Namespace": namespace,
        "Dimensions": [list(dimensions)],
        "Metrics": [{"Name": name, "Unit": UNITS[name]} for name in values],
    }
    return {
        # The agent's usual log members first, so a person reading the log stream sees what the line is.
        "time": iso_utc(timestamp_ms / 1000),
        "level": "info",
        "logger": LOGGER,
        "message": f"metrics: {message}",
        "_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": [directive]},
        **members,
        **values,
    }


def render(documents: Sequence[Document]) -> str:
    """EMF documents as JSON lines (ASCII, compact: every byte is billed as log ingestion)."""
    return "".join(json.dumps(doc, ensure_ascii=True, separators=(",", ":")) + "\n" for doc in documents)


class EmfPublisher:
    """Feeds the aggregator from the scheduler and writes each finished minute to stdout in one write (through
    the log lines' queue, agent.outputs.log_queue: a stalled stdout drops and counts them, never blocks)."""

    def __init__(self, state: AgentState, config: AgentConfig, stream: IO[str] | None = None) -> None:
        self._state = state
        self._namespace = config.cloudwatch_namespace
        self._metadata_uri = config.ecs_metadata_uri
        self._timeout = config.timeout_seconds
        self._stream = stream
        self._aggregator = EmfAggregator()
        self._task_identity: TaskIdentity | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def observe(self, result: ProbeResult) -> None:
        """Scheduler observer: buffer one run (no I/O); a complete window wakes the writer."""
        status = self._state.status()  # not the snapshot: this runs on every result
        # A draining task is leaving on purpose: a 0 would page on every deployment.
        ready = None if status is Status.DRAINING else status.http_ok
        if self._aggregator.observe(result, ready, time.time()):
            self._wake.set()

    def start(self) -> None:
        """Read the task's identity, then write complete windows every minute, in the background."""
        self._task = asyncio.create_task(self._run(), name="emf")
        self._task.add_done_callback(_log_death)

    async def stop(self) -> None:
        """Stop the writer and write what is buffered (the last, partial minute)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._task_identity is not None:  # still asking ECS who we are: nothing could be labelled yet
            self._write(self._aggregator.drain())

    async def _run(self) -> None:
        self._task_identity = await read_task_identity(self._metadata_uri, self._timeout)
        while True:
            wait = WINDOW_SECONDS - time.time() % WINDOW_SECONDS + FLUSH_DELAY_SECONDS
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            self._wake.clear()
            self._write(self._aggregator.complete(time.time()))

    def _write(self, windows: list[Window]) -> None:
        assert self._task_identity is not None
        documents = [doc for w in windows for doc in window_documents(w, self._namespace, self._task_identity)]
        if not documents:
            return
        if self._stream is None:  # stdout: the log lines' queue and writer thread, never blocking the loop
            stdout_writer().put(render(documents))
            return
        try:
            self._stream.write(render(documents))
            self._stream.flush()
        except OSError as exc:  # the stream is closed: shutdown must go on
            log.error("cannot write CloudWatch metrics: %s", exc)


def _log_death(task: asyncio.Task[None]) -> None:
    # A bug, not an outage: say so, or the metrics would just stop with nothing in the log.
    if not task.cancelled() and task.exception() is not None:
        log.error("the CloudWatch metrics writer died: %r", task.exception())


def _minute(now: float) -> int:
    return int(now // WINDOW_SECONDS)
