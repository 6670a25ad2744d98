"""Runs last in the fault suite (file order): no distinctive secret handed to any agent of this session shows up,
not even by its first four characters, in anything those agents printed or answered over HTTP (metrics
included). Each agent is also checked when it stops; this sweep covers the session as a whole."""

from __future__ import annotations

import pytest

from tests.faults.hygiene import CAPTURED, DISTINCTIVE, PREFIX_CHECKED, leaks


def test_no_distinctive_secret_or_its_prefix_in_any_output_of_the_session() -> None:
    if not CAPTURED:
        pytest.skip("no fault-suite agent ran in this session (run the whole tests/faults directory)")
    kinds = set(DISTINCTIVE.values())
    assert any("password" in k for k in kinds) and any("secret access key" in k for k in kinds)
    assert any("session token" in k for k in kinds)
    found = [f"{name}: {', '.join(hits)}" for name, text in CAPTURED if (hits := leaks(text))]
    assert not found, f"secret material (first {PREFIX_CHECKED} characters or more) leaked:\n" + "\n".join(found)
