"""Names in agent/ that vulture (scripts/test.sh) sees defined but never used, because a library uses them by name.

Nothing imports this module; vulture reads it beside agent/ and counts every name here as used. Add a name only
with the library that reads it; code that only tests use does not belong here (it belongs in tests/support/).
"""

from __future__ import annotations

import logging

from aiobotocore.utils import AioContainerMetadataFetcher

import agent
from agent.config.dsn import SslMode
from agent.config.inputs import ConnectionFile, DatabaseFile
from agent.config.load import _GivenEnvironment
from agent.config.models import AgentConfig, StatusDetail
from agent.outputs.metrics import StateCollector
from agent.probes.drivers.mysql_sha2 import Sha2Auth
from agent.probes.pacing import DEFAULT_RELOGIN_SPREAD_SECONDS, spread_for
from agent.runtime.readiness import decide
from agent.sandbox.aws import CredentialsEndpoint
from agent.sandbox.postgres import PostgresSandbox
from agent.shared.private_api import PRIVATE_APIS

_USED_BY_NAME = (
    AgentConfig.model_config,  # pydantic reads every model's model_config
    AgentConfig._cloudwatch_namespace,  # pydantic runs @field_validator methods
    DatabaseFile._not_empty,
    ConnectionFile._known_keys,  # a @model_validator, inherited by every YAML section the agent reads whole
    SslMode.VERIFY_CA,  # enum members chosen by value: sslmode=verify-ca in a DSN
    StatusDetail.SUMMARY,  # AGENT_STATUS_DETAIL=summary
    _GivenEnvironment.settings_customise_sources,  # pydantic-settings asks a settings class for its sources
    StateCollector.collect,  # prometheus_client calls a collector's collect() on every scrape
    AioContainerMetadataFetcher.RETRY_ATTEMPTS,  # aiobotocore's fetcher reads these class attributes,
    AioContainerMetadataFetcher.SLEEP_TIME,  # which the agent's subclass overrides (agent/aws/clients.py)
    AioContainerMetadataFetcher.TIMEOUT_SECONDS,
    logging.LogRecord.levelno,  # set on a record by a logging filter; the handlers read them
    logging.LogRecord.exc_text,
    agent.__getattr__,  # module __getattr__: `agent.__version__` is read lazily (PEP 562)
    DEFAULT_RELOGIN_SPREAD_SECONDS,  # bench/storm.py models a fleet with these
    spread_for,
    Sha2Auth.caching_sha2_password_auth,  # aiomysql calls these by name; the agent's connection class overrides
    Sha2Auth.sha256_password_auth,  # them (agent/probes/drivers/mysql_sha2.py)
    # The readiness policy as one pure function over every standing: the module's specification, which the agent's
    # incremental tally (Standings) must agree with (tests/runtime/test_update_cost.py checks it on any sequence).
    decide,
    # The sandbox's stand-ins serve the demo and the tests; these parts only the tests read or call.
    CredentialsEndpoint().requests,  # requests served, counted by the credentials tests
    PostgresSandbox.restart,  # the restart tests
    # The registry's records are read by tests/shared/test_private_api.py.
    PRIVATE_APIS[0].package,
    PRIVATE_APIS[0].used_in,
    PRIVATE_APIS[0].guarded_by,
    PRIVATE_APIS[0].on_instance,
)
