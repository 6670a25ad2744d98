"""The agent's own words, as users see them: no redaction pattern masks any text the agent writes (a hint, a
message, a failure code), and no hint leaves a placeholder where the agent knows the value.

Every hint table in agent/ is found by name (`*HINTS`); each is rendered through the probes that show it, run by
the real runner, with complete, realistic configurations. A new table fails here until its probe is listed.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from string import Formatter
from typing import Any

import pytest
from pydantic import SecretStr

import agent
from agent.aws.clients import AwsClients
from agent.config.dsn import Engine, SslMode
from agent.config.models import AppConfig, TargetConfig
from agent.probes.app import AppProbe
from agent.probes.base import Probe, TargetState
from agent.probes.credentials import CredentialsProbe
from agent.probes.db import DatabaseProbe
from agent.probes.parameter import ParameterProbe
from agent.probes.rotation import PendingSecret, RotationWatch
from agent.probes.runner import run_probe
from agent.probes.secret import SecretProbe
from agent.probes.token import TokenProbe
from agent.shared.reasons import ProbeFailure, Reason
from agent.shared.redact import MASK, SecretRegistry, redact
from tests.support.aws import RDS_HOST, REGION

REPO = Path(__file__).resolve().parents[2]
SECRET_ID = "prod/orders/db"
SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:{SECRET_ID}-AbCdEf"

# -- every string the agent writes --------------------------------------------------------------------------


def _agent_texts() -> Iterator[tuple[str, int, str]]:
    """(file, line, text) of every string literal and f-string in agent/ but docstrings, formatted values as a
    plain word. redact.py's own patterns are the one exception."""
    for path in sorted((REPO / "agent").rglob("*.py")):
        if path == REPO / "agent/shared/redact.py":
            continue
        tree = ast.parse(path.read_text(), str(path))
        skip = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
                skip.add(id(body[0].value))  # a docstring
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                text = "".join(str(p.value) if isinstance(p, ast.Constant) else "orders" for p in node.values)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                text = node.value
            else:
                continue
            yield str(path.relative_to(REPO)), node.lineno, str(text)


# The sandbox's made-up access key ids: key-shaped on purpose, and masked wherever they appear, as a real one is.
_KEY_SHAPED = re.compile(r"^(?:AKIA|ASIA)[A-Z0-9]{16}$")


def test_no_text_the_agent_writes_is_masked_by_a_secret_pattern() -> None:
    """A literal that a pattern masks is masked in every message, log line and code it ends up in
    (`secret:no_password` read as `secret:[REDACTED]` in the change log; "(using password: YES)" lost "YES)")."""
    texts = list(_agent_texts())
    assert len(texts) > 1000  # the scan found the agent's words
    masked = [
        f"{where}:{line}: {text[:120]!r}"
        for where, line, text in texts
        if not _KEY_SHAPED.match(text) and redact(text, SecretRegistry()) != text
    ]
    assert masked == []


# -- every hint table, through the probes that show it ------------------------------------------------------


def _hint_tables() -> dict[str, Mapping[str, str]]:
    """Every `*HINTS` mapping defined at module level in agent/ (the sandbox aside), by module.name."""
    tables: dict[str, Mapping[str, str]] = {}
    for info in pkgutil.walk_packages(agent.__path__, "agent."):
        if info.name.startswith("agent.sandbox") or info.name == "agent.__main__":
            continue
        module = importlib.import_module(info.name)
        tree = ast.parse(Path(str(module.__file__)).read_text())
        defined = {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
        defined |= {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
        for name in sorted(n for n in defined if n.endswith("HINTS")):
            value = getattr(module, name)
            if isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values()):
                tables[f"{info.name}.{name}"] = value
    return tables


TABLES = _hint_tables()
FIELDS = {f for table in TABLES.values() for t in table.values() for _, f, _, _ in Formatter().parse(t) if f}
# Placeholders the templates themselves write for values no agent can know (<account-id>, <n>, ...), and fields
# no probe can fill: the instance's DbiResourceId takes an RDS DescribeDBInstances call the agent does not make.
LITERAL_PLACEHOLDERS = {
    p for table in TABLES.values() for t in table.values() for p in re.findall(r"<[^<>{}]+>", re.sub(r"\{\w+\}", "", t))
} | {"<DbiResourceId>"}

ProbeMaker = Callable[[], Probe]


def _target(engine: Engine, iam: bool) -> TargetConfig:
    """A fully configured RDS target: every value a hint may name is known."""
    port = 5432 if engine is Engine.POSTGRESQL else 3306
    scheme = "postgresql" if engine is Engine.POSTGRESQL else "mysql"
    fields: dict[str, Any] = {
        "name": "orders",
        "engine": engine,
        "host": RDS_HOST,
        "port": port,
        "database": "orders",
        "user": "app",
        "sslmode": SslMode.VERIFY_FULL,
        "sslrootcert": "/etc/ssl/certs/rds-global-bundle.pem",
        "region": REGION,
        "configured_region": REGION,
        "dsn": f"{scheme}://app@{RDS_HOST}:{port}/orders?sslmode=verify-full",
    }
    if iam:
        fields["iam_auth"] = True
    else:
        fields["secret_id"] = SECRET_ARN
    return TargetConfig.model_validate(fields)


def _parameter_target() -> TargetConfig:
    """A target whose password is an SSM parameter (a name with a version selector)."""
    update = {"secret_id": None, "password_parameter": "/prod/orders/db/password:3"}
    return _target(Engine.POSTGRESQL, False).model_copy(update=update)


async def _no_pending() -> PendingSecret | None:
    return None


def _database(engine: Engine, iam: bool) -> DatabaseProbe:
    rotation = None
    if not iam:  # a rotation was seen: its versions are known
        rotation = RotationWatch(SECRET_ARN, _no_pending, stuck_after_seconds=900)
        rotation.last = PendingSecret(SecretStr("x" * 16), "app", "v-pending-0002", "v-current-0001", REGION)
    return DatabaseProbe(_target(engine, iam), TargetState(), timeout=5.0, rotation=rotation)


# Where the task's credentials come from: the container endpoint with each kind of token, or no endpoint at all.
ENDPOINTS: Mapping[str, Mapping[str, str]] = {
    "ecs": {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/3f8a-task"},
    "pod_identity_file": {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/var/run/secrets/pods.eks.amazonaws.com/eks-pod-identity-token",
    },
    "token_variable": {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:51679/creds",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": "Bearer-never-shown-0123456789",
    },
    "environment_keys": {},
}


def _aws(environ: Mapping[str, str]) -> AwsClients:
    aws = AwsClients(timeout_seconds=5.0, environ=environ)
    aws.account_id = "123456789012"  # the credentials probe, which runs first, had STS confirm the account
    return aws


def _credentials(environ: Mapping[str, str]) -> CredentialsProbe:
    probe = CredentialsProbe(_aws(environ), REGION)
    probe.provider = "container-role" if environ else "env"
    return probe


def _app() -> AppProbe:
    config = AppConfig(
        scheme="http",
        host="127.0.0.1",
        port=8080,
        path="/health",
        query=None,
        expect_status=((200, 399),),
        url="http://127.0.0.1:8080/health",
    )
    return AppProbe(config, timeout=2.0)


# The keys only a target that reads its password from Secrets Manager can meet (an IAM target has no secret).
SECRET_ONLY = ("secret:", "db:password_drift", "db:no_secret", "db:timeout:secret")


def _makers() -> dict[str, tuple[ProbeMaker, tuple[str, ...]]]:
    """Each probe setup, and the hint tables it shows."""
    shared = "agent.probes.drivers.hints.COMMON_HINTS"
    tls = "agent.probes.drivers.tls.HINTS"
    role = "agent.probes.drivers.role.HINTS"  # writer or reader: in COMMON_HINTS too, shown by both engines
    proxy = "agent.probes.drivers.proxy.HINTS"  # RDS Proxy's own answers: in COMMON_HINTS too
    cert = "agent.probes.drivers.certificate.HINTS"  # the server's certificate: in COMMON_HINTS too
    aws = ("agent.aws.errors.COMMON_HINTS", "agent.aws.hints.AWS_CODE_HINTS", "agent.aws.hints.PROVIDER_HINTS")
    makers: dict[str, tuple[ProbeMaker, tuple[str, ...]]] = {
        "db-pg": (
            lambda: _database(Engine.POSTGRESQL, False),
            (shared, tls, role, proxy, cert, "agent.probes.drivers.pg.HINTS"),
        ),
        "db-pg-iam": (
            lambda: _database(Engine.POSTGRESQL, True),
            (shared, tls, role, proxy, cert, "agent.probes.drivers.pg.HINTS", "agent.probes.drivers.pg.IAM_HINTS"),
        ),
        "db-mysql": (
            lambda: _database(Engine.MYSQL, False),
            (shared, tls, role, proxy, cert, "agent.probes.drivers.mysql.HINTS"),
        ),
        "db-mysql-iam": (
            lambda: _database(Engine.MYSQL, True),
            (
                shared,
                tls,
                role,
                proxy,
                cert,
                "agent.probes.drivers.mysql.HINTS",
                "agent.probes.drivers.mysql.IAM_HINTS",
            ),
        ),
        "app": (_app, ("agent.probes.app.HINTS",)),
        "db-pg-parameter": (
            lambda: DatabaseProbe(_parameter_target(), TargetState(), timeout=5.0),
            (shared, tls, "agent.probes.drivers.pg.HINTS"),
        ),
    }
    for name, environ in ENDPOINTS.items():
        makers[f"credentials-{name}"] = (
            lambda e=environ: _credentials(e),  # type: ignore[misc]
            (*aws, "agent.probes.credentials._HINTS"),
        )
        makers[f"secret-{name}"] = (
            lambda e=environ: SecretProbe(_target(Engine.POSTGRESQL, False), TargetState(), _aws(e)),  # type: ignore[misc]
            (*aws, "agent.probes.secret._HINTS"),
        )
        makers[f"parameter-{name}"] = (
            lambda e=environ: ParameterProbe(_parameter_target(), TargetState(), _aws(e)),  # type: ignore[misc]
            (*aws, "agent.probes.parameter._HINTS"),
        )
        makers[f"token-{name}"] = (
            lambda e=environ: TokenProbe(_target(Engine.POSTGRESQL, True), TargetState(), _aws(e)),  # type: ignore[misc]
            (*aws, "agent.probes.token._HINTS"),
        )
    return makers


MAKERS = _makers()
# Steps that decide which timeout hint a probe gives (see _TIMEOUT_HINTS in db.py, _hint_key in app.py).
_STEPS = {
    "db:timeout:connected": "waiting for the server greeting from the host (TCP connected)",
    "db:timeout:secret": "refetching the secret",
    "timeout": "TCP connect to the host",
    "app:timeout:connect": "connecting to 127.0.0.1:8080",
    "app:timeout:answer": "waiting for the answer to GET /health",
}


def _failure(key: str, probe: Probe) -> ProbeFailure:
    """The failure that makes `probe` give the hint filed under `key` (a code, or a reason for the generic one)."""
    if probe.name == "app" and key == "server":  # a status outside AGENT_APP_EXPECT_STATUS with no entry
        return ProbeFailure(Reason.SERVER, "app:http_302", "answered 302 to GET /health, expected 200-299")
    if key in {r.value for r in Reason}:
        prefix = {"credentials": "sts", "secret": "secretsmanager", "token": "rds"}.get(probe.name, probe.name)
        return ProbeFailure(Reason(key), f"{prefix}:a_code_without_its_own_hint", "what went wrong")
    if key.startswith("app:http_") and key[-2:] == "xx":
        key = f"app:http_{key[-3]}03"  # the table's 5xx entry is shown for a real status
    if key.startswith("app:timeout"):
        key = "app:timeout"
    reason = Reason.TIMEOUT if key in _STEPS or key == "app:timeout" else Reason.UNKNOWN
    return ProbeFailure(reason, key, "what went wrong")


async def _shown(make: ProbeMaker, key: str) -> str:
    """The hint users see for `key`, through the real runner."""
    probe = make()
    failure = _failure(key, probe)
    step = _STEPS.get(key)
    if step is not None and isinstance(probe, DatabaseProbe):
        probe.step = step
    elif step is not None:
        probe._step = step  # type: ignore[attr-defined]

    async def run() -> Any:
        raise failure

    probe.run = run  # type: ignore[method-assign]
    result = await run_probe(probe, 5.0)
    assert (result.ok, result.code) == (False, failure.failure.code)
    return result.hint


def test_every_hint_table_is_shown_by_a_listed_probe() -> None:
    listed = {table for _, tables in MAKERS.values() for table in tables}
    assert set(TABLES) - listed == set(), "list the probe that shows each new hint table in MAKERS"
    assert listed - set(TABLES) == set(), "a listed table is gone: update MAKERS"


CASES = [
    (setup, table, key)
    for setup, (_, tables) in MAKERS.items()
    for table in tables
    for key in TABLES[table]
    if not (setup.startswith("db-") and setup.endswith("-iam") and key.startswith(SECRET_ONLY))
    and not (setup.endswith("-parameter") and key.startswith("secret:"))  # rotation stages: Secrets Manager's own
]


@pytest.mark.parametrize(("setup", "table", "key"), CASES, ids=[f"{s}:{k}" for s, _, k in CASES])
async def test_every_hint_reads_as_written_with_every_known_value_filled(setup: str, table: str, key: str) -> None:
    hint = await _shown(MAKERS[setup][0], key)
    assert hint, f"{key} gives no hint"
    assert MASK not in hint, f"the agent's own words were masked: {hint}"
    assert redact(hint, SecretRegistry()) == hint, "the change log line (redacted again) would mask part of it"
    unfilled = [p for p in re.findall(r"<[^<>]+>", hint) if p not in LITERAL_PLACEHOLDERS]
    assert unfilled == [], f"placeholders for values the agent knows: {unfilled} in {hint}"
    assert not any(f"{{{field}}}" in hint for field in FIELDS), hint


async def test_the_credentials_curl_hint_names_where_the_token_is_never_the_token() -> None:
    """The incident: `Authorization: ...` was masked; now the command reads the token from where it is."""
    for name, command in (
        ("pod_identity_file", '-H "Authorization: $(cat /var/run/secrets/pods.eks.amazonaws.com/eks-pod-identity'),
        ("token_variable", '-H "Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN" http://127.0.0.1:51679/creds'),
        ("ecs", "curl -s http://169.254.170.2/v2/credentials/3f8a-task`"),
    ):
        hint = await _shown(MAKERS[f"credentials-{name}"][0], "credentials:auth")
        assert command in hint, hint
        assert "never-shown" not in hint


async def test_a_credentials_failure_without_a_container_endpoint_gets_the_chain_hint() -> None:
    """No endpoint is configured (keys, web identity): no hint about an endpoint, its token or its URL."""
    for key in ("credentials:auth", "credentials:token_file_missing", "credentials:retrieval_failed"):
        hint = await _shown(MAKERS["credentials-environment_keys"][0], key)
        assert "aws sts get-caller-identity" in hint and "AWS_WEB_IDENTITY_TOKEN_FILE" in hint, hint
