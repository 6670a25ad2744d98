"""Configuration fuzzing: whatever arrives in AGENT_* variables, DSNs or a --config file, load_config returns
a valid AgentConfig or raises ConfigError whose every problem starts with the field it is about (an AGENT_*
variable, a YAML path, or --config) and never shows the password it was given; never any other exception.
A handful of real processes then show the same at the edge: exit 2, the field named, no traceback.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.config.inputs import EnvSettings
from agent.config.load import load_config
from agent.config.models import AgentConfig, ConfigError
from tests.faults.harness import fault_env
from tests.faults.hygiene import assert_no_distinctive_secret, distinctive
from tests.support import slow
from tests.support.agent_process import REPO

PASSWORD = distinctive("password in fuzzed DSNs and AGENT_DB_PASSWORD")
VARIABLES = tuple(f"AGENT_{name.upper()}" for name in EnvSettings.model_fields)
OUTSIDE = ("AWS_REGION", "AWS_DEFAULT_REGION", "LOG_LEVEL", "ECS_CONTAINER_METADATA_URI_V4")
# A problem names its field first: an AGENT_* variable, --config PATH, or a path in the YAML file (whose keys,
# connection names included, may hold any character, line breaks too).
FIELD = re.compile(r"^(?:(AGENT_[A-Z_]+)|--config \S.*?|(?:database|logging)(?:\..*?)?): \S", re.DOTALL)
# EHA_FUZZ_EXAMPLES overrides; a full run (EHA_FULL_FAULTS=1) tries ten times as many.
EXAMPLES = int(os.environ.get("EHA_FUZZ_EXAMPLES") or (3000 if os.environ.get(slow.ENV) == "1" else 300))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40)
number = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", " 5 ", "0x10", "1e999", "-0", "\uff15", "1_000", "3.5s", "true", "nan", "inf"]),
)
flag = st.sampled_from(["true", "false", "1", "0", "yes", "no", "on", "off", "TRUE", "maybe", "", " "])
word = st.sampled_from(["gate", "strict", "GATE", " strict ", "full", "summary", "debug", "warn", "loud", ""])
host = st.one_of(
    st.sampled_from(
        [
            "db",
            "127.0.0.1",
            "[::1]",
            "[::1",
            "db.x.eu-west-1.rds.amazonaws.com",
            "",
            "a b",
            "ü.example",
            "a..b",
            "h1,h2",
        ]
    ),
    text,
)
port = st.one_of(
    st.none(), st.integers(-5, 70000).map(str), st.sampled_from(["", "x", "\uff15\uff14\uff13\uff12", "80 80"]), text
)
password = st.one_of(st.none(), st.just(PASSWORD), st.just(PASSWORD + "@:/?#"), st.just(PASSWORD + "[]%\t"), text)
query = st.one_of(
    st.just(""),
    st.sampled_from(["disable", "prefer", "require", "verify-ca", "verify-full", "REQUIRE", "bogus", ""]).map(
        lambda mode: f"?sslmode={mode}"
    ),
    text.map(lambda value: f"?sslrootcert={value}&sslmode=verify-full"),
    text.map(lambda value: "?" + value),
    # the TLS spellings of asyncpg, SQLAlchemy and MySQL, and near misses of them
    st.sampled_from(["ssl=true", "ssl=0", "ssl-mode=REQUIRED", "ssl-mode=on", "sslMode=require", "ssl_mode=x"]).map(
        "?".__add__
    ),
    st.sampled_from(["ssl-ca=/x.pem", "sslmode=require&ssl=true", "sslmode=", "sslmode=require&sslmode=disable"]).map(
        "?".__add__
    ),
)


@st.composite
def dsns(draw: st.DrawFn) -> str:
    if draw(st.booleans()) and draw(st.booleans()):
        return draw(text)  # anything at all
    scheme = draw(st.sampled_from(["postgresql", "postgres", "mysql", "mariadb", "postgresql+asyncpg", "http", ""]))
    user = draw(st.one_of(st.none(), st.sampled_from(["app", "a:b", "ä", "%41", ""]), text))
    secret = draw(password)
    auth = f"{user or ''}{':' + secret if secret is not None else ''}@" if user is not None or secret else ""
    where = draw(host) + (f":{p}" if (p := draw(port)) is not None else "")
    database = draw(st.one_of(st.just(""), st.sampled_from(["/", "/orders", "/%zz", "/a/b"]), text.map("/".__add__)))
    return f"{scheme}://{auth}{where}{database}{draw(query)}"


def env_values() -> st.SearchStrategy[dict[str, str]]:
    per_variable = {
        "AGENT_DB_DSN": dsns(),
        "AGENT_DB_PASSWORD": password.map(lambda value: value or ""),
        "AGENT_DB_SECRET_ID": st.one_of(text, st.just("arn:aws:secretsmanager:eu-west-1:123456789012:secret:db")),
        "AGENT_DB_IAM_AUTH": flag,
        "AGENT_PORT": number,
        "AGENT_READINESS_POLICY": word,
        "AGENT_STATUS_DETAIL": word,
        "AGENT_LOG_LEVEL": word,
        "AGENT_CLOUDWATCH_EMF": flag,
        "AGENT_CLOUDWATCH_NAMESPACE": st.one_of(text, st.sampled_from(["AWS/RDS", ":x", "Ok/Name"])),
        "AWS_REGION": st.one_of(text, st.just("eu-west-1")),
    }
    strategies = {name: per_variable.get(name, st.one_of(number, flag, text)) for name in VARIABLES}
    strategies["AWS_REGION"] = per_variable["AWS_REGION"]
    return st.fixed_dictionaries({}, optional=strategies)


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Exactly these AGENT_* (and region) variables for the duration; the test process's own restored after."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("AGENT_") or k in OUTSIDE}
    for key in saved:
        del os.environ[key]
    os.environ.update(values)
    try:
        yield
    finally:
        for key in [k for k in os.environ if k.startswith("AGENT_") or k in OUTSIDE]:
            del os.environ[key]
        os.environ.update(saved)


def check(load: Path | None = None) -> AgentConfig | ConfigError:
    """load_config, which may only ever return an AgentConfig or raise ConfigError."""
    try:
        return load_config(load)
    except ConfigError as exc:
        return exc


def assert_well_formed(outcome: AgentConfig | ConfigError) -> None:
    if isinstance(outcome, AgentConfig):
        assert_no_distinctive_secret(repr(outcome) + str(outcome.model_dump()), "AgentConfig repr")
        return
    assert outcome.problems, "a ConfigError without problems"
    for problem in outcome.problems:
        match = FIELD.match(problem)
        assert match, f"problem does not start with the field it is about: {problem!r}"
        if match.group(1):
            assert match.group(1) in VARIABLES, f"names a variable that does not exist: {problem!r}"
        assert "Traceback" not in problem
        assert_no_distinctive_secret(problem, "a configuration problem")


@FUZZ
@given(values=env_values())
def test_any_environment_gives_a_config_or_problems_naming_their_field(values: dict[str, str]) -> None:
    with environment(values):
        assert_well_formed(check())


@st.composite
def config_files(draw: st.DrawFn) -> object:
    leaf = st.one_of(st.none(), st.booleans(), st.integers(), text, dsns())
    junk = st.recursive(
        leaf, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3))
    )
    connection = st.fixed_dictionaries(
        {"dsn": st.one_of(dsns(), junk)},
        optional={
            "secret_id": st.one_of(text, junk),
            "aws_iam_auth": st.one_of(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "enabled": st.one_of(flag, st.booleans()),
                        "region": text,
                        "db_user": text,
                        "extra": junk,
                    },
                ),
                junk,
            ),
            "critical": st.one_of(flag, st.booleans()),
            "secretid": text,  # a near miss of secret_id
        },
    )
    names = st.one_of(st.sampled_from(["writer", "reader", "a b", "ü", "x" * 70, ""]), text)
    connections = st.one_of(st.dictionaries(names, st.one_of(connection, junk), max_size=3), junk)
    document = st.fixed_dictionaries(
        {},
        optional={
            "database": st.one_of(st.fixed_dictionaries({"connections": connections}), junk),
            "logging": st.one_of(st.fixed_dictionaries({"level": st.one_of(word, junk)}), junk),
            "other": junk,
        },
    )
    return draw(st.one_of(document, junk))


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="eha-fuzz-") as directory:
        yield Path(directory) / "agent.yaml"


@FUZZ
@given(document=config_files(), values=env_values())
def test_any_config_file_gives_a_config_or_problems_naming_their_field(
    scratch: Path, document: object, values: dict[str, str]
) -> None:
    scratch.write_text(yaml.safe_dump(document, allow_unicode=True))
    with environment(values):
        assert_well_formed(check(scratch))


NASTY_FILES = (b"\xff\xfe", b"[" * 5000, b"{a: " * 3000, b"!!python/object:os.system {}", b"a: &a [*a]\ndatabase: *a")


@settings(max_examples=EXAMPLES // 2, deadline=None, database=None)
@given(data=st.one_of(st.binary(max_size=200), st.sampled_from(NASTY_FILES)))
def test_any_bytes_as_config_file_give_a_config_or_problems(scratch: Path, data: bytes) -> None:
    scratch.write_bytes(data)
    with environment({"AGENT_DB_DSN": f"postgresql://app:{PASSWORD}@db/x"}):
        assert_well_formed(check(scratch))


# -- at the process edge -------------------------------------------------------------------------------------

EDGE_CASES = {
    "port out of range, password in the DSN": (
        {"AGENT_DB_DSN": f"postgresql://app:{PASSWORD}@db:99999/orders"},
        "AGENT_DB_DSN",
    ),
    "AGENT_PORT not a number": ({"AGENT_DB_DSN": "postgresql://app@db/x", "AGENT_PORT": "eighty"}, "AGENT_PORT"),
    "unknown readiness policy": (
        {"AGENT_DB_DSN": "postgresql://app@db/x", "AGENT_DB_PASSWORD": PASSWORD, "AGENT_READINESS_POLICY": "lax"},
        "AGENT_READINESS_POLICY",
    ),
    "IAM auth with a password and TLS off": (
        {"AGENT_DB_DSN": f"mysql://app:{PASSWORD}@db/x?sslmode=disable", "AGENT_DB_IAM_AUTH": "true"},
        "AGENT_DB_DSN",
    ),
    "config file that is not UTF-8": ({"--config": "\xff\xfe not text"}, "--config"),
    "config file nested too deeply": ({"--config": "[" * 20000}, "--config"),
    "reserved character in a DSN password": (
        {"AGENT_DB_DSN": f"mysql://u:p@{PASSWORD}/w%rd@db:3306/x"},
        "AGENT_DB_DSN",
    ),
    "AGENT_HOST that no socket can encode": (
        {"AGENT_DB_DSN": "postgresql://app@db/x", "AGENT_HOST": "a..b"},
        "AGENT_HOST",
    ),
    "config file DSN with a bad port": (
        {"--config": f"database: {{connections: {{writer: {{dsn: 'mysql://app:{PASSWORD}@db:port/x'}}}}}}"},
        "database.connections.writer.dsn",
    ),
}


@pytest.mark.parametrize("case", list(EDGE_CASES))
def test_invalid_configuration_exits_2_naming_the_field_without_traceback(case: str, tmp_path: Path) -> None:
    values, field = EDGE_CASES[case]
    args = ["serve"]
    env = dict(values)
    if "--config" in env:
        path = tmp_path / "agent.yaml"
        path.write_bytes(env.pop("--config").encode("latin-1" if case.endswith("UTF-8") else "utf-8"))
        args += ["--config", str(path)]
    done = subprocess.run(
        [sys.executable, "-m", "agent", *args],
        env=fault_env(env),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
    )
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert f"  - {field}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert_no_distinctive_secret(done.stdout + done.stderr, f"exit-2 output ({case})")
