"""The Dockerfile read as Docker reads it (no engine here): instructions, stages, exec-form arguments, the pip
commands of its RUN lines, and the build context after .dockerignore."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

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


def stage_named(name: str) -> list[Instruction]:
    """The stage `FROM ... AS name` (fail if there is none)."""
    found = [stage for stage in stages() if stage[0].args.split()[-1] == name and " AS " in stage[0].args.upper()]
    assert len(found) == 1, f"no single build stage named {name}"
    return found[0]


def env(stage: list[Instruction]) -> dict[str, str]:
    """The variables a stage's ENV instructions set (KEY=value form, continuations joined)."""
    values: dict[str, str] = {}
    for instruction in (i for i in stage if i.keyword.upper() == "ENV"):
        values |= dict(word.split("=", 1) for word in shlex.split(instruction.args))
    return values


def arg_defaults(stage: list[Instruction] | None = None) -> dict[str, str]:
    """ARG defaults: those before the first FROM, or a stage's own (`ARG NAME` alone declares no default)."""
    if stage is None:
        stage = instructions()[: _first_from()]
    pairs = (i.args.split("=", 1) for i in stage if i.keyword.upper() == "ARG" and "=" in i.args)
    return {name: value for name, value in pairs}


def _first_from() -> int:
    return next(n for n, i in enumerate(instructions()) if i.keyword.upper() == "FROM")


def exec_form(args: str) -> list[str]:
    """A JSON-array (exec form) argument list, or fail: shell form would wrap the agent in /bin/sh."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


# pip options that take a value as the next word; the long and short spellings of one option are merged.
_PIP_VALUED = {
    "-r": "-r",
    "--requirement": "-r",
    "-c": "-c",
    "--constraint": "-c",
    "--python": "--python",
    "-w": "--wheel-dir",
    "--wheel-dir": "--wheel-dir",
    "--only-binary": "--only-binary",
    "--no-binary": "--no-binary",
    "-t": "--target",
    "--target": "--target",
    "--prefix": "--prefix",
    "--root": "--root",
    "-i": "--index-url",
    "--index-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "-f": "--find-links",
    "--find-links": "--find-links",
}


@dataclass(frozen=True, slots=True)
class PipCall:
    """One pip command of a RUN line: the Python whose environment it changes, its action, options, arguments."""

    interpreter: str  # `python` (the stage's own), or e.g. /opt/venv/bin/python
    action: str  # install, wheel, ...
    flags: frozenset[str]  # options without a value, e.g. --no-deps
    values: dict[str, list[str]] = field(default_factory=dict)  # e.g. {"-r": ["requirements/runtime.txt"]}
    arguments: tuple[str, ...] = ()  # what it installs or builds besides requirement files


def pip_calls(stage: list[Instruction]) -> list[PipCall]:
    """Every pip command in a stage's RUN instructions (`python -m pip`, `pip`, `/venv/bin/pip`)."""
    calls = []
    for run in (i for i in stage if i.keyword.upper() == "RUN"):
        for command in re.split(r"&&|\|\||;", run.args):
            words = shlex.split(command)
            if words[1:3] == ["-m", "pip"]:
                interpreter, rest = words[0], words[3:]
            elif words and PurePosixPath(words[0]).name in {"pip", "pip3"}:
                venv_bin = PurePosixPath(words[0]).parent
                interpreter, rest = ("python" if str(venv_bin) == "." else str(venv_bin / "python")), words[1:]
            else:
                continue
            calls.append(_pip_call(interpreter, rest))
    return calls


def _pip_call(interpreter: str, words: list[str]) -> PipCall:
    flags: set[str] = set()
    values: dict[str, list[str]] = {}
    positional: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        name, has_value, value = word.partition("=")
        if word in _PIP_VALUED:
            values.setdefault(_PIP_VALUED[word], []).append(words[index + 1])
            index += 1
        elif word.startswith("-") and has_value:
            values.setdefault(_PIP_VALUED.get(name, name), []).append(value)
        elif word.startswith("-"):
            flags.add(word)
        else:
            positional.append(word)
        index += 1
    interpreter = values.pop("--python", [interpreter])[-1]
    return PipCall(interpreter, positional[0], frozenset(flags), values, tuple(positional[1:]))


def ignore_patterns() -> list[str]:
    """The .dockerignore patterns (comments and blank lines dropped; `!` exceptions are not modelled)."""
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "exceptions are not modelled by these tests"
    return patterns


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore excludes a context path (its patterns, `**` and directory prefixes; no `!`)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    return any(
        fnmatch.fnmatch(prefix, pattern) or fnmatch.fnmatch(prefix, pattern.removeprefix("**/"))
        for pattern in patterns
        for prefix in prefixes
    )


def copied_files() -> list[str]:
    """Every context file (relative path) that a COPY of the build stages takes in, after .dockerignore."""
    patterns = ignore_patterns()
    files: set[str] = set()
    for copy in (i for i in instructions() if i.keyword.upper() == "COPY" and "--from=" not in i.args):
        for source in copy.args.split()[:-1]:
            root = REPO / source
            found = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
            files.update(str(p.relative_to(REPO)) for p in found)
    return sorted(f for f in files if not ignored(f, patterns))
