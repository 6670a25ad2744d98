"""agent/aws/endpoint_data.py: the agent's clients resolve exactly as with botocore's full endpoint data, for less."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from aiobotocore.session import get_session
from botocore.exceptions import EndpointVariantError
from botocore.regions import EndpointResolver

from agent.aws.clients import AwsClients
from agent.aws.endpoint_data import SERVICES, lean_resolver
from tests.support.aws import AwsEnv

REPO = Path(__file__).resolve().parents[2]
VARIANTS = [(False, False), (True, False), (False, True), (True, True)]  # (FIPS, dual-stack)


def full_resolver() -> EndpointResolver:
    resolver = get_session()._get_internal_component("endpoint_resolver")
    assert isinstance(resolver, EndpointResolver)
    return resolver


def test_every_service_the_agent_calls_keeps_its_endpoint_data() -> None:
    """A service called in agent/ (aws.call / aws.client with a literal name) must be in SERVICES."""
    called = set()
    for path in (REPO / "agent").rglob("*.py"):
        called |= set(re.findall(r"\.(?:call|client)\(\s*\"([a-z0-9-]+)\"", path.read_text()))
    assert {"sts", "secretsmanager"} <= called
    assert called <= SERVICES


def test_each_kept_service_resolves_as_with_the_full_data_in_every_region_and_variant() -> None:
    """construct_endpoint agrees with botocore's own resolver for every region of every partition."""
    full, lean = full_resolver(), lean_resolver(get_session())
    checked = 0
    for partition in full._endpoint_data["partitions"]:
        regions = [*partition["regions"], "aws-global"]
        for service in sorted(SERVICES):
            for region in regions:
                for fips, dualstack in VARIANTS:
                    options = {"use_fips_endpoint": fips, "use_dualstack_endpoint": dualstack}
                    name = partition["partition"]
                    assert _outcome(lean, service, region, name, options) == _outcome(
                        full, service, region, name, options
                    )
                    checked += 1
    assert checked > 500
    assert {p["partition"] for p in lean._endpoint_data["partitions"]} == {
        p["partition"] for p in full._endpoint_data["partitions"]
    }


def _outcome(resolver: EndpointResolver, service: str, region: str, partition: str, options: dict[str, bool]) -> object:
    """The endpoint botocore constructs, or the error it raises (some partitions have no dual-stack)."""
    try:
        return resolver.construct_endpoint(service, region, partition, **options)
    except EndpointVariantError as exc:
        return f"EndpointVariantError: {exc}"


async def test_clients_get_the_lean_resolver_and_the_same_endpoints_and_signing(aws_env: AwsEnv) -> None:
    """Through AwsClients, each service's client has the endpoint URL and signing region of a plain session's."""
    keys = {"aws_access_key_id": "AKIDENDPOINTS", "aws_secret_access_key": "x" * 40}
    async with AwsClients(timeout_seconds=2.0) as aws:
        resolver = aws._session._internal_components.get_component("endpoint_resolver")
        assert set().union(*(p["services"] for p in resolver._endpoint_data["partitions"])) <= SERVICES
        for service in sorted(SERVICES):
            for region in ("us-east-1", "eu-central-1", "us-gov-west-1", "cn-north-1"):
                ours = await aws.client(service, region)
                async with get_session().create_client(service, region_name=region, **keys) as plain:
                    assert ours.meta.endpoint_url == plain.meta.endpoint_url, (service, region)
                    assert ours.meta.region_name == plain.meta.region_name
                    assert ours._request_signer._region_name == plain._request_signer._region_name


def test_the_lean_data_costs_a_fraction_of_the_full_datas_memory() -> None:
    """RSS added by each resolver in a fresh interpreter: the lean one keeps under half of the full one's."""
    code = """
import json, sys
from aiobotocore.session import get_session
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 1048576
from agent.aws.endpoint_data import lean_resolver  # imported first in both: only the resolvers are measured
session = get_session(); session.get_config_variable("data_path")
before = rss()
if sys.argv[1] == "lean":
    resolver = lean_resolver(session)
else:
    resolver = session._get_internal_component("endpoint_resolver")
print(json.dumps(rss() - before))
"""
    added = {}
    # Not under coverage: its tracer keeps objects alive in the measured process (lean read 3.9 of 6.9 MiB with it).
    untraced = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    for kind in ("lean", "full"):
        done = subprocess.run(
            [sys.executable, "-c", code, kind],
            cwd=REPO,
            env=untraced,
            capture_output=True,
            text=True,
            timeout=50,
            check=True,
        )
        added[kind] = json.loads(done.stdout)
    assert added["full"] > 5.0, added  # endpoints.json as botocore keeps it
    assert added["lean"] < added["full"] / 2, added
