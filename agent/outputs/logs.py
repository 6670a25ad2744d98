"""JSON-lines logging to stdout for CloudWatch (awslogs): every record one redacted JSON object."""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO

from agent.shared.redact import redact

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged as a field.
_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
# Libraries whose debug output would carry request and response bodies (botocore logs a GetSecretValue
# response, secret included, before the agent has seen and registered the value): capped even at debug.
_CHATTY_LOGGERS = ("botocore", "aiobotocore")
_CHATTY_LEVEL = logging.INFO

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]


class _BadRequestFilter(logging.Filter):
    """aiohttp logs a malformed request (the client's fault, already answered 4xx) at error level with a
    traceback that quotes the request's bytes: one scanner, or a TLS health check aimed at this HTTP port, would
    fill the logs with them. Keep one warning line naming the kind of error; the client's bytes stay out."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        code = getattr(exc, "code", 500)
        if type(exc).__module__ == "aiohttp.http_exceptions" and isinstance(code, int) and code < 500:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = f"{record.msg}: bad HTTP request ({type(exc).__name__}), answered {code}"
            record.exc_info, record.exc_text = None, None
            return logging.getLogger().isEnabledFor(logging.WARNING)  # the error level let it through so far
        return True


_BAD_REQUESTS = _BadRequestFilter()


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
    """Send every log record to stdout (or stream) as JSON lines at the given level (debug..error)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):  # idempotent: calling twice must not print every line twice
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    numeric = logging.getLevelNamesMapping()[level.upper()]
    root.setLevel(numeric)
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, _CHATTY_LEVEL))
    logging.getLogger("aiohttp.server").addFilter(_BAD_REQUESTS)  # a filter instance is added only once
    logging.captureWarnings(True)  # Python warnings become JSON lines too, not stray stderr text


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
