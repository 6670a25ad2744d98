"""DSN parsing: nothing a user wrote is silently misread. A DSN is read exactly as written, or refused with a message
that names the problem and the fix without repeating the password (issue 13, section 1)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config.dsn import DsnError, SslMode, parse_dsn

PASSWORD = "Zq8-wrong-horse-battery"


def refusal(dsn: str) -> str:
    with pytest.raises(DsnError) as caught:
        parse_dsn(dsn)
    return str(caught.value)


# -- reserved characters in the user or password -------------------------------------------------------------


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://app:pa/ss-w0rd@127.0.0.1:5432/db",  # the issue's first case: "the port is not a number" before
        "mysql://u:p@ss/w%rd@127.0.0.1:3306/db",  # the second: `ss` was printed as a host and looked up
    ],
)
def test_the_issues_reserved_character_passwords_are_refused_naming_the_password(dsn: str) -> None:
    message = refusal(dsn)
    assert message.startswith("the DSN's password holds a character that must be percent-encoded in a URL")
    assert "'/' as %2F" in message and "'@' as %40" in message
    assert "set AGENT_DB_PASSWORD" in message
    for fragment in ("pa/ss", "ss-w0rd", "p@ss", "w%rd", "ss/", "127.0.0.1"):
        assert fragment not in message


def test_a_control_character_is_refused_not_deleted() -> None:
    """urlsplit deletes a tab or line break inside a URL: the password would be silently changed."""
    message = refusal(f"postgresql://app:{PASSWORD}\t{PASSWORD}@db/x")
    assert "control character" in message and "%09" in message
    assert PASSWORD[:6] not in message


# -- hosts and ports -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("postgresql://u@h1:5432,h2:5432/db", "the DSN names 2 hosts: a target is one host"),
        ("postgresql://u@h1,h2,h3/db", "the DSN names 3 hosts"),
        ("postgresql://u@h:0/db", "port 0 is not a port from 1 to 65535"),
        ("postgresql://u@::1:5432/db", "an IPv6 address goes in brackets (expected postgresql://user@[2001:db8::5]"),
        ("postgresql://u@a..b/db", "'a..b' is not a host name: its dot-separated labels must be 1 to 63 characters"),
        ("mysql://u@a%20b/db", "'a%20b' is not a host name or an IP address"),
        ("postgresql://u@" + "x" * 64 + ".example/db", "is not a host name"),
        ("postgresql://u@h/db#frag", "a DSN has no '#' part"),
    ],
)
def test_misread_hosts_and_ports_are_refused(dsn: str, expected: str) -> None:
    assert expected in refusal(dsn)


def test_ipv6_hosts_are_shown_in_brackets() -> None:
    parsed = parse_dsn(f"postgresql://app:{PASSWORD}@[::1]:6543/orders")
    assert (parsed.host, parsed.port) == ("::1", 6543)
    assert str(parsed) == "postgresql://app:[REDACTED]@[::1]:6543/orders"


def test_an_empty_port_is_the_default_port() -> None:
    """RFC 3986 3.2.3: an empty port is the scheme's default; only 0 is refused."""
    assert parse_dsn("mysql://u@h:/d").port == 3306


# -- the password --------------------------------------------------------------------------------------------


def test_an_empty_password_is_a_password() -> None:
    """`user:@host` sets the empty password (MariaDB's root has one); `user@host` sets none."""
    empty = parse_dsn("mysql://root:@127.0.0.1:3306/")
    assert empty.password is not None and empty.password.get_secret_value() == ""
    assert str(empty) == "mysql://root:[REDACTED]@127.0.0.1:3306/"
    assert parse_dsn("mysql://root@127.0.0.1:3306/").password is None


# -- TLS parameters ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "mode"),
    [
        ("sslmode=require", SslMode.REQUIRE),
        ("sslmode=VERIFY-FULL", SslMode.VERIFY_FULL),
        ("ssl=true", SslMode.VERIFY_FULL),  # asyncpg: ssl=True is create_default_context(), reported as verify-full
        ("ssl=false", SslMode.DISABLE),
        ("ssl=require", SslMode.REQUIRE),  # SQLAlchemy passes ?ssl= to asyncpg.connect(ssl=...) as an sslmode
        ("ssl=verify-ca", SslMode.VERIFY_CA),
        ("ssl-mode=DISABLED", SslMode.DISABLE),  # MySQL's --ssl-mode vocabulary
        ("ssl-mode=PREFERRED", SslMode.PREFER),
        ("ssl-mode=REQUIRED", SslMode.REQUIRE),
        ("ssl-mode=VERIFY_CA", SslMode.VERIFY_CA),
        ("ssl-mode=VERIFY_IDENTITY", SslMode.VERIFY_FULL),
        ("ssl-mode=require", SslMode.REQUIRE),  # the libpq words keep working there
        ("", None),
        ("sslmode=require&", SslMode.REQUIRE),
    ],
)
@pytest.mark.parametrize("scheme", ["postgresql+asyncpg", "mysql+aiomysql", "postgres", "mariadb"])
def test_tls_spellings_are_read_with_their_meaning(scheme: str, query: str, mode: SslMode | None) -> None:
    assert parse_dsn(f"{scheme}://u@db/x?{query}").sslmode is mode


@pytest.mark.parametrize("key", ["sslrootcert", "ssl-ca"])
def test_the_ca_bundle_has_the_libpq_and_the_mysql_spelling(key: str) -> None:
    assert parse_dsn(f"mysql://u@db/x?{key}=/certs/global%2Dbundle.pem").sslrootcert == "/certs/global-bundle.pem"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ssl_mode=require", "unknown parameter 'ssl_mode' (did you mean sslmode?): accepted are sslmode, ssl or"),
        ("sslMode=require", "unknown parameter 'sslMode' (did you mean sslmode?)"),
        ("connect_timeout=5", "unknown parameter 'connect_timeout': accepted are sslmode, ssl or ssl-mode (the TLS"),
        ("ssl=yes", "ssl 'yes' is not one of true, false, disable, prefer, require, verify-ca, verify-full"),
        (
            "ssl-mode=STRICT",
            "ssl-mode 'STRICT' is not one of DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY",
        ),
        ("sslmode=always", "sslmode 'always' is not one of disable, prefer, require, verify-ca, verify-full"),
        ("sslmode=", "parameter sslmode has no value (expected one of disable, prefer"),
        ("sslmode", "parameter sslmode has no value"),
        ("sslrootcert=", "parameter sslrootcert has no value (expected the path of a CA bundle)"),
        ("sslmode=disable&sslmode=require", "parameter sslmode is given twice"),
        ("sslmode=require&ssl=false", "sslmode and ssl say the same thing: give one of them"),
        ("sslrootcert=/a.pem&ssl-ca=/b.pem", "sslrootcert and ssl-ca say the same thing"),
    ],
)
def test_any_other_parameter_or_value_is_refused_by_name(query: str, expected: str) -> None:
    assert expected in refusal(f"postgresql://u@db/x?{query}")


def test_an_unknown_parameters_value_is_never_repeated() -> None:
    """`?password=...` is libpq's spelling of a secret: the name is enough to act on."""
    message = refusal(f"postgresql://u@db/x?password={PASSWORD}")
    assert "unknown parameter 'password'" in message and PASSWORD[:6] not in message


# -- the kind, as a property ---------------------------------------------------------------------------------

# Every printable character but '%' (which starts an escape: "%41" *is* "A" in a URL), the reserved ones included.
raw_characters = st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters="%")
MARK_HEAD, MARK_TAIL = "Kx7wq", "Qv9zp"


@settings(max_examples=400, deadline=None, database=None)
@given(middle=st.text(raw_characters, max_size=12), scheme=st.sampled_from(["postgresql", "mysql+aiomysql"]))
def test_a_raw_password_is_read_exactly_or_refused_without_a_trace(middle: str, scheme: str) -> None:
    """Whatever characters a password holds, written unencoded: the DSN reads as host db, port 5432, database
    orders with exactly that password, or it is refused with a message holding no part of it. Never a host,
    port, database or parameter made of pieces of the password."""
    password = MARK_HEAD + middle + MARK_TAIL
    try:
        parsed = parse_dsn(f"{scheme}://app:{password}@db:5432/orders")
    except DsnError as exc:
        message = str(exc)
        assert MARK_HEAD not in message and MARK_TAIL not in message, message
        assert len(middle) < 8 or middle not in message, message
        return
    assert (parsed.user, parsed.host, parsed.port, parsed.database) == ("app", "db", 5432, "orders")
    assert parsed.password is not None and parsed.password.get_secret_value() == password
    assert parsed.sslmode is None


@settings(max_examples=200, deadline=None, database=None)
@given(password=st.text(st.characters(exclude_categories=["Cs"]), max_size=24))
def test_a_percent_encoded_password_always_reads_back_exactly(password: str) -> None:
    """The fix every refusal names works for any password: quote() it and it is read back unchanged."""
    parsed = parse_dsn(f"postgresql://app:{quote(password, safe='')}@db:5432/orders?sslmode=require")
    assert (parsed.host, parsed.port, parsed.database, parsed.sslmode) == ("db", 5432, "orders", SslMode.REQUIRE)
    assert parsed.password is not None and parsed.password.get_secret_value() == password


def test_an_at_sign_alone_in_the_password_is_read_as_part_of_it() -> None:
    """The last '@' before the host ends the user and password, so an unencoded '@' in a password is unambiguous
    (docs/configuration.md); '%40' reads the same."""
    for dsn in ("postgresql://app:p@ss@127.0.0.1:5432/db", "postgresql://app:p%40ss@127.0.0.1:5432/db"):
        parsed = parse_dsn(dsn)
        assert (parsed.user, parsed.host, parsed.port) == ("app", "127.0.0.1", 5432)
        assert parsed.password is not None and parsed.password.get_secret_value() == "p@ss"
