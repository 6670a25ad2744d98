"""The incident, caught before deployment: a password, token or secret written into a container's `environment`,
where anyone who can describe the task definition reads it and a rotation never reaches it. ECS's answer is
`secrets` (valueFrom a Secrets Manager secret or an SSM parameter), injected when the task starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from agent.lint.containers import Container
from agent.lint.documents import TaskDefinition, Unknown
from agent.lint.findings import Code, Finding
from agent.shared.redact import SecretRegistry, redact

# A name for a secret value: *PASSWORD*, *PASSWD*, *SECRET*, *TOKEN*, *PRIVATE_KEY* ...
_SECRET_NAME = re.compile(r"(?i)PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE_?KEY|API_?KEY")
# ... unless the last word says it names where the secret is, or a setting about it (AGENT_DB_SECRET_ID,
# DB_PASSWORD_ARN, AGENT_DB_PASSWORD_PARAMETER, DB_PASSWORD_FILE, AGENT_SECRET_REFRESH_SECONDS).
_REFERENCE = re.compile(r"(?i)_(?:ID|ARN|NAME|PARAMETER|FILE|PATH|SECONDS|URL|ENDPOINT|HEADER|TYPE)$")
_FIX = "move it to `secrets` (valueFrom a Secrets Manager secret or an SSM parameter), which ECS injects at start"


def literal_secrets(task: TaskDefinition, container: Container) -> Iterator[Finding]:
    """A finding for each `environment` entry that holds a secret as a literal; intrinsics are never literals."""
    for name, value in container.environment().items():
        if isinstance(value, Unknown) or not value.strip() or value.startswith("arn:"):
            continue
        field = task.field(f"{container.path}.environment[{name}]")
        if _SECRET_NAME.search(name) and not _REFERENCE.search(name):
            message = f"{name} is a literal value, and its name says it holds a password, token or secret; {_FIX}"
            yield Finding(task.file, container.name, field, Code.SECRET_LITERAL, message)
        elif _has_secret_part(value):
            message = (
                f"the value of {name} holds a password (a DSN with user:password@, a key=value pair naming a password,"
                f" an access key id); take the password out of it and {_FIX}"
            )
            yield Finding(task.file, container.name, field, Code.SECRET_IN_VALUE, message)


def _has_secret_part(value: str) -> bool:
    """What the redactor would mask in an output line (agent/shared/redact.py knows every shape), checked with an
    empty registry so only the value's own shape counts."""
    return redact(value, SecretRegistry()) != value
