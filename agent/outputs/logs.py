"""JSON-lines logging to stdout for CloudWatch (awslogs): every record one redacted JSON object."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import IO

from agent.outputs.log_queue import FLUSH_SECONDS, QueueingHandler, running_writer, stdout_writer
from agent.shared.redact import redact

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged as a field.
_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
# Libraries whose debug output would carry request and response bodies (botocore logs a GetSecretValue
# response, secret included, before the agent has seen and registered the value): capped even at debug. Below
# debug, their INFO lines ("Found endpoint for sts via: environment_global", "Found credentials in ...") only
# repeat what the agent's own lines say, so they start at WARNING.
_CHATTY_LOGGERS = ("botocore", "aiobotocore")
_CHATTY_LEVEL = logging.INFO

# Malformed requests: this many lines at once, then one per this many seconds.
BAD_REQUEST_BURST = 5
BAD_REQUEST_EVERY = 10.0

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]


class RateLimit:
    """A token bucket: up to `burst` events at once, then one per `every` seconds; counts the events it refused."""

    def __init__(self, burst: int, every: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._burst, self._every, self._clock = burst, every, clock
        self._tokens = float(burst)
        self._last = clock()
        self.refused = 0  # since start
        self._refused_since_allowed = 0

    def allow(self) -> tuple[bool, int]:
        """(whether this event may be logged, how many were refused since the last allowed one)."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last) / self._every)
        self._last = now
        if self._tokens < 1:
            self.refused += 1
            self._refused_since_allowed += 1
            return False, 0
        self._tokens -= 1
        skipped, self._refused_since_allowed = self._refused_since_allowed, 0
        return True, skipped


class BadRequestFilter(logging.Filter):
    """aiohttp logs a malformed request (the client's fault, already answered 4xx) at error level with a
    traceback that quotes the request's bytes: one scanner, or a TLS health check aimed at this HTTP port, would
    fill the logs with them. Keep one warning line naming the kind of error, the client's bytes left out, and at
    most BAD_REQUEST_BURST of them at once, then one per BAD_REQUEST_EVERY seconds saying how many were left out
    (all counted in health_agent_log_lines_suppressed_total)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.limit = RateLimit(BAD_REQUEST_BURST, BAD_REQUEST_EVERY, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        code = getattr(exc, "code", 500)
        if type(exc).__module__ == "aiohttp.http_exceptions" and isinstance(code, int) and code < 500:
            allowed, skipped = self.limit.allow()
            if not allowed:
                return False
            level = min(record.levelno, logging.WARNING)
            record.levelno, record.levelname = level, logging.getLevelName(level)
            record.msg = f"{record.msg}: bad HTTP request ({type(exc).__name__}), answered {code}"
            if skipped:
                record.msg += f"; {skipped} more were not logged (at most one line per {BAD_REQUEST_EVERY:g} s)"
            record.exc_info, record.exc_text = None, None
            return logging.getLogger().isEnabledFor(level)  # the error level let it through so far
        return True


_BAD_REQUESTS = BadRequestFilter()


# A traceback ends with what matters: keep more of it than of a message (redact() cuts a text at its end).
_TRACE_LIMIT = 16 * 1024


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and the record's extras, all redacted."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as a single line of JSON."""
        line: dict[str, JsonValue] = {
            "time": iso_utc(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                line[key] = _clean(value)
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info), limit=_TRACE_LIMIT)
        if record.stack_info:
            line["stack"] = redact(self.formatStack(record.stack_info), limit=_TRACE_LIMIT)
        # ensure_ascii keeps each line plain ASCII whatever a driver's message contains.
        return json.dumps(line, ensure_ascii=True, separators=(",", ":"))


def setup_logging(level: str = "info", stream: IO[str] | None = None) -> None:
    """Send every log record as JSON lines at the given level (debug..error): to stdout through the writer thread
    of agent.outputs.log_queue (never blocking the caller), or straight to `stream` (`check` logs to stderr)."""
    formatter = JsonFormatter()
    handler: logging.Handler
    if stream is None:
        writer = stdout_writer()
        writer.notice_formatter = formatter
        handler = QueueingHandler(writer)
    else:
        handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):  # idempotent: calling twice must not print every line twice
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    numeric = logging.getLevelNamesMapping()[level.upper()]
    root.setLevel(numeric)
    chatty = _CHATTY_LEVEL if numeric <= logging.DEBUG else logging.WARNING
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, chatty))
    logging.getLogger("aiohttp.server").addFilter(_BAD_REQUESTS)  # a filter instance is added only once
    logging.captureWarnings(True)  # Python warnings become JSON lines too, not stray stderr text


def flush_logs(timeout: float = FLUSH_SECONDS) -> bool:
    """At shutdown: wait up to `timeout` seconds for queued lines to reach stdout; False if it did not take them."""
    writer = running_writer()
    return writer.flush(timeout) if writer is not None else True


def bad_request_lines_suppressed() -> int:
    """Log lines about malformed HTTP requests left out by the rate limit, since start."""
    return _BAD_REQUESTS.limit.refused


def iso_utc(moment: float | datetime, timespec: str = "milliseconds") -> str:
    """Unix time (or an aware datetime) as ISO 8601 in UTC with a Z: how every time the outputs write looks (logs,
    EMF, /status, the status page). `timespec` as in datetime.isoformat ("auto" shows microseconds if any)."""
    when = moment if isinstance(moment, datetime) else datetime.fromtimestamp(moment, UTC)
    return when.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def _clean(value: object) -> JsonValue:
    """A JSON-safe, redacted copy of an extra's value."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN and Infinity are not JSON
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v) for v in value]
    return redact(str(value))


def quiet_libraries(level: str) -> None:
    """For `check`: botocore's and aiobotocore's own lines below ERROR ("Found credentials in environment variables",
    a failed refresh with its traceback) only repeat on stderr what the checklist says with a reason and a hint.
    At `debug` they stay, capped as setup_logging caps them."""
    if level != "debug":
        for name in _CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
