"""agent/runtime/heap.py: once every probe has reported, the long-lived objects leave the collector's way, once."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator

import pytest

from agent.runtime.heap import FreezeAfterFirstRound
from tests.support.results import PAIRS, failed, passed


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """This test process's own heap is given back to the collector afterwards."""
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()


def test_nothing_is_frozen_until_every_probe_has_reported(unfrozen: None) -> None:
    heap = FreezeAfterFirstRound(PAIRS)
    heap.observe(passed("db", "writer"))
    heap.observe(failed("db", "writer"))  # a second result of the same probe is not another probe's
    assert (heap.frozen, gc.get_freeze_count()) == (0, 0)
    heap.observe(failed("credentials", "aws"))  # a failure counts: the probe ran, its objects exist
    assert heap.frozen > 0 and gc.get_freeze_count() > 0


def test_it_freezes_once_and_a_full_collection_then_skips_the_frozen(unfrozen: None) -> None:
    heap = FreezeAfterFirstRound(PAIRS)
    for pair in PAIRS:
        heap.observe(passed(*pair))
    frozen = heap.frozen
    keep = [[object()] for _ in range(1000)]  # new objects: the collector still sees them, they are not frozen
    for pair in PAIRS:
        heap.observe(passed(*pair))
    assert heap.frozen == frozen  # not frozen again: the new objects stay with the collector
    assert gc.get_freeze_count() <= frozen
    started = time.perf_counter()
    gc.collect()
    skipping = time.perf_counter() - started
    gc.unfreeze()
    started = time.perf_counter()
    gc.collect()
    assert skipping < time.perf_counter() - started, "a collection with the heap frozen walks less"
    assert keep
