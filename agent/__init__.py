"""ecs-health-agent: proves an ECS task can reach its database, and says why when it cannot."""

from __future__ import annotations

DISTRIBUTION = "ecs-health-agent"
# Running from a source tree that was never installed: there is no package metadata to read.
UNKNOWN_VERSION = "0+unknown"


def __getattr__(name: str) -> str:
    """`__version__`: pyproject's `version`, read from the installed distribution's metadata on first use.

    Lazy (PEP 562) because importlib.metadata and the dist-info lookup cost tens of milliseconds that the
    `healthcheck` command, run by ECS every interval, must not pay. Raises AttributeError for any other name.
    """
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version(DISTRIBUTION)
    except PackageNotFoundError:
        found = UNKNOWN_VERSION
    globals()["__version__"] = found  # later reads find it without coming back here
    return found
