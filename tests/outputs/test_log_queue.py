"""The stdout writer behind every log and EMF line, on real pipes: never blocks its caller, drops and counts when
stdout stalls, says once that stdout is gone, flushes within a bound; and the malformed-request rate limit."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import threading
import time
from collections.abc import Iterator

import pytest

from agent.outputs.log_queue import FORMAT_FAILED, QUEUE_FULL, WRITE_FAILED, LineWriter, QueueingHandler
from agent.outputs.logs import BAD_REQUEST_BURST, BAD_REQUEST_EVERY, BadRequestFilter, JsonFormatter, RateLimit


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    """(read end, write end) of a real pipe; whichever end a test has not closed is closed after it."""
    read_end, write_end = os.pipe()
    yield read_end, write_end
    for fd in (read_end, write_end):
        with contextlib.suppress(OSError):
            os.close(fd)


def read_available(fd: int, until: bytes = b"", timeout: float = 5.0) -> bytes:
    """Read a pipe until `until` has been seen (or, with no `until`, until it is empty for 0.2 s)."""
    os.set_blocking(fd, False)
    data, deadline, quiet_since = b"", time.monotonic() + timeout, time.monotonic()
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            chunk = b""
        if chunk:
            data, quiet_since = data + chunk, time.monotonic()
        elif (until and until in data) or (not until and time.monotonic() - quiet_since > 0.2):
            break
        else:
            time.sleep(0.01)
    return data


def fill(write_end: int) -> int:
    """Fill a pipe nobody reads, as a stalled log driver leaves it; the number of bytes it took."""
    os.set_blocking(write_end, False)
    written = 0
    try:
        while True:
            written += os.write(write_end, b"f" * 4096)
    except BlockingIOError:
        pass
    os.set_blocking(write_end, True)
    return written


def writer_on(write_end: int, stderr_end: int | None = None, max_bytes: int = 20_000) -> LineWriter:
    writer = LineWriter(write_end, stderr_end if stderr_end is not None else write_end, max_bytes)
    writer.notice_formatter = JsonFormatter()
    return writer


def test_lines_arrive_whole_and_in_order(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    writer = writer_on(write_end)
    for i in range(50):
        assert writer.put(f"line {i}\n")
    assert writer.flush(2.0)
    assert read_available(read_end).decode().splitlines() == [f"line {i}" for i in range(50)]
    assert writer.dropped() == {QUEUE_FULL: 0, WRITE_FAILED: 0, FORMAT_FAILED: 0}


def test_a_stalled_stdout_never_blocks_the_caller_and_drops_are_counted_then_announced(pipe: tuple[int, int]) -> None:
    """Nobody reads the pipe: once it and the queue are full, put() returns at once, False, and counts the line;
    flush() gives up at its bound. When the reader comes back, the next line written says how many were lost."""
    read_end, write_end = pipe
    filler = fill(write_end)
    writer = writer_on(write_end, max_bytes=100 * 200)
    line = "x" * 199 + "\n"
    accepted, slowest = [], 0.0
    for _ in range(2000):  # 400 KB
        started = time.monotonic()
        accepted.append(writer.put(line))
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.0001)  # let the writer thread take lines (and block on the full pipe)
    assert slowest < 0.1, f"a put() took {slowest:.3f}s against a stalled pipe"
    refused = accepted.count(False)
    # 100 lines fit, the writer's batch stuck on the pipe included.
    assert refused == 2000 - 100 and writer.dropped()[QUEUE_FULL] == refused
    flushing = time.monotonic()
    assert writer.flush(0.3) is False
    assert 0.25 <= time.monotonic() - flushing < 2.0
    data = read_available(read_end, until=b"log lines dropped")[filler:]
    notices = [json.loads(x) for x in data.decode().splitlines() if x.startswith("{")]
    assert len(notices) == 1 and notices[0]["level"] == "warning" and notices[0]["logger"] == "agent.logs"
    assert notices[0]["message"].startswith(f"{refused} log lines dropped: stdout was not taking them")
    assert data.count(line.encode()) == 2000 - refused
    assert writer.flush(2.0)


def test_a_closed_stdout_is_said_once_on_stderr_and_every_line_is_counted(pipe: tuple[int, int]) -> None:
    """The reader is gone (EPIPE): one JSON line on stderr, no `--- Logging error ---`, every line counted."""
    read_end, write_end = pipe
    err_read, err_write = os.pipe()
    try:
        os.close(read_end)
        writer = writer_on(write_end, err_write)
        for i in range(30):
            writer.put(f"line {i}\n")
            if i % 10 == 0:
                writer.flush(2.0)  # several separate writes, each failing
        assert writer.flush(2.0)
        said = read_available(err_read).decode()
    finally:
        os.close(err_read)
        os.close(err_write)
    assert writer.dropped()[WRITE_FAILED] == 30
    lines = said.splitlines()
    assert len(lines) == 1, said
    notice = json.loads(lines[0])
    assert notice["level"] == "error" and "cannot write logs to stdout (EPIPE: Broken pipe)" in notice["message"]
    assert "Logging error" not in said and "Traceback" not in said


def test_a_bad_log_call_is_counted_and_said_once_never_raised(pipe: tuple[int, int]) -> None:
    """A record whose arguments do not fit its message: no exception, no traceback, one notice, counted."""
    read_end, write_end = pipe
    writer = writer_on(write_end)
    handler = QueueingHandler(writer)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("agent.test.badcall")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for _ in range(3):
            logger.error("two values %s %s", "only one")
        logger.error("fine")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    assert writer.flush(2.0)
    lines = [json.loads(x) for x in read_available(read_end).decode().splitlines()]
    assert [line["message"] for line in lines][-1] == "fine"
    assert len(lines) == 2 and "could not be formatted (TypeError)" in lines[0]["message"]
    assert writer.dropped()[FORMAT_FAILED] == 3


def test_put_from_many_threads_counts_every_line(pipe: tuple[int, int]) -> None:
    """Lines written plus lines dropped is every line put, with four threads putting at once."""
    read_end, write_end = pipe
    writer = writer_on(write_end, max_bytes=50 * 100)
    results: list[bool] = []

    def put_many() -> None:
        results.extend(writer.put("y" * 99 + "\n") for _ in range(1000))

    threads = [threading.Thread(target=put_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    data = read_available(read_end, until=b"log lines dropped")
    writer.flush(2.0)
    data += read_available(read_end)
    assert data.count(b"y" * 99 + b"\n") + writer.dropped()[QUEUE_FULL] == 4000 == len(results)


def test_rate_limit_allows_a_burst_then_one_per_period_and_counts_the_rest() -> None:
    now = [0.0]
    limit = RateLimit(3, 10.0, clock=lambda: now[0])
    assert [limit.allow() for _ in range(5)] == [(True, 0)] * 3 + [(False, 0)] * 2
    now[0] = 9.0
    assert limit.allow() == (False, 0)
    now[0] = 10.5
    assert limit.allow() == (True, 3)
    assert limit.refused == 3


def bad_request_record(exc: Exception) -> logging.LogRecord:
    """What aiohttp's RequestHandler.handle_error logs for a malformed request (logger.exception)."""
    record = logging.LogRecord(
        "aiohttp.server", logging.ERROR, __file__, 1, "Error handling request from %s", ("1.2.3.4",), None
    )
    record.exc_info = (type(exc), exc, None)
    return record


def test_malformed_request_lines_are_rate_limited_and_the_next_one_says_how_many_were_left_out() -> None:
    from aiohttp.http_exceptions import BadStatusLine

    now = [100.0]
    filtering = BadRequestFilter(clock=lambda: now[0])
    stream = io.StringIO()
    passed = [bad_request_record(BadStatusLine("GET /secret-bytes")) for _ in range(BAD_REQUEST_BURST + 40)]
    kept = [r for r in passed if filtering.filter(r)]
    assert len(kept) == BAD_REQUEST_BURST and filtering.limit.refused == 40
    now[0] += BAD_REQUEST_EVERY
    later = bad_request_record(BadStatusLine("GET /secret-bytes"))
    assert filtering.filter(later)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.handle(later)
    line = json.loads(stream.getvalue())
    assert line["level"] == "warning" and "exception" not in line and "secret-bytes" not in stream.getvalue()
    assert line["message"].endswith(
        f"bad HTTP request (BadStatusLine), answered 400; 40 more were not logged (at most one line per"
        f" {BAD_REQUEST_EVERY:g} s)"
    )


def test_other_errors_of_the_server_are_not_rate_limited() -> None:
    """A handler's own exception (a bug, answered 500) is never suppressed or rewritten."""
    filtering = BadRequestFilter(clock=lambda: 0.0)
    records = [bad_request_record(RuntimeError("bug")) for _ in range(BAD_REQUEST_BURST * 3)]
    assert all(filtering.filter(r) for r in records)
    assert all(r.levelno == logging.ERROR and r.exc_info for r in records)
    assert filtering.limit.refused == 0
