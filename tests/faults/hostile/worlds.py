"""The agents the hostile peers stand in front of, each with its peers forwarding to real servers until turned.

- The database agent: four targets from a --config file, each through its own front: PostgreSQL under
  sslmode=prefer (its greeting and its errors can turn hostile) and require (its TLS handshake), MariaDB under
  prefer (greeting, errors) and prefer again behind a front whose hostile greeting offers TLS (its handshake).
  Every target logs in with one distinctive password: the canary each hostile database peer echoes.
- The AWS agent: task-role credentials from a credentials endpoint, STS and Secrets Manager (moto), each through
  its own front (AWS_CONTAINER_CREDENTIALS_FULL_URI, AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL_SECRETS_MANAGER); the
  database password comes from the secret. Canaries: the secret access key (credentials), the session token (STS,
  which is sent it), the database password (Secrets Manager, which holds it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.sandbox.aws import CredentialsEndpoint
from agent.sandbox.postgres import PostgresSandbox
from tests.faults.cadence import FAST
from tests.faults.harness import LiveAgent, live_agent
from tests.faults.hostile.answers import Peer
from tests.faults.hostile.measure import watching
from tests.faults.hostile.rows import Spot
from tests.faults.hygiene import distinctive
from tests.faults.servers import MyControl, PgControl
from tests.faults.stubs import distinctive_task_role
from tests.support.aws import REGION, Moto
from tests.support.hostile_peer import HostilePeer

WARM_UP = 1.0  # seconds after `ready`: the first round's one-off work (clients, botocore's models, the gc.freeze)
SECRET_REFRESH = "1"  # the minimum: a hostile Secrets Manager is met within a second
# The database peers' target names in the --config file, and the sslmode each logs in with.
DB_TARGETS: Mapping[Peer, tuple[str, str]] = {
    Peer.PG_GREETING: ("pg", "prefer"),
    Peer.PG_ERROR: ("pg", "prefer"),
    Peer.PG_TLS: ("pgtls", "require"),
    Peer.MYSQL_GREETING: ("my", "prefer"),
    Peer.MYSQL_ERROR: ("my", "prefer"),
    Peer.MYSQL_TLS: ("mytls", "prefer"),
}
AWS_PROBES: Mapping[Peer, tuple[str, str]] = {
    Peer.CREDENTIALS: ("credentials", "aws"),
    Peer.STS: ("credentials", "aws"),
    Peer.SECRETS_MANAGER: ("secret", "default"),
}


@dataclass
class World:
    """A live agent and the spot of each peer in front of it."""

    agent: LiveAgent
    spots: dict[Peer, Spot]


@contextlib.contextmanager
def _fronts(upstreams: Mapping[str, tuple[str, int]]) -> Iterator[dict[str, HostilePeer]]:
    with contextlib.ExitStack() as stack:
        fronts = {}
        for name, upstream in upstreams.items():
            front = HostilePeer(upstream).start()
            stack.callback(front.close)
            fronts[name] = front
        yield fronts


@contextlib.asynccontextmanager
async def database_world(
    name: str, cluster: PostgresSandbox, pg: PgControl, my: MyControl, config_dir: Path, peers: tuple[Peer, ...]
) -> AsyncIterator[World]:
    """The database agent with the targets `peers` need."""
    password = distinctive(f"database password ({name})")
    role = await pg.role(password)
    database = await pg.database(owner=role)
    user = await my.user(password)
    pg_up, my_up = (cluster.host, cluster.port), (my.server.host, my.server.port)
    targets = {DB_TARGETS[peer][0] for peer in peers}
    upstreams = {t: pg_up if t.startswith("pg") else my_up for t in targets}
    try:
        with _fronts(upstreams) as fronts:
            connections = {}
            for peer in peers:
                target, sslmode = DB_TARGETS[peer]
                who, path = (role, database) if target.startswith("pg") else (user, "")
                scheme = "postgresql" if target.startswith("pg") else "mysql"
                dsn = f"{scheme}://{who}@127.0.0.1:{fronts[target].port}/{path}?sslmode={sslmode}"
                connections[target] = {"dsn": dsn}
            config = config_dir / f"{name}.yaml"
            text = json.dumps({"database": {"connections": connections}})  # JSON is YAML
            await asyncio.to_thread(config.write_text, text)
            env = {**FAST, "AGENT_DB_PASSWORD": password}
            async with live_agent(name, env, "--config", str(config)) as agent, watching(agent.port) as health:
                await _warmed_up(agent)
                spots = {
                    p: Spot(agent, fronts[DB_TARGETS[p][0]], "db", DB_TARGETS[p][0], password, health) for p in peers
                }
                yield World(agent, spots)
    finally:
        await pg.drop_database(database)
        await pg.drop_role(role)
        await my.drop_user(user)


@contextlib.asynccontextmanager
async def aws_world(name: str, moto: Moto, cluster: PostgresSandbox, pg: PgControl) -> AsyncIterator[World]:
    """The AWS agent: credentials, STS and Secrets Manager each behind a front; PostgreSQL reached directly."""
    keys = await distinctive_task_role(moto, f"task role ({name})")
    endpoint = CredentialsEndpoint(keys, role_arn=moto.identities.role_arn)
    await endpoint.start()
    password = distinctive(f"database password in the secret ({name})")
    role = await pg.role(password)
    secret, _ = await moto.secret({"username": role, "password": password, "engine": "postgres"})
    moto_at = _host_port(moto.url)
    try:
        upstreams = {"credentials": _host_port(endpoint.url), "sts": moto_at, "secretsmanager": moto_at}
        with _fronts(upstreams) as fronts:
            env = {
                **FAST,
                "AGENT_DB_DSN": f"postgresql://{cluster.host}:{cluster.port}/postgres?sslmode=require",
                "AGENT_DB_SECRET_ID": secret,
                "AGENT_SECRET_REFRESH_SECONDS": SECRET_REFRESH,
                "AWS_REGION": REGION,
                "AWS_ENDPOINT_URL_STS": f"http://127.0.0.1:{fronts['sts'].port}",
                "AWS_ENDPOINT_URL_SECRETS_MANAGER": f"http://127.0.0.1:{fronts['secretsmanager'].port}",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"http://127.0.0.1:{fronts['credentials'].port}{endpoint.path}",
            }
            canaries = {Peer.CREDENTIALS: keys.secret_key, Peer.STS: keys.token or "", Peer.SECRETS_MANAGER: password}
            front_of = {Peer.CREDENTIALS: "credentials", Peer.STS: "sts", Peer.SECRETS_MANAGER: "secretsmanager"}
            async with live_agent(name, env) as agent, watching(agent.port) as health:
                await _warmed_up(agent)
                spots = {
                    peer: Spot(agent, fronts[front_of[peer]], *AWS_PROBES[peer], canaries[peer], health)
                    for peer in AWS_PROBES
                }
                yield World(agent, spots)
    finally:
        await endpoint.stop()
        await pg.drop_role(role)


async def _warmed_up(agent: LiveAgent) -> None:
    """Every probe has passed, and the start-up's one-off work is over: the rows measure the agent at work."""
    await agent.wait_status("ready", 30)
    await asyncio.sleep(WARM_UP)


def _host_port(url: str) -> tuple[str, int]:
    netloc = url.split("//", 1)[1].split("/", 1)[0]
    host, _, port = netloc.rpartition(":")
    return host, int(port)
