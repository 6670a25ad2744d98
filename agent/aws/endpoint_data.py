"""botocore's endpoint data, kept only for the services the agent calls: 6.8 MiB of RSS less in every AWS agent.

A botocore session loads endpoints.json (1.2 MB of JSON, every service in every partition, parsed into
OrderedDicts) when it makes its first client and keeps it for life: its endpoint resolver holds it, its loader
caches it. Measured in the real `serve` with every feature on (bench/rss_steps.py): +6.8 MiB, the largest single
step after the imports; the agent's clients read the entries of three services out of ~400. This resolver is
botocore's own EndpointResolver, given the same file with the other services' entries dropped from each partition
(partition data, regions and defaults untouched). It is loaded by a loader of its own, so the whole parse is freed
before the first client exists (freed that early, glibc gives the memory back; freed after the clients were made,
it stayed resident in the measurement). botocore's code still resolves every endpoint; a service left out would
get its partition's defaults, which is why tests/aws/test_endpoint_data.py checks that every service the agent
calls is in SERVICES and resolves exactly as with the full file.
"""

from __future__ import annotations

import gc
import json
from typing import Any

# Every service the agent (or botocore's credential chain for it: web identity, role profiles) makes a client for.
SERVICES = frozenset({"sts", "secretsmanager", "ssm"})


def use_lean_endpoint_data(session: Any) -> None:
    """Make `session` build its endpoint resolver from the lean data, when its first client needs one.

    Private API (listed in agent/shared/private_api.py): botocore.session.Session._internal_components, where the
    session registers the resolver it gives its clients (botocore has no public setter for it).
    """
    session._internal_components.lazy_register_component("endpoint_resolver", lambda: lean_resolver(session))


def lean_resolver(session: Any) -> Any:
    """botocore's EndpointResolver over endpoints.json with only SERVICES' entries in each partition."""
    from botocore.regions import EndpointResolver

    text, builtin = _lean_text(session)
    gc.collect()  # only a full collection gives the parse's memory back (measured: 5 of its 7 MiB)
    # Parsed again only once the full parse is gone: objects made while it was alive would sit among its objects
    # and keep pymalloc's arenas resident (measured: 3 of 7 MiB stayed when the lean data was copied before).
    return EndpointResolver(json.loads(text), uses_builtin_data=builtin)


def _lean_text(session: Any) -> tuple[str, bool]:
    """The lean endpoint data as JSON text, and whether it came from botocore's own data directory."""
    from botocore.loaders import create_loader

    loader = create_loader(session.get_config_variable("data_path"))  # a cache of its own, gone with it
    endpoints, path = loader.load_data_with_path("endpoints")
    for partition in endpoints["partitions"]:
        partition["services"] = {name: data for name, data in partition["services"].items() if name in SERVICES}
    return json.dumps(endpoints), loader.is_builtin_path(path)
