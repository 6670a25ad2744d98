"""Where the agent's memory goes: RSS after each step of the real `serve`, in a process started like the agent.

`python -m bench.rss_steps --out FILE [--config YAML] [--seconds 60]`, with the agent's AGENT_*/AWS_* environment
(the footprint phase runs it with the every-feature configuration against the bench's world). It imports what
`serve` imports, one group at a time, loads the configuration, then runs agent.app.serve() itself; hooks on the
agent's own classes take a reading when the AWS session exists, after botocore's endpoint data and service models
are loaded (into that session: the clients then find them in its loader's cache, as they would have loaded them),
when each client opens, and when the first round of probes is done. After `--seconds` of probing come two readings
that change nothing the agent relies on: what glibc gives back on malloc_trim(0) (the allocator's free memory),
then what clearing the session loader's cache frees. Then SIGTERM ends serve() as it would end the agent.
FILE gets one JSON list of [step, MiB]; stdout is the agent's log, as in production.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

# Nothing else at the top: asyncio and json would land in the interpreter's baseline.

STEPS = (
    ("aiohttp (HTTP server, asyncio, ssl)", ("aiohttp", "aiohttp.web")),
    ("pydantic, pydantic-settings, PyYAML (config)", ("pydantic", "pydantic_settings", "yaml")),
    ("prometheus_client", ("prometheus_client",)),
    ("the agent's own modules", ("agent.app", "agent.config.load", "agent.runtime.check")),
    ("asyncpg and the PostgreSQL probe", ("asyncpg", "agent.probes.drivers.pg", "agent.probes.db")),
    ("aiobotocore/botocore import", ("aiobotocore.session", "agent.aws.clients", "agent.probes.credentials")),
)
MODELS = ("sts", "secretsmanager")  # the every-feature configuration's clients


def rss_mib() -> float:
    """This process's resident memory now."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class Steps:
    """The readings so far, in order."""

    def __init__(self) -> None:
        self.taken: list[tuple[str, float]] = [("Python interpreter", rss_mib())]

    def take(self, label: str) -> None:
        self.taken.append((label, rss_mib()))


def _hook_aws(steps: Steps) -> None:
    """Readings inside AwsClients: the session, botocore's endpoint data, the models, each client's first open."""
    from agent.aws.clients import AwsClients

    enter, open_client = AwsClients.__aenter__, AwsClients._open
    opened: set[str] = set()

    async def measured_enter(self: AwsClients) -> AwsClients:
        entered = await enter(self)
        steps.take("AWS session and credential chain")
        session = self._session
        session._get_internal_component("endpoint_resolver")  # the first client's load (agent/aws/endpoint_data.py)
        steps.take("botocore's endpoint data (endpoints.json, the services the agent calls)")
        loader = session.get_component("data_loader")
        for name in ("partitions", "_retry", "sdk-default-configuration"):
            loader.load_data(name)
        for service in MODELS:
            for kind in ("service-2", "endpoint-rule-set-1"):
                loader.load_service_model(service, kind)
        steps.take(f"service models ({', '.join(MODELS)}: API and endpoint rules; partitions, retry data)")
        return entered

    async def measured_open(self: AwsClients, service: str, region: str | None, credentials: Any) -> Any:
        client = await open_client(self, service, region, credentials)
        if service not in opened:
            opened.add(service)
            steps.take(f"first {service} client")
        return client

    AwsClients.__aenter__ = measured_enter  # type: ignore[method-assign,assignment]
    AwsClients._open = measured_open  # type: ignore[method-assign]


def _hook_first_round(steps: Steps, done: Any) -> None:
    """A reading when every probe has reported once (the moment the agent calls gc.freeze())."""
    from agent.runtime.heap import FreezeAfterFirstRound

    observe = FreezeAfterFirstRound.observe

    def measured(self: FreezeAfterFirstRound, result: Any) -> None:
        was = self.frozen
        observe(self, result)
        if self.frozen and not was:
            steps.take("first round of probes (logins, STS, the secret, EMF) and the HTTP server")
            done.set()

    FreezeAfterFirstRound.observe = measured  # type: ignore[method-assign]


async def _probe_then_stop(steps: Steps, done: Any, seconds: float) -> None:
    import asyncio
    import gc
    import os
    import signal

    await asyncio.wait_for(done.wait(), timeout=60)
    await asyncio.sleep(seconds)
    steps.take(f"after {seconds:g} s of probing")
    _trim()
    steps.take("the allocator: after malloc_trim(0) (free memory glibc kept)")
    _clear_loader_caches()
    gc.collect()
    _trim()
    steps.take("the loaders' caches: after clearing them, collecting and trimming")
    os.kill(os.getpid(), signal.SIGTERM)


def _trim() -> None:
    import ctypes

    ctypes.CDLL("libc.so.6").malloc_trim(0)


def _clear_loader_caches() -> None:
    """Empty the cache of every botocore Loader alive (each session has one); clients hold what they use."""
    import gc

    from botocore.loaders import Loader

    for loader in (o for o in gc.get_objects() if isinstance(o, Loader)):
        loader._cache.clear()


async def _serve(config: Any, steps: Steps, seconds: float) -> int:
    import asyncio

    from agent.app import serve

    done = asyncio.Event()
    _hook_first_round(steps, done)
    watcher = asyncio.create_task(_probe_then_stop(steps, done, seconds))
    code = await serve(config)
    await watcher
    return code


def main(argv: list[str] | None = None) -> int:
    """Measure every step and write them as JSON to --out."""
    steps = Steps()
    for label, modules in STEPS:
        for module in modules:
            importlib.import_module(module)
        steps.take(label)
    import argparse
    import asyncio
    import json

    parser = argparse.ArgumentParser(prog="python -m bench.rss_steps")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    from agent.config.load import load_config
    from agent.outputs.log_queue import claim_stdout

    config = load_config(args.config)
    steps.take("the configuration (environment and YAML, validated)")
    _hook_aws(steps)
    claim_stdout()
    code = asyncio.run(_serve(config, steps, args.seconds))
    args.out.write_text(json.dumps(steps.taken))
    return code


if __name__ == "__main__":
    sys.exit(main())
