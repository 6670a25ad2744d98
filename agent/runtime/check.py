"""`check`: every configured probe once, in dependency order, each failure classified and explained."""

from __future__ import annotations

from contextlib import AsyncExitStack

from agent.config.models import AgentConfig
from agent.probes.base import ProbeResult
from agent.runtime.plan import Mode, Plan, build_plan
from agent.runtime.rounds import close_probes, run_round


async def run_check(config: AgentConfig) -> list[ProbeResult]:
    """Run the whole diagnosis once; results come back in plan order."""
    async with AsyncExitStack() as stack:
        aws = None
        if config.uses_aws:
            from agent.aws.clients import AwsClients

            aws = await stack.enter_async_context(AwsClients(timeout_seconds=config.timeout_seconds))
        plan = build_plan(config, aws, Mode.CHECK)
        try:
            return await _run(plan, config.timeout_seconds)
        finally:
            await close_probes(plan)


async def _run(plan: Plan, timeout: float) -> list[ProbeResult]:
    latest = await run_round(plan, timeout, Mode.CHECK)
    return [latest[p.key] for p in plan.probes]
