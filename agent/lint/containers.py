"""The containers of a task definition, and which of them is the agent.

The agent is a container that runs ecs-health-agent: its image repository is named `ecs-health-agent`, or its
entryPoint, command or healthCheck runs `ecs-health-agent` (or `python -m agent`), or it sets a variable the agent
reads (AGENT_DB_DSN, AGENT_DB_PASSWORD, ...: the names of config/inputs.py, not just any AGENT_* prefix, which
other software uses too). Every other essential container that is not a FireLens log router is a backend: it must
wait for the agent to be HEALTHY.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from agent.lint.documents import TaskDefinition, Unknown

PROGRAM = "ecs-health-agent"
# Names of the agent's variables that no other configuration would hold; the full list is config/inputs.py's.
_AGENT_ONLY = ("AGENT_DB_DSN", "AGENT_DB_PASSWORD", "AGENT_DB_SECRET_ID", "AGENT_DB_IAM_AUTH", "AGENT_APP_URL")
_PARAMETER = "AGENT_DB_PASSWORD_PARAMETER"

Value = str | Unknown


@dataclass(frozen=True)
class Container:
    """One entry of containerDefinitions: its index, name and body (ECS API shape)."""

    index: int
    name: str
    body: dict[str, Any]

    @property
    def path(self) -> str:
        return f"containerDefinitions[{self.index}]"

    def environment(self) -> dict[str, Value]:
        """`environment` as name -> value (an intrinsic: Unknown); entries without a plain name are skipped."""
        return _pairs(self.body.get("environment"), "value")

    def secrets(self) -> dict[str, Value]:
        """`secrets` as name -> valueFrom."""
        return _pairs(self.body.get("secrets"), "valueFrom")

    def runs_the_agent(self) -> bool:
        image = self.body.get("image")
        if isinstance(image, str) and _repository(image) == PROGRAM:
            return True
        if any(_runs_program(words) for words in self._command_lines()):
            return True
        names = {*self.environment(), *self.secrets()}
        return any(name in names for name in (*_AGENT_ONLY, _PARAMETER))

    def _command_lines(self) -> list[list[str]]:
        lines = []
        for key in ("entryPoint", "command"):
            words = self.body.get(key)
            if isinstance(words, list):
                lines.append([w for w in words if isinstance(w, str)])
        check = self.body.get("healthCheck")
        if isinstance(check, dict):
            lines.append(health_check_words(check.get("command")))
        return lines


def containers(task: TaskDefinition) -> list[Container]:
    """The task definition's containers that have a name (ECS requires one)."""
    definitions = task.body.get("containerDefinitions")
    if not isinstance(definitions, list):
        return []
    named = [(i, c) for i, c in enumerate(definitions) if isinstance(c, dict) and isinstance(c.get("name"), str)]
    return [Container(i, c["name"], c) for i, c in named]


def is_backend(container: Container) -> bool:
    """Essential (ECS's default is true) and not a FireLens log router, which must start before everything."""
    return container.body.get("essential", True) is not False and "firelensConfiguration" not in container.body


def health_check_words(command: Any) -> list[str]:
    """A healthCheck command as words: ["CMD", "prog", "arg"] -> [prog, arg]; ["CMD-SHELL", "prog arg"] split as
    a shell would (ECS docs: CMD runs the command directly, CMD-SHELL with the container's default shell)."""
    if not isinstance(command, list) or not command or not all(isinstance(w, str) for w in command):
        return []
    if command[0] == "CMD-SHELL":
        try:
            return shlex.split(" ".join(command[1:]))
        except ValueError:
            return []
    return command[1:] if command[0] == "CMD" else command


def runs_healthcheck(words: list[str]) -> bool:
    """`ecs-health-agent healthcheck ...` or `python -m agent healthcheck ...` (any path to either)."""
    for i, word in enumerate(words):
        if word.rsplit("/", 1)[-1] == PROGRAM or words[i : i + 2] == ["-m", "agent"]:
            rest = words[i + 1 :] if word != "-m" else words[i + 2 :]
            return bool(rest) and rest[0] == "healthcheck"
    return False


def _runs_program(words: list[str]) -> bool:
    return any(w.rsplit("/", 1)[-1] == PROGRAM for w in words) or "-m agent" in " ".join(words)


def _repository(image: str) -> str:
    """registry/path/NAME:tag@digest -> NAME."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.split(":", 1)[0]


def _pairs(entries: Any, key: str) -> dict[str, Value]:
    pairs: dict[str, Value] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            value = entry.get(key)
            pairs[entry["name"]] = value if isinstance(value, str | Unknown) else "" if value is None else str(value)
    return pairs
