"""JSON-lines logging (redacted, one object per line) and the one-line-per-change state log."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from agent.outputs.events import ChangeLog
from agent.outputs.logs import JsonFormatter, setup_logging
from agent.probes.base import ProbeResult
from agent.runtime.state import AgentState
from agent.shared.reasons import Reason
from tests.support.results import PAIRS, failed, make_config, passed

STATE_LOGGER = "agent.state"


class Observed:
    """An AgentState with the change log observing it, as the scheduler wires them in `serve`."""

    def __init__(self, state: AgentState) -> None:
        self.state = state
        self.changes = ChangeLog(state)

    def record(self, result: ProbeResult) -> None:
        self.state.record(result)
        self.changes.observe(result)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the root logger (and the loggers setup_logging touches) back as they were."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    botocore_level = logging.getLogger("botocore").level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("botocore").setLevel(botocore_level)
    logging.captureWarnings(False)


def format_record(message: str, *args: object, exc: BaseException | None = None, **extra: object) -> dict[str, object]:
    """What JsonFormatter makes of one record, parsed back."""
    record = logging.LogRecord("agent.test", logging.WARNING, __file__, 1, message, args, None)
    if exc is not None:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    record.__dict__.update(extra)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed: dict[str, object] = json.loads(line)
    return parsed


def test_a_record_is_one_json_object_with_the_standard_fields() -> None:
    """time (ISO 8601 UTC), level, logger, message, plus every extra as a field."""
    line = format_record("probe %s failed", "db", probe="db", target="writer", reason=Reason.AUTH, attempts=3)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(line["time"]))
    assert {k: line[k] for k in ("level", "logger", "message")} == {
        "level": "warning",
        "logger": "agent.test",
        "message": "probe db failed",
    }
    assert (line["probe"], line["target"], line["reason"], line["attempts"]) == ("db", "writer", "auth", 3)


def test_messages_extras_and_tracebacks_are_redacted() -> None:
    """A DSN password or a password=... pair never reaches the line, wherever it appears."""
    try:
        raise ValueError("connect to postgresql://app:Sup3rSecret@db/orders failed")
    except ValueError as exc:
        line = format_record(
            "dsn postgresql://app:Sup3rSecret@db/orders",
            exc=exc,
            error="password=Sup3rSecret rejected",
            failing=[{"hint": "token: Sup3rSecret"}],
            odd=object(),
        )
    text = json.dumps(line)
    assert "Sup3rSecret" not in text
    assert "[REDACTED]" in str(line["message"]) and "[REDACTED]" in str(line["exception"])
    assert line["failing"] == [{"hint": "token: [REDACTED]"}]


def test_setup_logging_writes_json_lines_once_at_the_level(restore_logging: None) -> None:
    """setup_logging is idempotent, honours the level, and caps botocore at info even at debug."""
    stream = io.StringIO()
    setup_logging("info", stream)
    setup_logging("info", stream)
    logging.getLogger("agent.x").info("hello", extra={"probe": "db"})
    logging.getLogger("agent.x").debug("not shown")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["probe"] == "db"
    assert logging.getLogger("botocore").getEffectiveLevel() == logging.WARNING  # its INFO lines repeat the agent's
    setup_logging("debug", stream)
    assert logging.getLogger("botocore").getEffectiveLevel() == logging.INFO  # never DEBUG: bodies, secrets


def change_log(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Records at info or above from the state, cleared after reading."""
    records = [r for r in caplog.records if r.name == STATE_LOGGER and r.levelno >= logging.INFO]
    caplog.clear()
    return records


def test_one_line_per_change_and_none_per_routine_run(caplog: pytest.LogCaptureFixture) -> None:
    """Failing, a changed failure, recovery and status changes log once; repeats log nothing at info."""
    caplog.set_level(logging.DEBUG, logger=STATE_LOGGER)
    state = Observed(AgentState(make_config(failure_threshold=2), PAIRS))
    state.record(passed("credentials", "aws"))
    assert change_log(caplog) == []
    state.record(passed())
    assert [r.getMessage() for r in change_log(caplog)] == ["status starting -> ready"]
    state.record(passed())
    assert change_log(caplog) == []

    state.record(failed(reason=Reason.NETWORK, code="db:refused"))
    (failure,) = change_log(caplog)
    assert failure.levelno == logging.WARNING
    assert {k: failure.__dict__[k] for k in ("probe", "target", "reason", "code", "error", "hint")} == {
        "probe": "db",
        "target": "writer",
        "reason": "network",
        "code": "db:refused",
        "error": "login refused",
        "hint": "check the password",
    }
    state.record(failed(reason=Reason.NETWORK, code="db:refused"))
    (status,) = change_log(caplog)
    assert status.getMessage() == "status ready -> degraded"
    assert status.__dict__["failing"] == [{"probe": "db", "target": "writer", "reason": "network", "scope": "shared"}]
    state.record(failed(reason=Reason.NETWORK, code="db:refused"))
    assert change_log(caplog) == []

    state.record(failed(reason=Reason.AUTH, code="db:auth"))
    assert [r.getMessage() for r in change_log(caplog)] == [
        "db (writer) failed: auth db:auth: login refused",
        "status degraded -> not_ready",
    ]
    state.record(passed())
    assert [r.getMessage() for r in change_log(caplog)] == [
        "db (writer) recovered",
        "status not_ready -> ready",
    ]


def test_change_lines_are_json_end_to_end(restore_logging: None) -> None:
    """Through setup_logging, a failing probe produces one JSON line with its structured fields."""
    stream = io.StringIO()
    setup_logging("info", stream)
    state = Observed(AgentState(make_config(), PAIRS))
    state.record(failed("credentials", "aws", reason=Reason.CONFIG, code="credentials:none"))
    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert (line["level"], line["logger"], line["probe"], line["reason"], line["code"]) == (
        "warning",
        STATE_LOGGER,
        "credentials",
        "config",
        "credentials:none",
    )


def test_a_result_for_a_new_pair_does_not_flap_the_status(caplog: pytest.LogCaptureFixture) -> None:
    """A passing result for a pair nobody announced keeps a ready agent ready, with no status lines."""
    caplog.set_level(logging.INFO, logger=STATE_LOGGER)
    state = Observed(AgentState(make_config(), [("db", "writer")]))
    state.record(passed())
    caplog.clear()
    state.record(passed("db", "reader"))
    assert change_log(caplog) == []
