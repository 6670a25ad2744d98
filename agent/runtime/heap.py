"""Keep the cyclic garbage collector off the objects the agent holds for life, so /health never waits on it.

Once every probe has run, the agent holds some 80,000 objects that live as long as it does: its modules, pydantic's
models, botocore's service models and endpoint data, the drivers. CPython's full (generation 2) collection walks
all of them, and runs whenever enough new objects survived: measured at 100-160 ms on a busy 2-core host, during
which the event loop answers nothing (the hostile-peer suite saw /health wait that long). gc.freeze() moves every
tracked object to a permanent generation that collections skip (the `gc` module's documentation); they then walk
only what came since. Objects frozen are still freed by reference counting; only a reference cycle among them that
is already garbage would never be. No collection runs first to free those: it would stall the loop as long as the
collections this avoids, and the agent measured has about a hundred such objects at that moment, kept once.

RSS, measured by the bench (issue #16: 60 s of probing at 1 s; every feature on / PostgreSQL with a password; two
runs each): with the freeze 69.9-70.2 / 55.3-55.5 MiB, without it 69.9-70.1 / 55.4-55.6, the same within the noise;
it stays for the pauses. Tried here and not kept: malloc_trim(0) after the first round, 70.3-70.6 / 55.6-55.7 MiB
(what it returns, the next runs take again). MALLOC_ARENA_MAX=2, 69.5 / 55.4 MiB, is set in the Dockerfile instead.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterable

from agent.probes.base import ProbeResult

log = logging.getLogger(__name__)


class FreezeAfterFirstRound:
    """A scheduler observer: once each of `keys` (probe, target) has reported, gc.freeze() (once)."""

    def __init__(self, keys: Iterable[tuple[str, str]]) -> None:
        self._waiting = set(keys)
        self.frozen = 0  # objects moved out of the collector's way; 0 until then

    def observe(self, result: ProbeResult) -> None:
        if self.frozen or not self._waiting:
            return
        self._waiting.discard((result.probe, result.target))
        if not self._waiting:
            gc.freeze()
            self.frozen = gc.get_freeze_count()
            log.debug("first round done: %d long-lived objects frozen out of the garbage collector", self.frozen)
