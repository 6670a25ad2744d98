"""Configuration of the backend probe: AGENT_APP_URL and AGENT_APP_EXPECT_STATUS, or `app:` in --config.

Every bad value names its variable (or YAML path) and the expected form, and no message shows a query string or
a user and password from the URL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.config.load import load_config
from agent.config.models import AgentConfig, ConfigError

BASE = {"AGENT_DB_DSN": "postgresql://app@db.internal:5432/orders", "AGENT_DB_PASSWORD": "Zq8-app-config-test"}
KEY = "q-s3cret-in-the-query"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without AGENT_* variables."""
    for key in list(os.environ):
        if key.startswith("AGENT_"):
            monkeypatch.delenv(key)


def load(monkeypatch: pytest.MonkeyPatch, path: Path | None = None, **env: str) -> AgentConfig:
    for key, value in {**BASE, **env}.items():
        monkeypatch.setenv(key, value)
    return load_config(path)


def problems(monkeypatch: pytest.MonkeyPatch, path: Path | None = None, **env: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(monkeypatch, path, **env)
    return caught.value.problems


def test_not_configured_means_no_backend_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load(monkeypatch).app is None
    assert load(monkeypatch, AGENT_APP_URL="  ").app is None  # an empty variable in a task definition: off


def test_http_url_with_the_default_expected_statuses(monkeypatch: pytest.MonkeyPatch) -> None:
    app = load(monkeypatch, AGENT_APP_URL="http://127.0.0.1:8000/health").app
    assert app is not None
    assert (app.scheme, app.host, app.port, app.path, app.query) == ("http", "127.0.0.1", 8000, "/health", None)
    assert (app.expect_status, app.expected, app.url) == (((200, 399),), "200-399", "http://127.0.0.1:8000/health")
    assert app.expects(200) and app.expects(302) and not app.expects(404) and not app.expects(500)


@pytest.mark.parametrize(
    ("url", "scheme", "port", "path", "address"),
    [
        ("https://localhost/live", "https", 443, "/live", "localhost:443"),
        ("http://backend:8080", "http", 8080, "/", "backend:8080"),
        ("HTTP://127.0.0.1:8000/Health", "http", 8000, "/Health", "127.0.0.1:8000"),
        ("tcp://127.0.0.1:8000", "tcp", 8000, "", "127.0.0.1:8000"),
        ("tcp://[::1]:8000/", "tcp", 8000, "", "[::1]:8000"),
    ],
)
def test_good_urls(monkeypatch: pytest.MonkeyPatch, url: str, scheme: str, port: int, path: str, address: str) -> None:
    """https:// and tcp:// too; default ports for http(s); a tcp:// URL keeps no path."""
    app = load(monkeypatch, AGENT_APP_URL=url).app
    assert app is not None and (app.scheme, app.port, app.path, app.address) == (scheme, port, path, address)


@pytest.mark.parametrize(
    ("value", "ranges", "shown"),
    [
        ("200", ((200, 200),), "200"),
        ("200-299", ((200, 299),), "200-299"),
        ("200,204,300-399", ((200, 200), (204, 204), (300, 399)), "200,204,300-399"),
        (" 200 - 204 , 301 ", ((200, 204), (301, 301)), "200-204,301"),
        ("100-599", ((100, 599),), "100-599"),
    ],
)
def test_good_expected_statuses(
    monkeypatch: pytest.MonkeyPatch, value: str, ranges: tuple[tuple[int, int], ...], shown: str
) -> None:
    app = load(monkeypatch, AGENT_APP_URL="http://127.0.0.1:8000/health", AGENT_APP_EXPECT_STATUS=value).app
    assert app is not None and (app.expect_status, app.expected) == (ranges, shown)


STATUS_FORM = "expected HTTP status codes and ranges within 100-599, e.g. 200-399, 200 or 200,204,300-399"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("ok", f"AGENT_APP_EXPECT_STATUS: 'ok' is not a status code or range: {STATUS_FORM}"),
        ("2xx", f"AGENT_APP_EXPECT_STATUS: '2xx' is not a status code or range: {STATUS_FORM}"),
        ("600", f"AGENT_APP_EXPECT_STATUS: '600' is outside 100-599: {STATUS_FORM}"),
        ("99-200", f"AGENT_APP_EXPECT_STATUS: '99-200' is outside 100-599: {STATUS_FORM}"),
        ("399-200", "AGENT_APP_EXPECT_STATUS: '399-200' goes from high to low: write the range low-high (200-399)"),
        ("200,,204", f"AGENT_APP_EXPECT_STATUS: has an empty entry: {STATUS_FORM}"),
        ("200-", f"AGENT_APP_EXPECT_STATUS: '200-' is not a status code or range: {STATUS_FORM}"),
    ],
)
def test_bad_expected_statuses_name_the_variable(monkeypatch: pytest.MonkeyPatch, value: str, problem: str) -> None:
    found = problems(monkeypatch, AGENT_APP_URL="http://127.0.0.1:8000/health", AGENT_APP_EXPECT_STATUS=value)
    assert found == [problem]


URL_FORM = "expected http://host:port/path (an HTTP GET), https://... or tcp://host:port (a TCP connect only)"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            "127.0.0.1:8000/health",
            f"'127.0.0.1:8000/health': the scheme must be http://, https:// or tcp://: {URL_FORM}",
        ),
        ("ftp://127.0.0.1/x", f"'ftp://127.0.0.1/x': the scheme must be http://, https:// or tcp://: {URL_FORM}"),
        ("http:///health", f"'http:///health' has no host: {URL_FORM}"),
        ("http://127.0.0.1:99999/h", "'http://127.0.0.1:99999/h' is not a URL with a valid host and port (1-65535)"),
        ("http://127.0.0.1:port/h", "'http://127.0.0.1:port/h' is not a URL with a valid host and port (1-65535)"),
        ("tcp://127.0.0.1", "'tcp://127.0.0.1' needs a port within 1-65535, e.g. tcp://127.0.0.1:8000"),
        ("tcp://127.0.0.1:0", "'tcp://127.0.0.1:0' needs a port within 1-65535, e.g. tcp://127.0.0.1:8000"),
        ("tcp://127.0.0.1:8000/health", "a tcp:// URL only connects: drop the path and query string, or use http://"),
        ("http://127.0.0.1:8000/he alth", f"contains whitespace or control characters: {URL_FORM}"),
    ],
)
def test_bad_urls_name_the_variable_and_the_expected_form(
    monkeypatch: pytest.MonkeyPatch, url: str, problem: str
) -> None:
    (found,) = problems(monkeypatch, AGENT_APP_URL=url)
    assert found.startswith("AGENT_APP_URL: ") and problem in found


@pytest.mark.parametrize(
    "url",
    [f"http://svc-user:{KEY}@127.0.0.1:8000/health", f"https://{KEY}@127.0.0.1/health", f"tcp://u:{KEY}@127.0.0.1:80"],
)
def test_a_user_or_password_in_the_url_is_refused_without_echo(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    (found,) = problems(monkeypatch, AGENT_APP_URL=url)
    assert found.startswith("AGENT_APP_URL: a user or password in the URL is refused: it would show in /status")
    assert KEY not in found and "svc-user" not in found


def test_no_message_and_no_repr_shows_the_query_string(monkeypatch: pytest.MonkeyPatch) -> None:
    """The query is sent with the request but kept as a secret: not in errors, the repr, or the shown URL."""
    (found,) = problems(monkeypatch, AGENT_APP_URL=f"ftp://127.0.0.1:8000/health?key={KEY}#{KEY}")
    assert "'ftp://127.0.0.1:8000/health'" in found and KEY not in found
    (found,) = problems(monkeypatch, AGENT_APP_URL=f"tcp://127.0.0.1:8000?key={KEY}")
    assert KEY not in found
    config = load(monkeypatch, AGENT_APP_URL=f"http://127.0.0.1:8000/health?key={KEY}")
    assert config.app is not None and config.app.request_url == f"http://127.0.0.1:8000/health?key={KEY}"
    assert config.app.url == "http://127.0.0.1:8000/health"
    assert KEY not in repr(config) and KEY not in str(config.model_dump())


def test_expected_statuses_need_an_http_url(monkeypatch: pytest.MonkeyPatch) -> None:
    assert problems(monkeypatch, AGENT_APP_URL="tcp://127.0.0.1:8000", AGENT_APP_EXPECT_STATUS="200") == [
        "AGENT_APP_EXPECT_STATUS: applies to http:// and https:// URLs only; AGENT_APP_URL is tcp://"
    ]
    monkeypatch.delenv("AGENT_APP_URL")
    assert problems(monkeypatch, AGENT_APP_EXPECT_STATUS="200") == [
        "AGENT_APP_EXPECT_STATUS: is set but there is no backend URL: set AGENT_APP_URL (or app.url)"
    ]


def test_yaml_app_section(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`app: {url, expect_status}` takes a string, a number or a list; the variables win over it."""
    path = tmp_path / "config.yaml"
    path.write_text("app:\n  url: http://127.0.0.1:8000/live\n  expect_status: [200, '300-308']\n")
    app = load(monkeypatch, path).app
    assert app is not None and (app.path, app.expect_status) == ("/live", ((200, 200), (300, 308)))
    path.write_text("app:\n  url: http://127.0.0.1:8000/live\n  expect_status: 204\n")
    app = load(monkeypatch, path, AGENT_APP_URL="http://127.0.0.1:9000/healthz").app
    assert app is not None and (app.port, app.path, app.expected) == (9000, "/healthz", "204")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("app:\n  expect_status: 200\n", "app.url: is required"),
        (
            "app:\n  url: http://h:1/x\n  expected_status: 200\n",
            "app: unknown key 'expected_status' (did you mean expect_status?)",
        ),
        ("app:\n  url: gopher://h/x\n", "app.url: 'gopher://h/x': the scheme must be http://, https:// or tcp://"),
        ("app:\n  url: http://h:1/x\n  expect_status: 700\n", "app.expect_status: '700' is outside 100-599"),
        ("app:\n  url: http://h:1/x\n  expect_status: ['200', '5xx']\n", "app.expect_status: '5xx' is not a status"),
    ],
)
def test_bad_yaml_app_names_the_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    (found,) = problems(monkeypatch, path)
    assert found.startswith(problem), found


def test_a_connection_may_not_take_the_backend_probes_target_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With the backend probe on, `backend` is its target: a database of that name would share its standing."""
    path = tmp_path / "config.yaml"
    path.write_text("database:\n  connections:\n    backend:\n      dsn: postgresql://app:pw@db/orders\n")
    assert [t.name for t in load_config(path).targets] == ["backend"]  # no backend probe: any name
    monkeypatch.setenv("AGENT_APP_URL", "http://127.0.0.1:8000/health")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [
        "database.connections.backend: 'backend' is the backend probe's target name (AGENT_APP_URL): give this"
        " connection another name"
    ]
