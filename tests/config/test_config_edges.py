"""Configuration edges (issues 12 section 8 and 13 section 1): which value wins, where a password came from, keys
the agent would silently lose, the --config file's bounds, the listen address, the target cap, cut echoes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config.build import MAX_TARGETS
from agent.config.config_file import MAX_CONFIG_BYTES
from agent.config.facts import target_facts
from agent.config.hosts import host_problem, is_ip
from agent.config.load import load_config
from agent.config.models import MAX_PROBLEM_CHARACTERS, AgentConfig, ConfigError, TargetConfig

APP_PW, LEGACY_PW = "apppw-Yt5-global", "legacypw-Rw2-own"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:legacy-AbCdEf"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("AGENT_") or key in ("AWS_REGION", "AWS_DEFAULT_REGION", "LOG_LEVEL"):
            monkeypatch.delenv(key)


def load(monkeypatch: pytest.MonkeyPatch, path: Path | None = None, **env: str) -> AgentConfig:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_config(path)


def problems(monkeypatch: pytest.MonkeyPatch, path: Path | None = None, **env: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(monkeypatch, path, **env)
    return caught.value.problems


def yaml_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    return path


def by_name(config: AgentConfig) -> dict[str, TargetConfig]:
    return {t.name: t for t in config.targets}


# -- precedence: a connection's own user and password win over the globals -----------------------------------

TWO_CONNECTIONS = f"""
database:
  connections:
    writer:
      dsn: postgresql://db.internal:5432/app
    legacy:
      dsn: mysql://legacy:{LEGACY_PW}@127.0.0.1:3306/db
"""


def test_a_connections_own_user_and_password_win_over_the_globals(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The issue's case: `legacy` logged in as `app` with the global password, a false PASS for the wrong account."""
    config = load(monkeypatch, yaml_file(tmp_path, TWO_CONNECTIONS), AGENT_DB_USER="app", AGENT_DB_PASSWORD=APP_PW)
    targets = by_name(config)
    legacy, writer = targets["legacy"], targets["writer"]
    assert legacy.user == "legacy" and legacy.password is not None
    assert legacy.password.get_secret_value() == LEGACY_PW
    assert legacy.password_from == "the password in database.connections.legacy.dsn"
    assert writer.user == "app" and writer.password is not None  # sets nothing of its own: the globals apply
    assert writer.password.get_secret_value() == APP_PW and writer.password_from == "AGENT_DB_PASSWORD"


def test_a_connection_with_its_own_secret_takes_no_global_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    text = f"database:\n  connections:\n    legacy:\n      dsn: mysql://legacy@db/x\n      secret_id: {SECRET_ARN}\n"
    (target,) = load(monkeypatch, yaml_file(tmp_path, text), AGENT_DB_PASSWORD=APP_PW).targets
    assert (target.password, target.secret_id, target.iam_auth) == (None, SECRET_ARN, False)


def test_a_connection_with_iam_takes_no_global_password(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    text = "database:\n  connections:\n    w:\n      dsn: postgresql://u@db/x\n      aws_iam_auth: {enabled: true}\n"
    (target,) = load(monkeypatch, yaml_file(tmp_path, text), AGENT_DB_PASSWORD=APP_PW, AWS_REGION="eu-west-1").targets
    assert (target.password, target.iam_auth) == (None, True)


def test_in_the_environment_agent_db_password_and_user_win_over_the_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    """One DSN in AGENT_DB_DSN: the variables override it, as docs/configuration.md says for AGENT_DB_USER."""
    dsn = f"mysql://legacy:{LEGACY_PW}@127.0.0.1:3306/db"
    (target,) = load(monkeypatch, AGENT_DB_DSN=dsn, AGENT_DB_USER="app", AGENT_DB_PASSWORD=APP_PW).targets
    assert target.user == "app" and target.password is not None
    assert (target.password.get_secret_value(), target.password_from) == (APP_PW, "AGENT_DB_PASSWORD")


def test_the_password_source_names_where_the_password_really_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    """A DSN password (with %41 decoded) is blamed on the DSN, not on an unset AGENT_DB_PASSWORD."""
    (target,) = load(monkeypatch, AGENT_DB_DSN="postgresql://app:p%41ss-Kq3@db/x").targets
    assert target.password is not None and target.password.get_secret_value() == "pAss-Kq3"
    facts = target_facts(target)
    assert facts["password_source"] == "the password in AGENT_DB_DSN"
    assert facts["static_password"] == "the password in AGENT_DB_DSN"
    monkeypatch.setenv("AGENT_DB_SECRET_ID", SECRET_ARN)
    (target,) = load(monkeypatch, AGENT_DB_DSN="postgresql://app@db/x").targets
    assert target_facts(target)["password_source"] == f"secret {SECRET_ARN}"


@pytest.mark.parametrize("where", ["AGENT_DB_PASSWORD", "dsn"])
def test_an_empty_password_is_a_password_not_unset(monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    env = {"AGENT_DB_DSN": "mysql://root@127.0.0.1:3306/", "AGENT_DB_PASSWORD": ""}
    if where == "dsn":
        env = {"AGENT_DB_DSN": "mysql://root:@127.0.0.1:3306/"}
    (target,) = load(monkeypatch, None, **env).targets
    assert target.password is not None and target.password.get_secret_value() == ""


def test_a_dsn_without_a_database_gets_a_hint_that_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    (named,) = load(monkeypatch, AGENT_DB_DSN="postgresql://app@db/orders", AGENT_DB_PASSWORD=APP_PW).targets
    assert target_facts(named)["database_in_dsn"] == "the name at the end of the DSN (.../orders)"
    (unnamed,) = load(monkeypatch, AGENT_DB_DSN="postgresql://app@db", AGENT_DB_PASSWORD=APP_PW).targets
    said = target_facts(unnamed)["database_in_dsn"]
    assert "names no database, so PostgreSQL used the user's name" in said and "end of the DSN (" not in said


def test_ipv6_hosts_read_with_brackets_in_hints(monkeypatch: pytest.MonkeyPatch) -> None:
    (target,) = load(monkeypatch, AGENT_DB_DSN="postgresql://app@[::1]:5432/x", AGENT_DB_PASSWORD=APP_PW).targets
    facts = target_facts(target)
    assert (target.address, f"{facts['host']}:{facts['port']}", target.dsn) == (
        "[::1]:5432",
        "[::1]:5432",
        "postgresql://app@[::1]:5432/x",
    )


# -- keys the agent would lose -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("connection", "expected"),
    [
        (
            "dsn: postgresql://u@db/x\n      secretid: prod/db",
            "database.connections.w: unknown key 'secretid' (did you mean secret_id?): expected dsn, aws_iam_auth,"
            " secret_id, critical",
        ),
        (
            "dsn: postgresql://u@db/x\n      aws_iam_auth: {enabled: true, regoin: eu-west-1}",
            "database.connections.w.aws_iam_auth: unknown key 'regoin' (did you mean region?)",
        ),
        ("dsn: postgresql://u@db/x\n      pool_size: 5", "database.connections.w: unknown key 'pool_size': expected"),
    ],
)
def test_every_unknown_key_in_a_connection_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, connection: str, expected: str
) -> None:
    text = f"database:\n  connections:\n    w:\n      {connection}\n"
    (problem,) = problems(monkeypatch, yaml_file(tmp_path, text), AGENT_DB_PASSWORD=APP_PW)
    assert problem.startswith(expected), problem


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "database:\n  connections:\n    w: {dsn: 'postgresql://u@a/x'}\n    w: {dsn: 'postgresql://u@b/x'}\n",
            "database.connections: key 'w' is given 2 times (lines 3, 4); YAML keeps only the last",
        ),
        (
            "database:\n  connections:\n    w:\n      dsn: postgresql://u@a/x\n      dsn: postgresql://u@b/x\n",
            "database.connections.w: key 'dsn' is given 2 times (lines 4, 5)",
        ),
        (
            "database: {connections: {a: {dsn: 'postgresql://u@a/x'}}}\ndatabase: {connections: {}}\n",
            "--config {path}: key 'database' is given 2 times (lines 1, 2)",
        ),
        (
            "logging: {level: info, level: debug}\ndatabase: {connections: {a: {dsn: 'postgresql://u@a/x'}}}\n",
            "logging: key 'level' is given 2 times (lines 1, 1)",
        ),
    ],
)
def test_a_key_given_twice_where_the_agent_reads_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str, expected: str
) -> None:
    path = yaml_file(tmp_path, text)
    assert expected.format(path=path) in "\n".join(problems(monkeypatch, path, AGENT_DB_PASSWORD=APP_PW))


def test_the_applications_own_duplicate_keys_are_not_the_agents_to_judge(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    text = (
        "server: {port: 1, port: 2}\ndatabase:\n  pool: 1\n  pool: 2\n  connections: {a: {dsn: 'postgresql://u@a/x'}}\n"
    )
    assert [t.name for t in load(monkeypatch, yaml_file(tmp_path, text), AGENT_DB_PASSWORD=APP_PW).targets] == ["a"]


# -- the target cap ------------------------------------------------------------------------------------------


def connections_file(tmp_path: Path, count: int) -> Path:
    lines = [f"    c{i}: {{dsn: 'postgresql://u@db{i}.internal/x'}}" for i in range(count)]
    return yaml_file(tmp_path, "database:\n  connections:\n" + "\n".join(lines) + "\n")


def test_at_most_100_targets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert MAX_TARGETS == 100
    assert len(load(monkeypatch, connections_file(tmp_path, MAX_TARGETS), AGENT_DB_PASSWORD=APP_PW).targets) == 100
    (problem,) = problems(monkeypatch, connections_file(tmp_path, 3000))
    assert problem.startswith("database.connections: 3000 connections, more than the 100 one agent probes")
    assert "file descriptors" in problem


# -- the --config file ---------------------------------------------------------------------------------------


def test_a_fifo_is_refused_at_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Opening a FIFO for reading waits for a writer: it used to block the agent forever."""
    fifo = tmp_path / "agent.yaml"
    os.mkfifo(fifo)
    assert problems(monkeypatch, fifo) == [f"--config {fifo}: is a FIFO, not a regular file (expected a YAML file)"]


@pytest.mark.parametrize(
    ("path", "kind"), [(Path("/dev/zero"), "a character device"), (Path("/dev/null"), "a character device")]
)
def test_a_device_is_refused_without_reading_it(monkeypatch: pytest.MonkeyPatch, path: Path, kind: str) -> None:
    """/dev/zero used to be read until the process held 1.9 GB."""
    assert problems(monkeypatch, path) == [f"--config {path}: is {kind}, not a regular file (expected a YAML file)"]


def test_a_directory_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert problems(monkeypatch, tmp_path) == [
        f"--config {tmp_path}: is a directory, not a regular file (expected a YAML file)"
    ]


def test_a_file_over_1_mib_is_refused_and_one_at_the_bound_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    head = b"database: {connections: {a: {dsn: 'postgresql://u@a/x'}}}\n"
    path = tmp_path / "agent.yaml"
    path.write_bytes(head + b"#" * (MAX_CONFIG_BYTES - len(head)))
    assert len(load(monkeypatch, path, AGENT_DB_PASSWORD=APP_PW).targets) == 1
    path.write_bytes(head + b"#" * (MAX_CONFIG_BYTES - len(head) + 1))
    assert problems(monkeypatch, path) == [
        f"--config {path}: larger than 1 MiB (1048576 bytes), too big for a configuration file"
    ]


def test_a_symlink_to_a_regular_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """ECS and Kubernetes mounts are often symlinks: what counts is the file they point at."""
    link = tmp_path / "link.yaml"
    link.symlink_to(yaml_file(tmp_path, TWO_CONNECTIONS))
    assert len(load(monkeypatch, link, AGENT_DB_USER="app", AGENT_DB_PASSWORD=APP_PW).targets) == 2


# -- AGENT_HOST ----------------------------------------------------------------------------------------------

DSN = {"AGENT_DB_DSN": "postgresql://app@db/x", "AGENT_DB_PASSWORD": APP_PW}


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("a..b", "AGENT_HOST: 'a..b' is not a host name: its dot-separated labels must be 1 to 63 characters"),
        ("[::1]", "AGENT_HOST: '[::1]': write an IPv6 address without brackets (::1)"),
        ("", "AGENT_HOST: the host is empty"),
        ("0.0.0.0:8099", "AGENT_HOST: '0.0.0.0:8099' is not a host name or an IP address"),
        ("-x", "AGENT_HOST: '-x' is not a host name or an IP address"),
    ],
)
def test_an_invalid_agent_host_is_a_configuration_problem(
    monkeypatch: pytest.MonkeyPatch, host: str, expected: str
) -> None:
    (problem,) = problems(monkeypatch, None, **DSN, AGENT_HOST=host)
    assert problem.startswith(expected), problem


@pytest.mark.parametrize(
    ("host", "listens"),
    [("::", "::"), ("0:0::0", "::"), (" 0.0.0.0 ", "0.0.0.0"), ("localhost", "localhost"), ("::1", "::1")],
)
def test_valid_agent_hosts_are_kept_in_their_canonical_form(
    monkeypatch: pytest.MonkeyPatch, host: str, listens: str
) -> None:
    assert load(monkeypatch, None, **DSN, AGENT_HOST=host).host == listens


def test_the_backend_urls_host_is_checked_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app probe would otherwise meet the same UnicodeError at its first connect."""
    (problem,) = problems(monkeypatch, None, **DSN, AGENT_APP_URL="http://a..b:8000/health")
    assert problem.startswith("AGENT_APP_URL: 'a..b' is not a host name"), problem


@settings(max_examples=300, deadline=None, database=None)
@given(host=st.one_of(st.text(max_size=70), st.from_regex(r"[a-z0-9.\-_:\[\]]{0,80}", fullmatch=True)))
def test_an_accepted_host_never_makes_the_socket_module_raise(host: str) -> None:
    """socket encodes a name with the 'idna' codec before a lookup (the UnicodeError of issue 12): a host the
    configuration accepts is an IP address or encodes; any other is refused with a short message."""
    problem = host_problem(host)
    if problem is None:
        assert is_ip(host) or host.encode("idna")
    else:
        assert len(problem) < 300


# -- values echoed are cut to length -------------------------------------------------------------------------

HUGE = "x" * 100_000


@pytest.mark.parametrize(
    "env",
    [
        {**DSN, "AGENT_LOG_LEVEL": HUGE},
        {**DSN, "AGENT_HOST": HUGE},
        {**DSN, "AGENT_CLOUDWATCH_NAMESPACE": "AWS/" + HUGE},
        {**DSN, "AGENT_APP_URL": "gopher://" + HUGE},
        {**DSN, "AGENT_APP_URL": "http://127.0.0.1:1/", "AGENT_APP_EXPECT_STATUS": HUGE},
        {"AGENT_DB_DSN": HUGE + "://db/x", "AGENT_DB_PASSWORD": APP_PW},
        {"AGENT_DB_DSN": f"postgresql://u@db/x?{HUGE}=1", "AGENT_DB_PASSWORD": APP_PW},
        {"AGENT_DB_DSN": f"postgresql://u@db/x?sslmode={HUGE}", "AGENT_DB_PASSWORD": APP_PW},
    ],
    ids=["log level", "host", "namespace", "app url", "expect status", "scheme", "parameter", "sslmode"],
)
def test_a_100_kb_value_is_echoed_cut_to_length(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    found = problems(monkeypatch, None, **env)
    assert found and all(len(problem) < 500 for problem in found), [len(p) for p in found]
    assert any("(100" in problem and "characters)" in problem for problem in found), found


def test_a_100_kb_yaml_key_is_echoed_cut_to_length(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    document = {"database": {"connections": {HUGE: {}, "w": {"dsn": "postgresql://u@db/x", HUGE: 2}}}}
    found = problems(monkeypatch, yaml_file(tmp_path, yaml.safe_dump(document)), AGENT_DB_PASSWORD=APP_PW)
    assert len(found) >= 2 and all(len(problem) < 500 for problem in found), found
    valid_shape = {"database": {"connections": {HUGE: {"dsn": "postgresql://u@db/x"}}}}
    (problem,) = problems(monkeypatch, yaml_file(tmp_path, yaml.safe_dump(valid_shape)), AGENT_DB_PASSWORD=APP_PW)
    assert "must be 1-64 of" in problem and len(problem) < 500, problem


def test_every_problem_is_one_bounded_line() -> None:
    """The net under every message: a problem that quotes a value whole is cut all the same."""
    (problem,) = ConfigError(["AGENT_X: " + HUGE]).problems
    assert len(problem) < MAX_PROBLEM_CHARACTERS + 50 and problem.endswith("(cut from 100009 characters)")
