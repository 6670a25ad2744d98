"""Where the agent's memory goes: RSS after each import or AWS client, in a fresh interpreter (run as a script).

`python -m bench.rss_steps` prints one JSON list of [step, MiB]; the footprint phase turns it into a note.
The order follows the agent's own start-up, so each delta is what that step adds on top of the ones before.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

# Nothing else at the top: asyncio and json would land in the interpreter's baseline.

STEPS = (
    ("aiohttp (HTTP server, asyncio, ssl)", ("aiohttp", "aiohttp.web")),
    ("pydantic, pydantic-settings, PyYAML (config)", ("pydantic", "pydantic_settings", "yaml")),
    ("prometheus_client", ("prometheus_client",)),
    ("the agent's own modules", ("agent.app", "agent.config.build", "agent.runtime.check")),
    ("asyncpg and the PostgreSQL probe", ("asyncpg", "agent.probes.drivers.pg", "agent.probes.db")),
    ("aiobotocore/botocore import", ("aiobotocore.session", "agent.aws.clients", "agent.probes.credentials")),
)
CLIENTS = (("sts", "STS client (botocore's endpoint table, model)"), ("secretsmanager", "Secrets Manager client"))
TOKEN_STEP = "signing an RDS IAM token (SigV4 query auth, as the agent does: no RDS client)"


def rss_mib() -> float:
    """This process's resident memory now."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def _clients(steps: list[tuple[str, float]]) -> None:
    from contextlib import AsyncExitStack

    from aiobotocore.session import get_session

    session = get_session()
    keys: dict[str, Any] = {"aws_access_key_id": "AKIABENCH", "aws_secret_access_key": "not-a-secret"}  # never sent
    async with AsyncExitStack() as stack:
        for service, label in CLIENTS:
            await stack.enter_async_context(session.create_client(service, region_name="us-east-1", **keys))
            steps.append((label, rss_mib()))
    _sign_token()
    steps.append((TOKEN_STEP, rss_mib()))


def _sign_token() -> None:
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="GET", url="https://db.example:5432/", data={"Action": "connect", "DBUser": "app"})
    SigV4QueryAuth(Credentials("AKIABENCH", "not-a-secret"), "rds-db", "us-east-1", expires=900).add_auth(request)


def main() -> None:
    """Measure every step and print them as JSON."""
    steps = [("Python interpreter", rss_mib())]
    for label, modules in STEPS:
        for module in modules:
            importlib.import_module(module)
        steps.append((label, rss_mib()))
    import asyncio
    import json

    asyncio.run(_clients(steps))
    print(json.dumps(steps))


if __name__ == "__main__":
    main()
