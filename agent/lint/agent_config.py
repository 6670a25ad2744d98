"""The agent container's own configuration, read by the agent's configuration code (config/load.py), so a
problem reads exactly as `serve` would print it before exiting 2.

What the file cannot say is never a problem: a value from `secrets` (ECS injects it at start), a CloudFormation
intrinsic (resolved at deploy time), and AWS_REGION when the task does not set it (ECS sets it in containers).
Each gets a stand-in value, and a problem about one of them (its line starts with the name) is dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from agent.lint.containers import Container
from agent.lint.documents import TaskDefinition, Unknown
from agent.lint.findings import Code, Finding

STAND_IN = "set-when-the-task-starts"
_SET_BY_ECS = ("AWS_REGION", "AWS_DEFAULT_REGION")


@dataclass(frozen=True)
class AgentEnvironment:
    """The agent container's variables: `known` values from the file, `unknown` names (from `secrets`, from
    intrinsics, or set by ECS) whose values only exist in a running task."""

    known: dict[str, str]
    unknown: frozenset[str]

    def names(self) -> frozenset[str]:
        return frozenset(self.known) | self.unknown


def agent_environment(container: Container) -> AgentEnvironment:
    known = {n: v for n, v in container.environment().items() if isinstance(v, str)}
    unknown = {n for n, v in container.environment().items() if isinstance(v, Unknown)}
    unknown |= set(container.secrets()) - set(known)
    unknown |= {n for n in _SET_BY_ECS if n not in known}
    return AgentEnvironment(known, frozenset(unknown))


def config_problems(task: TaskDefinition, container: Container, env: AgentEnvironment) -> Iterator[Finding]:
    """One finding per line `serve` would print for this environment (config/build.py's wording)."""
    from agent.config.load import config_from_environment
    from agent.config.models import ConfigError

    try:
        config_from_environment({**dict.fromkeys(env.unknown, STAND_IN), **env.known})
    except ConfigError as exc:
        for problem in exc.problems:
            name = problem.split(":", 1)[0]  # "FIELD: what is wrong" (config/build.py)
            if name in env.unknown:
                continue
            at = f"environment[{name}]" if name in env.known else "environment"
            field = task.field(f"{container.path}.{at}")
            message = f"`serve` would exit 2 (invalid configuration): {problem}"
            yield Finding(task.file, container.name, field, Code.AGENT_CONFIG, message)


def shutdown_grace_seconds(env: AgentEnvironment) -> float | None:
    """AGENT_SHUTDOWN_GRACE_SECONDS as the agent reads it (its default when unset); None when unknown or invalid
    (config_problems reports an invalid one)."""
    from agent.config.models import AgentConfig

    name = "AGENT_SHUTDOWN_GRACE_SECONDS"
    if name in env.unknown:
        return None
    if name not in env.known:
        default: float = AgentConfig.model_fields["shutdown_grace_seconds"].default
        return default
    try:
        return float(env.known[name])
    except ValueError:
        return None
