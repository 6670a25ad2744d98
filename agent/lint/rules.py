"""Every check of one task definition: literals in any container; `secrets` ARNs; and, for the agent container,
its configuration, health check, the backends' dependsOn, stopTimeout, the task role, which secret it reads and
whether it is given the password ECS injected into the backend."""

from __future__ import annotations

from collections.abc import Iterator

from agent.lint.agent_config import AgentEnvironment, agent_environment, config_problems, shutdown_grace_seconds
from agent.lint.containers import Container, containers, health_check_words, is_backend, runs_healthcheck
from agent.lint.documents import TaskDefinition, Unknown
from agent.lint.findings import Code, Finding
from agent.lint.literals import literal_secrets
from agent.lint.value_from import Reference, ValueFromError, parse_value_from, same_secret

# ECS's stop timeout when a container sets none (Fargate; on EC2 ECS_CONTAINER_STOP_TIMEOUT, default 30 s).
DEFAULT_STOP_TIMEOUT_SECONDS = 30
PASSWORD, SECRET_ID, PARAMETER, IAM_AUTH = (
    "AGENT_DB_PASSWORD",
    "AGENT_DB_SECRET_ID",
    "AGENT_DB_PASSWORD_PARAMETER",
    "AGENT_DB_IAM_AUTH",
)
_TRUE = {"1", "true", "t", "yes", "y", "on"}  # what pydantic reads as true (config/inputs.py: a bool)


def lint_task(task: TaskDefinition) -> Iterator[Finding]:
    """The findings of one task definition, in container order."""
    found = containers(task)
    for container in found:
        yield from literal_secrets(task, container)
        yield from _value_froms(task, container)
    agents = [c for c in found if c.runs_the_agent()]
    for agent in agents:
        env = agent_environment(agent)
        yield from config_problems(task, agent, env)
        yield from _health_check(task, agent)
        yield from _stop_timeout(task, agent, env)
        yield from _task_role(task, agent, env)
        yield from _same_secret(task, agent)
        yield from _drift_blind(task, agent, [c for c in found if c not in agents and is_backend(c)])
        for backend in [c for c in found if c not in agents and is_backend(c)]:
            yield from _depends_on(task, backend, agent)


def _value_froms(task: TaskDefinition, container: Container) -> Iterator[Finding]:
    for name, value_from in container.secrets().items():
        if isinstance(value_from, Unknown):
            continue
        try:
            parse_value_from(value_from)
        except ValueFromError as exc:
            field = task.field(f"{container.path}.secrets[{name}].valueFrom")
            yield Finding(task.file, container.name, field, Code.SECRET_ARN, f"{name}: {exc}")


def _health_check(task: TaskDefinition, agent: Container) -> Iterator[Finding]:
    check = agent.body.get("healthCheck")
    field = task.field(f"{agent.path}.healthCheck.command")
    command = check.get("command") if isinstance(check, dict) else None
    if isinstance(command, Unknown):
        return
    words = health_check_words(command)
    if not runs_healthcheck(words):
        yield Finding(
            task.file,
            agent.name,
            field,
            Code.HEALTH_CHECK,
            'the agent container needs healthCheck.command ["CMD", "ecs-health-agent", "healthcheck"]:'
            " a container without that health check is never HEALTHY, so a backend that dependsOn it HEALTHY never"
            " starts, and one that does not starts before the agent listens",
        )
    elif "--ready" in words:
        yield Finding(
            task.file,
            agent.name,
            field,
            Code.HEALTH_CHECK,
            "the container health check is liveness (`ecs-health-agent healthcheck` without --ready): with --ready"
            " a database outage marks the agent UNHEALTHY, and a backend that dependsOn it HEALTHY never starts",
        )


def _depends_on(task: TaskDefinition, backend: Container, agent: Container) -> Iterator[Finding]:
    depends = backend.body.get("dependsOn")
    if isinstance(depends, Unknown):
        return
    entries = [d for d in depends if isinstance(d, dict)] if isinstance(depends, list) else []
    on_agent = [d for d in entries if d.get("containerName") == agent.name]
    if any(d.get("condition") == "HEALTHY" or isinstance(d.get("condition"), Unknown) for d in on_agent):
        return
    condition = on_agent[0].get("condition") if on_agent else None
    found = f" (condition {condition})" if condition else " (no condition)" if on_agent else ""
    yield Finding(
        task.file,
        backend.name,
        task.field(f"{backend.path}.dependsOn"),
        Code.DEPENDS_ON,
        f'the backend does not wait for the agent{found}: add {{"containerName": "{agent.name}",'
        ' "condition": "HEALTHY"}, so a task whose agent cannot start fails within startTimeout',
    )


def _stop_timeout(task: TaskDefinition, agent: Container, env: AgentEnvironment) -> Iterator[Finding]:
    from agent.outputs.log_queue import FLUSH_SECONDS
    from agent.outputs.server import SHUTDOWN_TIMEOUT_SECONDS

    grace = shutdown_grace_seconds(env)
    timeout = agent.body.get("stopTimeout", DEFAULT_STOP_TIMEOUT_SECONDS)
    if grace is None or not isinstance(timeout, int | float) or isinstance(timeout, bool):
        return
    drain = grace + SHUTDOWN_TIMEOUT_SECONDS + FLUSH_SECONDS
    if timeout <= drain:
        given = "stopTimeout" if "stopTimeout" in agent.body else f"the default stopTimeout ({timeout} s)"
        yield Finding(
            task.file,
            agent.name,
            task.field(f"{agent.path}.stopTimeout"),
            Code.STOP_TIMEOUT,
            f"{given} {timeout} s does not outlast the agent's drain: AGENT_SHUTDOWN_GRACE_SECONDS {grace:g} +"
            f" {SHUTDOWN_TIMEOUT_SECONDS:g} s HTTP shutdown + {FLUSH_SECONDS:g} s for the last log lines;"
            f" ECS sends SIGKILL at stopTimeout: set it above {drain:g} s",
        )


def _task_role(task: TaskDefinition, agent: Container, env: AgentEnvironment) -> Iterator[Finding]:
    role = task.body.get("taskRoleArn")
    if isinstance(role, Unknown) or (isinstance(role, str) and role.strip()):
        return
    uses = [n for n in (SECRET_ID, PARAMETER) if n in env.names()]
    iam = env.known.get(IAM_AUTH, "").strip().lower() in _TRUE or IAM_AUTH in env.unknown
    uses += [f"{IAM_AUTH}=true"] if iam else []
    if uses:
        yield Finding(
            task.file,
            agent.name,
            task.field("taskRoleArn"),
            Code.TASK_ROLE,
            f"the agent calls AWS with the task role ({', '.join(uses)}), but the task definition has no"
            " taskRoleArn: every call would fail with no credentials (ecs/task-role-policy.json lists what to grant)",
        )


def _same_secret(task: TaskDefinition, agent: Container) -> Iterator[Finding]:
    """The injected AGENT_DB_PASSWORD and the secret or parameter the agent re-reads must be the same one, or the
    drift check compares the password with another secret's."""
    value_from = agent.secrets().get(PASSWORD)
    if not isinstance(value_from, str):
        return
    try:
        reference = parse_value_from(value_from)
    except ValueFromError:
        return  # reported by _value_froms
    env = agent.environment()
    for name, agrees in ((SECRET_ID, _agrees_secret), (PARAMETER, _agrees_parameter)):
        value = env.get(name)
        if isinstance(value, str) and value.strip() and not agrees(reference, value.strip()):
            yield Finding(
                task.file,
                agent.name,
                task.field(f"{agent.path}.environment[{name}]"),
                Code.SECRET_MISMATCH,
                f"{name} is not where {PASSWORD} comes from (secrets[{PASSWORD}].valueFrom): the agent would"
                " compare the injected password with another secret's; point both at the same one",
            )


def _drift_blind(task: TaskDefinition, agent: Container, backends: list[Container]) -> Iterator[Finding]:
    """The agent re-reads the current password (AGENT_DB_SECRET_ID or AGENT_DB_PASSWORD_PARAMETER) but has no
    AGENT_DB_PASSWORD, while a backend gets its password from `secrets`: db:password_drift compares the value ECS
    injected at start with the current one, so without the injected one a stale backend password goes unseen."""
    if _may_hold(agent, "secrets", PASSWORD) or _may_hold(agent, "environment", PASSWORD):
        return  # given (an AGENT_DB_PASSWORD in environment is secret-literal's finding), or unknown until deploy
    env = agent.environment()
    sources = [n for n in (SECRET_ID, PARAMETER) if isinstance(env.get(n), Unknown) or str(env.get(n, "")).strip()]
    found = [(b, name) for b in backends for name in _password_secrets(b, env)]
    if not sources or not found:
        return  # the agent reads no password source, or no backend password is injected (IAM auth, a file, ...)
    backend, name = found[0]
    yield Finding(
        task.file,
        agent.name,
        task.field(f"{agent.path}.secrets"),
        Code.DRIFT_BLIND,
        f"the agent re-reads the current password ({', '.join(sources)}) but is not given the one ECS injected"
        f" into the task (no secrets[{PASSWORD}]), so it cannot detect a stale password in the backend"
        f" (db:password_drift, the incident): give the agent the same `secrets` entry as container"
        f" {backend.name}'s {name}, named {PASSWORD}",
    )


def _may_hold(container: Container, key: str, name: str) -> bool:
    """Whether `key` (environment or secrets) has `name`, or may have it once deployed (an intrinsic)."""
    entries = container.body.get(key)
    if isinstance(entries, Unknown):
        return True
    listed = entries if isinstance(entries, list) else []
    return any(isinstance(e, Unknown) for e in listed) or name in _names(container, key)


def _names(container: Container, key: str) -> set[str]:
    return set(container.secrets() if key == "secrets" else container.environment())


def _password_secrets(backend: Container, agent_env: dict[str, str | Unknown]) -> list[str]:
    """The backend's `secrets` names that hold the database password: the secret or parameter the agent re-reads
    (first), or any name with PASSWORD or PASSWD in it."""
    same, named = [], []
    for name, value_from in backend.secrets().items():
        if isinstance(value_from, str) and _reads_same(value_from, agent_env):
            same.append(name)
        elif "PASSWORD" in name.upper() or "PASSWD" in name.upper():
            named.append(name)
    return same + named


def _reads_same(value_from: str, agent_env: dict[str, str | Unknown]) -> bool:
    try:
        reference = parse_value_from(value_from)
    except ValueFromError:
        return False  # reported by _value_froms
    secret_id, parameter = agent_env.get(SECRET_ID), agent_env.get(PARAMETER)
    return (
        isinstance(secret_id, str) and bool(secret_id.strip()) and _agrees_secret(reference, secret_id.strip())
    ) or (isinstance(parameter, str) and bool(parameter.strip()) and _agrees_parameter(reference, parameter.strip()))


def _agrees_secret(reference: Reference, secret_id: str) -> bool:
    return reference.secret is not None and same_secret(reference.secret, secret_id)


def _agrees_parameter(reference: Reference, parameter: str) -> bool:
    if reference.parameter is None:
        return False
    try:
        given = parse_value_from(parameter).parameter
    except ValueFromError:
        return False
    return given == reference.parameter
