"""botocore's endpoint data, kept only for the services the agent calls: ~6.5 MiB of RSS less in every AWS agent.

A botocore session loads endpoints.json (1.2 MB of JSON, every service in every partition, parsed into
OrderedDicts) when it makes its first client and keeps it for life: its endpoint resolver holds it, its loader
caches it. Measured in the real `serve` with every feature on (bench/rss_steps.py): +6.8 MiB, the largest step
after the imports, for the entries of three services out of ~400. This resolver is botocore's own
EndpointResolver, given the same file with the other services' entries dropped from each partition (partition
data, regions and defaults untouched): the step is +1.9 MiB, and the every-feature agent after 60 s of probing at
1 s went from 76.4 to 69.9 MiB. Dropping the cache entries once the clients exist freed nothing measurable (the
memory stayed among the clients' objects); what works is never keeping the full parse: it is read by a loader of
its own and freed before the first client is made. botocore's code still resolves every endpoint; a service left
out would get its partition's defaults, which is why tests/aws/test_endpoint_data.py checks that every service the
agent calls is in SERVICES and resolves exactly as with the full file.
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
    # Only a full collection gave the parse's memory back (without it the step stayed at +4.8 MiB, 74.1 MiB in
    # all); it runs once, when the first client is made, during the first round (measured 30-100 ms).
    gc.collect()
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
