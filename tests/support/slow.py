"""The `--run-slow` switch for tests marked `slow` (the full fault matrix, the long soak).

A plugin, not a conftest hook: pytest reads `pytest_addoption` only from plugins and the rootdir's conftest.
Registered by `pytest_plugins` in tests/conftest.py, or ad hoc with `-p tests.support.slow`. EHA_FULL_FAULTS=1
does the same without the option (for a CI job that cannot change the command line). Skipped slow tests are
listed by `-ra` with the reason, so a short run never passes silently over them.
"""

from __future__ import annotations

import os

import pytest

OPTION = "--run-slow"
ENV = "EHA_FULL_FAULTS"
SKIP_REASON = f"slow: run with {OPTION} or {ENV}=1"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(OPTION, action="store_true", default=False, help="also run tests marked slow (long soak, ...)")


def full_run(config: pytest.Config) -> bool:
    """Whether this run includes slow tests (--run-slow, when the plugin is loaded, or EHA_FULL_FAULTS=1)."""
    return bool(config.getoption(OPTION, default=False)) or os.environ.get(ENV, "") == "1"


def skip_slow(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every `slow` test as skipped (with the reason) unless this is a full run."""
    if full_run(config):
        return
    marker = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(marker)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_slow(config, items)
