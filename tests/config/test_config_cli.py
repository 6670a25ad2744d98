"""Configuration edges as a user meets them: the real `ecs-health-agent` process, its exit code and its stderr.

Exit 2 with one line per problem, naming the variable or YAML path; never a hang, a traceback, exit 70 or 1, a
value echoed whole, a part of a password, or a DNS lookup of a piece of one (the tests' resolver records every
name looked up: tests/support/hermetic.py).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.support.agent_process import run_agent
from tests.support.hermetic import refusals
from tests.support.secrets import remember

WORKS = {"AGENT_DB_DSN": "postgresql://app@127.0.0.1:5432/x", "AGENT_DB_PASSWORD": remember("pw-Hs4-config-cli")}


def exits_2(*args: str, env: dict[str, str]) -> str:
    """Run the command; assert exit 2 without a traceback; return stderr."""
    started = time.monotonic()
    proc = run_agent(*args, env=env, timeout=30)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr + proc.stdout and "internal error" not in proc.stderr
    assert time.monotonic() - started < 30
    return proc.stderr


@pytest.mark.parametrize(
    ("dsn", "pieces"),
    [
        ("postgresql://app:pa/ss-w0rd@127.0.0.1:5432/db", ("pa/ss", "ss-w0rd", "port is not a number")),
        ("mysql://u:p@ss/w%rd@127.0.0.1:3306/db", ("p@ss", "w%rd", "'ss'")),
    ],
)
@pytest.mark.parametrize("command", ["check", "serve"])
def test_a_reserved_character_in_a_dsn_password_is_exit_2_naming_the_class(
    command: str, dsn: str, pieces: tuple[str, ...]
) -> None:
    stderr = exits_2(command, env={"AGENT_DB_DSN": dsn})
    assert "  - AGENT_DB_DSN: the DSN's password holds a character that must be percent-encoded in a URL" in stderr
    assert "'/' as %2F" in stderr and "set AGENT_DB_PASSWORD" in stderr
    assert not [piece for piece in pieces if piece in stderr]
    assert not [r for r in refusals() if r["name"] in ("ss", "p")], "a piece of the password was looked up"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sslMode=require", "AGENT_DB_DSN: unknown parameter 'sslMode' (did you mean sslmode?): accepted are"),
        ("ssl_mode=require", "AGENT_DB_DSN: unknown parameter 'ssl_mode'"),
        ("ssl-mode=STRICT", "AGENT_DB_DSN: ssl-mode 'STRICT' is not one of DISABLED, PREFERRED, REQUIRED"),
    ],
)
def test_a_tls_parameter_the_agent_does_not_know_is_exit_2_naming_it(query: str, expected: str) -> None:
    stderr = exits_2("check", env={**WORKS, "AGENT_DB_DSN": f"mysql+aiomysql://u@127.0.0.1:3306/db?{query}"})
    assert expected in stderr


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("a..b", "AGENT_HOST: 'a..b' is not a host name"),  # was exit 70, "internal error: UnicodeError"
        ("[::1]", "AGENT_HOST: '[::1]': write an IPv6 address without brackets (::1)"),  # was exit 1
    ],
)
def test_an_invalid_agent_host_is_exit_2(host: str, expected: str) -> None:
    assert f"  - {expected}" in exits_2("serve", env={**WORKS, "AGENT_HOST": host})


def test_a_fifo_as_config_is_exit_2_at_once(tmp_path: Path) -> None:
    """It used to wait forever for a writer."""
    fifo = tmp_path / "agent.yaml"
    os.mkfifo(fifo)
    stderr = exits_2("serve", "--config", str(fifo), env={})
    assert f"  - --config {fifo}: is a FIFO, not a regular file" in stderr


def test_dev_zero_as_config_is_exit_2_without_reading_it() -> None:
    """It used to be read until the process held 1.9 GB."""
    assert "  - --config /dev/zero: is a character device, not a regular file" in exits_2(
        "check", "--config", "/dev/zero", env={}
    )


def test_a_config_file_over_1_mib_is_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_bytes(b"# padding\n" * 110_000)
    assert f"  - --config {path}: larger than 1 MiB" in exits_2("check", "--config", str(path), env={})


def test_a_connection_name_given_twice_is_exit_2(tmp_path: Path) -> None:
    """PyYAML keeps the last of two equal keys: a target silently went missing."""
    path = tmp_path / "agent.yaml"
    path.write_text(
        "database:\n  connections:\n    writer: {dsn: 'postgresql://app@127.0.0.1/a'}\n"
        "    writer: {dsn: 'postgresql://app@127.0.0.1/b'}\n"
    )
    stderr = exits_2("check", "--config", str(path), env={"AGENT_DB_PASSWORD": WORKS["AGENT_DB_PASSWORD"]})
    assert "  - database.connections: key 'writer' is given 2 times (lines 3, 4)" in stderr


def test_an_unknown_key_in_a_connection_is_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("database:\n  connections:\n    legacy:\n      dsn: mysql://u@127.0.0.1/db\n      secretid: x\n")
    stderr = exits_2("check", "--config", str(path), env={"AGENT_DB_PASSWORD": WORKS["AGENT_DB_PASSWORD"]})
    assert "  - database.connections.legacy: unknown key 'secretid' (did you mean secret_id?)" in stderr


def test_more_than_100_connections_is_exit_2_naming_the_count_and_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    rows = "".join(f"    c{i}: {{dsn: 'postgresql://app@127.0.0.1/d{i}'}}\n" for i in range(101))
    path.write_text("database:\n  connections:\n" + rows)
    stderr = exits_2("check", "--config", str(path), env={"AGENT_DB_PASSWORD": WORKS["AGENT_DB_PASSWORD"]})
    assert "  - database.connections: 101 connections, more than the 100 one agent probes" in stderr


def test_a_100_kb_value_is_echoed_cut_to_length() -> None:
    stderr = exits_2("check", env={**WORKS, "AGENT_LOG_LEVEL": "loud" * 25_000})
    assert "AGENT_LOG_LEVEL: 'loudloud" in stderr and "... (100000 characters) is not one of debug" in stderr
    assert len(stderr) < 1000


def test_an_oversized_environment_value_is_still_one_short_line() -> None:
    """A value with a line break and 100 KB: quoted (the break escaped) and cut."""
    stderr = exits_2("check", env={**WORKS, "AGENT_HOST": "a..b\n" + "x" * 100_000})
    assert "  - AGENT_HOST: 'a..b\\nxxx" in stderr and "(100005 characters)" in stderr
    assert len(stderr) < 1000 and stderr.count("\n") == 2, stderr[:500]


def test_check_json_with_invalid_configuration_prints_a_json_document() -> None:
    """A script reading `check --json`'s stdout gets a document for a bad configuration too (stderr keeps the lines
    a person reads), and exit 2."""
    proc = run_agent("check", "--json", env={"AGENT_DB_DSN": "postgresql://app@127.0.0.1:5432/x"}, timeout=30)
    assert proc.returncode == 2, proc.stderr
    document = json.loads(proc.stdout)
    assert (document["ok"], document["error"]) == (False, "invalid configuration")
    assert [p for p in document["problems"] if "no credential source" in p], document
    assert "ecs-health-agent: invalid configuration:" in proc.stderr
