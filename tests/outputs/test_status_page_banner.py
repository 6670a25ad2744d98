"""The status page's banner never says more than the rows below it: a failure that does not count yet is in it.

Served by the agent's real HTTP app on loopback; the assertions read the HTML it answered.
"""

from __future__ import annotations

from agent.runtime.state import AgentState
from agent.shared.reasons import Reason
from tests.support.http import IDENTITY, fetch, serve
from tests.support.results import PAIRS, failed, make_config, passed


async def banner(state: AgentState) -> str:
    async with serve(state, make_config(failure_threshold=3)) as base:
        reply = await fetch(f"{base}/")
    html = bytes(reply.body).decode()
    start = html.index('<div class="banner"')
    return html[start : html.index("</div>", start)]


def ready_state() -> AgentState:
    state = AgentState(make_config(failure_threshold=3), PAIRS)
    state.record(passed("credentials", "aws", details=IDENTITY))
    state.record(passed("db", "writer"))
    return state


async def test_ready_with_a_failure_below_the_threshold_says_so() -> None:
    state = ready_state()
    state.record(failed("db", "writer", Reason.AUTH, "pg:28P01"))
    text = await banner(state)
    assert "<h1>READY</h1>" in text
    assert "<p>ready; db (writer) failing (1 of 3 before it counts) &middot; /ready answers 200</p>" in text
    assert "every check passes" not in text
    state.record(failed("db", "writer", Reason.AUTH, "pg:28P01"))
    assert "db (writer) failing (2 of 3 before it counts)" in await banner(state)


async def test_once_it_counts_the_banner_says_the_status_and_nothing_is_pending() -> None:
    state = ready_state()
    for _ in range(3):
        state.record(failed("db", "writer", Reason.AUTH, "pg:28P01"))
    text = await banner(state)
    assert "<h1>NOT READY</h1>" in text and "Failing: db (writer): auth" in text
    assert "before it counts" not in text


async def test_a_pending_failure_beside_a_counted_one_is_listed_apart() -> None:
    state = ready_state()
    for _ in range(3):
        state.record(failed("db", "writer", Reason.NETWORK, "pg:refused"))
    state.record(failed("credentials", "aws", Reason.THROTTLED, "credentials:http_429"))
    text = await banner(state)
    assert "<h1>DEGRADED</h1>" in text and "Failing: db (writer): network" in text
    assert '<p class="pending">Not counted yet: credentials (aws) failing (1 of 3 before it counts)</p>' in text


async def test_all_passing_still_reads_every_check_passes() -> None:
    text = await banner(ready_state())
    assert "<p>every check passes &middot; /ready answers 200</p>" in text and "before it counts" not in text
