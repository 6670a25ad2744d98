"""Shared fixtures: real databases and AWS stand-ins live in tests/support/ as plugins."""

pytest_plugins = ["tests.support.databases", "tests.support.aws"]
