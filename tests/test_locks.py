"""The lock files (requirements/, written by scripts/lock.sh) agree with pyproject.toml, with each other and with
this environment: the image gets the runtime dependencies only, at the versions the tests ran with."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from tests.support.locks import (
    BUILD_LOCK,
    DEV_LOCK,
    RUNTIME_LOCK,
    SANDBOX_LOCK,
    Pin,
    build_requires,
    dependencies,
    extra,
    pins,
)

LOCKS = [RUNTIME_LOCK, DEV_LOCK, SANDBOX_LOCK, BUILD_LOCK]


def assert_pinned_within_range(declared: list[Requirement], locked: dict[NormalizedName, Pin]) -> None:
    for requirement in declared:
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is declared in pyproject.toml but not pinned"
        assert requirement.specifier.contains(locked[name].version, prereleases=True), (
            f"{name}=={locked[name].version} is outside the declared {requirement}"
        )


def closure(declared: list[Requirement]) -> set[NormalizedName]:
    """The declared requirements and everything they need here, read from the installed packages' metadata."""
    expanded: set[tuple[NormalizedName, frozenset[str]]] = set()
    pending = [(requirement, "") for requirement in declared]
    while pending:
        requirement, wanted_by = pending.pop()  # wanted_by: the extra of the requiring package it was listed under
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": wanted_by}):
            continue
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in expanded:
            continue
        expanded.add(key)
        for text in metadata.requires(key[0]) or []:
            pending += [(Requirement(text), wanted) for wanted in ["", *sorted(key[1])]]
    return {name for name, _ in expanded}


@pytest.mark.parametrize("lock", LOCKS, ids=lambda lock: lock.name)
def test_every_pin_is_exact_and_carries_hashes(lock: Path) -> None:
    """pip's --require-hashes refuses a lock with a loose or unhashed line; catch it here, before an image build."""
    locked = pins(lock)  # fails on a line that is not `name==version`
    assert locked
    assert [pin.name for pin in locked.values() if not pin.hashes] == []


def test_the_runtime_lock_pins_every_declared_dependency_within_its_range() -> None:
    assert_pinned_within_range(dependencies(), pins(RUNTIME_LOCK))


def test_the_runtime_lock_holds_exactly_what_the_runtime_dependencies_need() -> None:
    """No moto, no dev tool, nothing stale: the pins are the declared dependencies' closure, no more, no less."""
    locked = set(pins(RUNTIME_LOCK))
    needed = closure(dependencies())
    assert locked == needed, f"stale: {sorted(locked - needed)}; missing: {sorted(needed - locked)}"
    extras_only = {canonicalize_name(r.name) for name in ("sandbox", "dev") for r in extra(name)}
    assert "moto" in extras_only and not extras_only & locked


def test_the_image_runs_the_versions_the_tests_ran_with() -> None:
    """runtime.txt is resolved under dev.txt's constraint: each of its pins is the dev lock's, hashes included."""
    dev = pins(DEV_LOCK)
    for name, pin in pins(RUNTIME_LOCK).items():
        assert name in dev, f"{name} is in the image but not in the tests' environment"
        assert (pin.version, set(pin.hashes)) == (dev[name].version, set(dev[name].hashes)), name


def test_the_demo_runs_the_versions_the_tests_ran_with() -> None:
    """sandbox.txt (what scripts/setup-demo.sh installs) is the runtime plus the sandbox extra, each pin the dev lock's,
    and no dev tool: the demo does not install pytest, ruff or mypy (cfn-lint it does: moto[server] needs it)."""
    dev, sandbox = pins(DEV_LOCK), pins(SANDBOX_LOCK)
    for name, pin in sandbox.items():
        assert name in dev and (pin.version, set(pin.hashes)) == (dev[name].version, set(dev[name].hashes)), name
    assert_pinned_within_range(dependencies() + extra("sandbox"), sandbox)
    assert not {canonicalize_name(tool) for tool in ("pytest", "ruff", "mypy")} & set(sandbox)


def test_the_dev_lock_pins_the_dev_extra_within_its_range() -> None:
    assert_pinned_within_range(dependencies() + extra("dev"), pins(DEV_LOCK))


def test_this_environment_is_the_dev_lock() -> None:
    """scripts/setup.sh installs requirements/dev.txt: the tests run with exactly those versions."""
    drifted = {}
    for name, pin in pins(DEV_LOCK).items():
        if not pin.applies_here():
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "not installed"
        if installed != pin.version:
            drifted[name] = f"{installed}, locked {pin.version}"
    assert drifted == {}, "run scripts/setup.sh"


def test_the_build_lock_pins_the_build_backend_and_the_installer() -> None:
    locked = pins(BUILD_LOCK)
    assert_pinned_within_range(build_requires(), locked)
    assert set(locked) == {"pip"} | {canonicalize_name(r.name) for r in build_requires()}


def test_aiobotocore_is_held_to_the_major_version_the_tests_ran_with() -> None:
    """The agent uses aiobotocore's private API (agent/shared/private_api.py): no other major version admitted."""
    (declared,) = [r for r in dependencies() if r.name == "aiobotocore"]
    locked = Version(pins(RUNTIME_LOCK)[canonicalize_name("aiobotocore")].version)
    assert declared.specifier.contains(locked)
    assert not declared.specifier.contains(f"{locked.major + 1}.0.0")
    assert not declared.specifier.contains(f"{locked.major - 1}.999.999")
