"""What the sandbox stands up around the agent (moto, the credentials endpoint, a secret, PostgreSQL) and the
ways to break and fix it. The control API (agent.sandbox.control) calls these; nothing here prints a secret."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from agent.sandbox.aws import (
    CredentialsEndpoint,
    EndpointMode,
    Identities,
    create_secret,
    moto_client,
    schedule_secret_deletion,
)
from agent.sandbox.backend import BackendMode, StandInBackend
from agent.sandbox.database import SandboxDatabase, new_password
from agent.shared.redact import SECRETS

REGION = "us-east-1"  # moto's default region; the secret's ARN carries it to the agent as well
SECRET_NAME = "sandbox/orders-db"
# Quick cadences so a break shows within seconds; any AGENT_* variable set outside the sandbox wins.
AGENT_DEFAULTS = {
    "AGENT_INTERVAL_SECONDS": "2",
    "AGENT_DB_REAUTH_SECONDS": "5",  # a password change shows at the next fresh login: sessions survive it
    "AGENT_SECRET_REFRESH_SECONDS": "20",
    "AGENT_SHUTDOWN_GRACE_SECONDS": "1",
}
# Variables the sandbox decides: where the agent listens and what it logs in to.
_OWNED = {"AGENT_HOST", "AGENT_PORT", "AGENT_DB_DSN", "AGENT_DB_PASSWORD", "AGENT_DB_SECRET_ID", "AGENT_DB_IAM_AUTH",
          "AGENT_DB_USER", "AGENT_DB_SSLROOTCERT", "AGENT_AWS_REGION"}  # fmt: skip


class ActionRefused(RuntimeError):
    """A break or fix that cannot be done in this sandbox (the message says why)."""


@dataclass
class World:
    """The stand-ins of one sandbox run and what is currently broken."""

    db: SandboxDatabase
    moto_url: str
    identities: Identities
    endpoint: CredentialsEndpoint
    backend: StandInBackend
    secret_arn: str = ""
    broken: set[str] = field(default_factory=set)
    _password: str = field(default="", repr=False)  # the secret's current password

    async def create_secret_and_role(self) -> None:
        """A fresh password in the database role and in an RDS-format JSON secret."""
        self._password = _remember(new_password())
        await self.db.create(self._password)
        admin = self.identities.admin
        self.secret_arn = await create_secret(self.moto_url, admin, SECRET_NAME, self._secret_string(), REGION)

    def agent_env(self, port: int) -> dict[str, str]:
        """The agent's environment, as ECS would give it: container credentials, a secret id, a DSN."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in _OWNED}
        return {
            **AGENT_DEFAULTS,
            **inherited,
            "AGENT_HOST": "127.0.0.1",
            "AGENT_PORT": str(port),
            "AGENT_DB_DSN": self.db.dsn,
            "AGENT_DB_SECRET_ID": self.secret_arn,
            "AGENT_APP_URL": self.backend.url,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": self.moto_url,  # every AWS call goes to moto, never to AWS
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": self.endpoint.url,
            "AWS_CONFIG_FILE": os.devnull,  # the user's own profiles and keys stay out of it
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "PYTHONUNBUFFERED": "1",
        }

    async def break_password(self) -> str:
        """Change the role's password behind the secret's back (the incident, from the database's side)."""
        await self.db.set_password(_remember(new_password()))
        self.broken.add("password")
        return "the database password changed and the secret still holds the old one"

    async def rotate_secret(self) -> str:
        """A proper rotation: a new password in the database, then in the secret (setSecret, finishSecret)."""
        if "secret" in self.broken:
            raise ActionRefused("the secret is scheduled for deletion: POST /fix first")
        password = _remember(new_password())
        await self.db.set_password(password)
        self._password = password
        async with moto_client(self.moto_url, "secretsmanager", self.identities.admin, REGION) as sm:
            await sm.put_secret_value(SecretId=self.secret_arn, SecretString=self._secret_string())
        self.broken.discard("password")
        return "a new password is in the database and in the secret"

    async def break_credentials(self, mode: str) -> str:
        """Make the ECS credentials endpoint misbehave (403, 500, stopped, hang, expired)."""
        choices = [m.value for m in EndpointMode if m is not EndpointMode.OK]
        if mode not in choices:
            raise ActionRefused(f"unknown mode {mode!r}: one of {', '.join(choices)}")
        endpoint_mode = EndpointMode(mode)
        await self.endpoint.set_mode(endpoint_mode, delay=30.0)
        self.broken.add("credentials")
        return f"the credentials endpoint now behaves as {endpoint_mode.value!r}"

    async def break_backend(self, mode: str) -> str:
        """Make the stand-in backend hang, answer 500, or stop listening: this task's own failure."""
        choices = [m.value for m in BackendMode if m is not BackendMode.OK]
        if mode not in choices:
            raise ActionRefused(f"unknown mode {mode!r}: one of {', '.join(choices)}")
        await self.backend.set_mode(BackendMode(mode))
        self.broken.add("backend")
        return f"the backend now behaves as {mode!r}"

    async def break_secret(self) -> str:
        """Schedule the secret for deletion: reading it fails (InvalidRequestException)."""
        await schedule_secret_deletion(self.moto_url, self.identities.admin, self.secret_arn, REGION)
        self.broken.add("secret")
        return "the secret is scheduled for deletion; the agent sees it at its next fetch"

    async def break_database(self) -> str:
        """Stop the throwaway PostgreSQL: an outage every task would share."""
        if self.db.cluster is None:
            raise ActionRefused("the sandbox uses a PostgreSQL it did not start, and will not stop it")
        await self.db.stop_server()
        self.broken.add("database")
        return "PostgreSQL is stopped: connections are refused"

    async def fix(self) -> str:
        """Undo every break: endpoint answering, secret restored, server running, password matching."""
        await self.endpoint.set_mode(EndpointMode.OK)
        await self.backend.set_mode(BackendMode.OK)
        if "secret" in self.broken:
            async with moto_client(self.moto_url, "secretsmanager", self.identities.admin, REGION) as sm:
                await sm.restore_secret(SecretId=self.secret_arn)
        await self.db.start_server()
        await self.db.set_password(self._password)
        fixed = sorted(self.broken)
        self.broken.clear()
        return f"fixed: {', '.join(fixed) or 'nothing was broken'}"

    def describe(self) -> dict[str, Any]:
        """What runs where and what is broken (no secret values)."""
        cluster = self.db.cluster
        return {
            "aws": {
                "endpoint_url": self.moto_url,
                "region": REGION,
                "task_role_arn": self.identities.role_arn,
                "credentials_url": self.endpoint.url,
                "secret_arn": self.secret_arn,
            },
            "postgres": {
                "kind": self.db.kind,
                "dsn": self.db.dsn,
                "port": self.db.port,
                "role": self.db.role,
                "data_dir": str(cluster.root) if cluster is not None else None,
                "running": self.db.running,
            },
            "backend": {"url": self.backend.url, "mode": self.backend.mode.value},
            "broken": sorted(self.broken),
        }

    def _secret_string(self) -> str:
        db = self.db
        fields = {"engine": "postgres", "host": db.host, "port": db.port, "dbname": db.database}
        return json.dumps({"username": db.role, "password": self._password, **fields})


def _remember(password: str) -> str:
    """Register a password with the redaction registry, so no message the sandbox prints can show it."""
    SECRETS.add(password)
    return password
