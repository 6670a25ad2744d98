"""Log and EMF lines leave the event loop through a bounded queue; a writer thread puts them on stdout.

Why: a write to stdout blocks when its reader stalls (the awslogs driver in its default `blocking` mode, a pipe
nobody drains). Done on the event loop, that froze /health and the SIGTERM handler. Here a full queue drops the
line and counts it, a stdout that is gone (EPIPE, EBADF) is said once on stderr, and shutdown waits a bounded
time for what is queued. Not logging.handlers.QueueListener: its stop() waits for its thread without a bound, and
a stalled stdout would hold SIGTERM's exit for ever. The writer uses os.write on the descriptor, not sys.stdout:
a thread blocked inside sys.stdout's buffer would make the interpreter's exit-time flush abort the process.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import queue
import threading
from collections import Counter

# What may wait for stdout, in characters (the lines are ASCII): as much again as a pipe holds. Bounded in bytes,
# not lines, because one line can be large (a state dump, an exception): this is the memory it may take.
QUEUE_BYTES = 64 * 1024
BATCH_BYTES = 64 * 1024  # one write takes what is queued, up to a pipe's default capacity
FLUSH_SECONDS = 0.5  # at shutdown, how long stdout may take to accept what is queued

# Why lines were dropped: the `reason` label of health_agent_log_lines_dropped_total.
QUEUE_FULL, WRITE_FAILED, FORMAT_FAILED = "queue_full", "write_failed", "format_failed"
DROP_REASONS = (QUEUE_FULL, WRITE_FAILED, FORMAT_FAILED)

_notices = logging.getLogger("agent.logs")


class LineWriter:
    """A daemon thread writing queued text to a file descriptor; put() never blocks (a full queue drops)."""

    def __init__(
        self, fd: int = 1, stderr_fd: int = 2, max_bytes: int = QUEUE_BYTES, missing: OSError | None = None
    ) -> None:
        self._fd = fd
        self._missing = missing  # fd was closed when the process started (see claim_stdout): never written
        self._stderr_fd = stderr_fd
        self._queue: queue.Queue[str] = queue.Queue()
        self._max_bytes = max_bytes
        self._queued_bytes = 0  # under _lock: put() may be called from more than one thread
        self._lock = threading.Lock()
        self._dropped: Counter[str] = Counter()
        self._said_write_error = False
        self._reported_full = 0  # queue_full drops already announced on stdout
        self.notice_formatter: logging.Formatter = logging.Formatter("%(message)s")
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def put(self, text: str) -> bool:
        """Queue text (one or more lines, each ending in a newline); False if it did not fit (counted)."""
        with self._lock:
            fits = self._queued_bytes + len(text) <= self._max_bytes
            if fits:
                self._queued_bytes += len(text)
            else:
                self._dropped[QUEUE_FULL] += _lines(text)
        if fits:
            self._queue.put_nowait(text)  # unbounded: the byte count above is the bound
        return fits

    def drop(self, reason: str, lines: int = 1) -> None:
        """Count lines that will never be written, by reason (one of DROP_REASONS)."""
        with self._lock:
            self._dropped[reason] += lines

    def dropped(self) -> dict[str, int]:
        """Lines dropped since start, by reason (every reason present, from 0)."""
        with self._lock:
            return {reason: self._dropped[reason] for reason in DROP_REASONS}

    def flush(self, timeout: float = FLUSH_SECONDS) -> bool:
        """Wait up to `timeout` seconds for every queued line to be written; False if stdout did not take them."""
        done = self._queue.all_tasks_done
        with done:
            return done.wait_for(lambda: self._queue.unfinished_tasks == 0, timeout)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            size = len(batch[0])
            while size < BATCH_BYTES:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
                size += len(batch[-1])
            self._write(self._full_notice() + "".join(batch))
            with self._lock:  # only now: a batch stuck on a stalled stdout still counts against the bound
                self._queued_bytes -= size
            for _ in batch:
                self._queue.task_done()

    def _write(self, text: str) -> None:
        data = text.encode("utf-8", "backslashreplace")
        if self._missing is not None:
            self.drop(WRITE_FAILED, data.count(b"\n") or 1)
            self._say_once(self._missing)
            return
        try:
            while data:
                data = data[os.write(self._fd, data) :]
        except OSError as exc:
            self.drop(WRITE_FAILED, data.count(b"\n") or 1)
            self._say_once(exc)

    def _full_notice(self) -> str:
        """After lines were dropped for a full queue, one line saying how many, ahead of the next ones written."""
        full = self.dropped()[QUEUE_FULL]
        if full == self._reported_full:
            return ""
        missed, self._reported_full = full - self._reported_full, full
        message = f"{missed} log lines dropped: stdout was not taking them (health_agent_log_lines_dropped_total)"
        return self.notice(logging.WARNING, message) + "\n"

    def _say_once(self, exc: OSError) -> None:
        """stdout failed (EPIPE: its reader is gone; EBADF: it is closed): say so once, on stderr."""
        if self._said_write_error:
            return
        self._said_write_error = True
        name = os.strerror(exc.errno) if exc.errno else str(exc)
        code = f"{_errno_name(exc.errno)}: " if exc.errno else ""
        message = (
            f"cannot write logs to stdout ({code}{name}): log lines are dropped from now on and counted in"
            " health_agent_log_lines_dropped_total; this is said once"
        )
        with contextlib.suppress(OSError):  # stderr gone too: nothing is left to tell
            os.write(self._stderr_fd, (self.notice(logging.ERROR, message) + "\n").encode())

    def notice(self, level: int, message: str) -> str:
        """A line of the agent's own about its logging, formatted like every other (without a newline)."""
        record = _notices.makeRecord(_notices.name, level, __file__, 0, message, (), None)
        return self.notice_formatter.format(record)


class QueueingHandler(logging.Handler):
    """Formats a record on the caller's thread (its arguments are read now, as any handler does) and queues the
    line for the writer: emit() never blocks and never prints a `--- Logging error ---` traceback."""

    def __init__(self, writer: LineWriter) -> None:
        super().__init__()
        self.writer = writer
        self._said_format_error = False

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the formatted record (dropped and counted when the queue is full)."""
        try:
            line = self.format(record)
        except Exception as exc:  # noqa: BLE001 - a bad log call (wrong arguments) is counted, said once, never raised
            self._format_failed(record, exc)
            return
        self.writer.put(line + "\n")

    def _format_failed(self, record: logging.LogRecord, exc: Exception) -> None:
        self.writer.drop(FORMAT_FAILED)
        if not self._said_format_error:
            self._said_format_error = True
            message = (
                f"a log record of {record.name} could not be formatted ({type(exc).__name__}); such lines are dropped"
            )
            self.writer.put(self.writer.notice(logging.ERROR, message) + "\n")


_WRITER: LineWriter | None = None
_STDOUT_MISSING: OSError | None = None


def claim_stdout() -> None:
    """Call first thing in a process that logs to stdout. If descriptor 1 was closed when it started, hold it open
    on /dev/null: otherwise the next socket opened (the event loop's, a database connection) would get number 1 and
    receive the log lines. The writer then counts every line as dropped and says so once, on stderr."""
    global _STDOUT_MISSING
    try:
        os.fstat(1)
    except OSError as exc:
        _STDOUT_MISSING = exc
        null = os.open(os.devnull, os.O_WRONLY)
        if null != 1:
            os.dup2(null, 1)
            os.close(null)


def stdout_writer() -> LineWriter:
    """The process's one writer to stdout (fd 1), started on first use: log lines and EMF lines share it."""
    global _WRITER
    if _WRITER is None:
        _WRITER = LineWriter(missing=_STDOUT_MISSING)
    return _WRITER


def running_writer() -> LineWriter | None:
    """The stdout writer if something started it (for /metrics and shutdown), else None."""
    return _WRITER


def _lines(text: str) -> int:
    return text.count("\n") or 1


def _errno_name(number: int) -> str:
    return errno.errorcode.get(number, str(number))
