"""The Dockerfile read as Docker reads it (no engine here): instructions, stages, exec-form arguments."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


@dataclass(frozen=True, slots=True)
class Instruction:
    keyword: str
    args: str


def instructions() -> list[Instruction]:
    """Dockerfile instructions with line continuations joined and comments dropped."""
    joined, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        joined.append(current + line)
        current = ""
    return [Instruction(*[*text.split(None, 1), ""][:2]) for text in joined]


def stages() -> list[list[Instruction]]:
    """The instructions of each build stage, in order (ARGs before the first FROM are left out)."""
    result: list[list[Instruction]] = []
    for instruction in instructions():
        if instruction.keyword.upper() == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def final(keyword: str) -> list[Instruction]:
    """The instructions with this keyword in the final (runtime) stage."""
    return [i for i in stages()[-1] if i.keyword.upper() == keyword]


def exec_form(args: str) -> list[str]:
    """A JSON-array (exec form) argument list, or fail: shell form would wrap the agent in /bin/sh."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value
