"""The shutdown's one deadline: steps share it, what outlasts it is cancelled (aborted), and nothing waits past
the deadline plus the abort allowance, not even a close that ignores its cancellation."""

from __future__ import annotations

import asyncio
import logging

import pytest

from agent.runtime.drain import Drain

SECONDS, ABORT = 0.3, 0.2


async def _hangs(aborted: list[str], name: str) -> None:
    """A polite close that never gets an answer; cancelled, it drops its socket (here: says so)."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        aborted.append(name)
        raise


async def test_hung_closes_run_side_by_side_and_are_aborted_at_the_deadline() -> None:
    """40 closes that hang take the deadline once, not 40 times; each is aborted."""
    drain = Drain(SECONDS, ABORT)
    aborted: list[str] = []
    loop = asyncio.get_running_loop()
    started = loop.time()
    tasks = [asyncio.create_task(_hangs(aborted, f"t{i}")) for i in range(40)]
    await drain.settle(tasks, "kept connections")
    took = loop.time() - started
    assert SECONDS - 0.05 <= took < SECONDS + ABORT
    assert sorted(aborted) == sorted(f"t{i}" for i in range(40))
    assert all(task.cancelled() for task in tasks)


async def test_every_step_shares_one_deadline() -> None:
    """Three hanging steps one after the other end by the one deadline (plus the abort allowance), not by three."""
    drain = Drain(SECONDS, ABORT)
    aborted: list[str] = []
    loop = asyncio.get_running_loop()
    started = loop.time()
    for name in ("loops", "connections", "http"):
        await drain.step(name, lambda name=name: _hangs(aborted, name))  # type: ignore[misc]
    assert loop.time() - started < SECONDS + ABORT + 0.1
    assert aborted == ["loops", "connections", "http"]


async def test_a_close_that_ignores_its_cancellation_is_left_behind_and_said(caplog: pytest.LogCaptureFixture) -> None:
    """Exiting wins over a close that swallows CancelledError: the drain returns at the deadline plus the abort
    allowance and logs it."""
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # the bug this guards against: a close that will not be stopped

    drain = Drain(SECONDS, ABORT)
    loop = asyncio.get_running_loop()
    started = loop.time()
    task = asyncio.create_task(stubborn())
    with caplog.at_level(logging.WARNING, logger="agent.runtime.drain"):
        await drain.settle([task], "kept connections")
    assert loop.time() - started < SECONDS + ABORT + 0.1
    assert "1 kept connections still running after they were aborted" in caplog.text
    release.set()
    await task


async def test_fast_closes_do_not_wait_for_the_deadline_and_failures_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fails() -> None:
        raise ConnectionResetError("peer went away")

    drain = Drain(5.0, ABORT)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with caplog.at_level(logging.WARNING, logger="agent.runtime.drain"):
        await drain.step("closing the AWS clients", fails)
        await drain.step("stopping the HTTP server", lambda: asyncio.sleep(0))
    assert loop.time() - started < 0.5
    assert "shutdown: closing the AWS clients failed: ConnectionResetError('peer went away')" in caplog.text
