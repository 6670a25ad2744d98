"""The lock files in requirements/ (written by scripts/lock.sh) and pyproject.toml's ranges, read as pip reads them."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO / "requirements"
RUNTIME_LOCK = REQUIREMENTS / "runtime.txt"
SANDBOX_LOCK = REQUIREMENTS / "sandbox.txt"
DEV_LOCK = REQUIREMENTS / "dev.txt"
BUILD_LOCK = REQUIREMENTS / "build.txt"
_HASH = re.compile(r"--hash=(sha256:[0-9a-f]{64})")


@dataclass(frozen=True, slots=True)
class Pin:
    """One locked requirement: `name==version`, an optional environment marker, and the accepted file hashes."""

    name: NormalizedName
    version: str
    marker: Marker | None
    hashes: tuple[str, ...]

    def applies_here(self) -> bool:
        """Whether pip on this machine installs it (its marker holds here)."""
        return self.marker is None or self.marker.evaluate()


def pins(lock: Path) -> dict[NormalizedName, Pin]:
    """Every requirement of a lock file by normalized name; fails on anything but an exact, hashed pin."""
    entries: dict[NormalizedName, Pin] = {}
    logical = re.sub(r"\\\n", " ", lock.read_text())  # join continuation lines, as pip does
    for line in logical.splitlines():
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        spec = _HASH.sub("", text).strip()
        requirement = Requirement(spec)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{lock.name}: {spec} is not an exact pin"
        name = canonicalize_name(requirement.name)
        assert name not in entries, f"{lock.name}: {name} pinned twice"
        entries[name] = Pin(name, specifier.version, requirement.marker, tuple(_HASH.findall(text)))
    return entries


def pyproject() -> dict[str, Any]:
    """pyproject.toml, parsed."""
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def dependencies() -> list[Requirement]:
    """pyproject's [project] dependencies: what the image needs."""
    return [Requirement(text) for text in pyproject()["project"]["dependencies"]]


def extra(name: str) -> list[Requirement]:
    """One extra of [project.optional-dependencies], e.g. `dev` or `sandbox`."""
    return [Requirement(text) for text in pyproject()["project"]["optional-dependencies"][name]]


def build_requires() -> list[Requirement]:
    """pyproject's [build-system] requires: the wheel's build backend."""
    return [Requirement(text) for text in pyproject()["build-system"]["requires"]]
