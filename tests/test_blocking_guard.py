"""The blocking-call guard of tests/conftest.py: it fails a test that blocks the loop, even through a catch-all."""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

import pytest
from blockbuster import BlockingError

from agent.probes.base import Details
from agent.probes.runner import run_probe
from agent.shared.reasons import Failure, Reason, Scope
from tests.support.blocking import RecordedBlockingError


class SleepingProbe:
    """A probe whose run blocks the loop with time.sleep, as a careless driver call would."""

    name: ClassVar[str] = "sleepy"
    failure_scope: ClassVar[Scope | None] = None
    target = "default"
    step = "sleeping"

    async def run(self) -> Details:
        time.sleep(0.001)
        return {}

    def classify(self, exc: BaseException) -> Failure | None:
        return None

    def hint(self, failure: Failure) -> str:
        return ""


async def test_time_sleep_in_an_async_test_raises_blocking_error(blocking_calls: list[RecordedBlockingError]) -> None:
    with pytest.raises(BlockingError, match=r"time\.sleep"):
        time.sleep(0.001)
    assert [str(error) for error in blocking_calls] == ["Blocking call to time.sleep"]
    blocking_calls.clear()  # expected here: the guard would otherwise fail this test at teardown


async def test_a_blocking_call_the_probe_catch_all_swallows_is_still_recorded(
    blocking_calls: list[RecordedBlockingError],
) -> None:
    """The runner turns the BlockingError into an `unknown` result; the guard still has it and would fail the test."""
    result = await run_probe(SleepingProbe(), timeout=1.0)
    assert (result.ok, result.reason) == (False, Reason.UNKNOWN)
    assert [str(error) for error in blocking_calls] == ["Blocking call to time.sleep"]
    assert "in run\n    time.sleep(0.001)" in blocking_calls[0].where  # the report points at the blocking line
    blocking_calls.clear()


async def test_the_same_sleep_in_a_thread_is_allowed(blocking_calls: list[RecordedBlockingError]) -> None:
    """asyncio.to_thread is the fix the guard asks for: no loop runs in the worker thread."""
    await asyncio.to_thread(time.sleep, 0.001)
    assert blocking_calls == []


def test_a_sync_test_without_a_running_loop_may_block(blocking_calls: list[RecordedBlockingError]) -> None:
    time.sleep(0.001)
    assert blocking_calls == []
