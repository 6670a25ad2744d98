"""agent/shared/private_api.py: every private name the agent uses is listed, still exists in the locked versions
(on a real object where the agent reads it from one), and is guarded by a test that exists."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import aiomysql
import asyncpg
import pytest

from agent.shared.private_api import PRIVATE_APIS, STDLIB, PrivateApi
from tests.support.databases import Server
from tests.support.locks import DEV_LOCK, RUNTIME_LOCK, pins

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("aiobotocore", "botocore", "aiohttp", "asyncpg", "aiomysql", "pymysql", "pydantic")
# Names that start with "_" yet are documented public API of the standard library.
DOCUMENTED = {"_exit", "_replace", "_asdict", "_fields", "_make", "_missing_", "_value_", "_name_", "_ignore_"}


def owner_and_attribute(api: PrivateApi) -> tuple[str, str]:
    owner, _, attribute = api.name.rpartition(".")
    return owner, attribute


def resolve(dotted: str) -> Any:
    """What a dotted name refers to: its longest importable module prefix, then attributes (AttributeError if gone)."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute)
        return found
    raise ModuleNotFoundError(dotted)


def instance_attributes(owner: str) -> list[str]:
    """The registry's attributes of one class that exist only on its objects; never empty (else a check is stale)."""
    names = [owner_and_attribute(a)[1] for a in PRIVATE_APIS if a.on_instance and owner_and_attribute(a)[0] == owner]
    assert names, f"no on_instance record of {owner} is left: remove its check from this module"
    return names


def test_the_registry_loads_no_dependency() -> None:
    """It is strings only: importing it must not load aiobotocore, the drivers or pydantic into a process."""
    code = f"import sys, agent.shared.private_api; print(sorted(m for m in sys.modules if m.startswith({HEAVY!r})))"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


def test_every_record_names_a_pinned_dependency_that_ships_the_module() -> None:
    """Pinned in the runtime lock (the image), or in the dev lock for the sandbox (which the image lacks); or a
    standard-library module (STDLIB)."""
    shipped_by = metadata.packages_distributions()
    for api in PRIVATE_APIS:
        if api.package == STDLIB:  # the standard library: the image's Python fixes it
            assert api.name.split(".")[0] in sys.stdlib_module_names, api.name
            continue
        lock = DEV_LOCK if api.used_in.startswith("agent/sandbox/") else RUNTIME_LOCK
        assert api.package in pins(lock), f"{api.name}: {api.package} is not in {lock.name}"
        assert api.package in shipped_by[api.name.split(".")[0]], api.name


@pytest.mark.parametrize("api", [a for a in PRIVATE_APIS if not a.on_instance], ids=lambda a: a.name)
def test_module_and_class_level_names_still_exist(api: PrivateApi) -> None:
    """The name resolves in the installed (locked) version: a class, a method or a constant."""
    assert resolve(api.name) is not None


def test_every_instance_attribute_is_checked_on_a_real_object() -> None:
    owners = {owner_and_attribute(a)[0] for a in PRIVATE_APIS if a.on_instance}
    assert owners == set(INSTANCE_CHECKS), "add (or remove) a check below for each class with on_instance records"


async def test_asyncpg_connection_attributes(pg_server: Server) -> None:
    """A real connection has `_transport`, whose ssl_object is None without TLS (TLS: the guarding tests)."""
    raw = await asyncpg.connect(
        host=pg_server.host,
        port=pg_server.port,
        user=pg_server.admin_user,
        password=pg_server.admin_password or None,
        database=pg_server.admin_database or "postgres",
        ssl=False,
    )
    try:
        for name in instance_attributes("asyncpg.connection.Connection"):
            assert hasattr(raw, name), name
        assert raw._transport.get_extra_info("ssl_object") is None
    finally:
        await raw.close()


async def test_aiomysql_connection_attributes(mysql_server: Server) -> None:
    """A real connection has the attributes the agent's subclass reads, holding what the agent expects."""
    raw = await aiomysql.connect(
        host=mysql_server.host,
        port=mysql_server.port,
        user=mysql_server.admin_user,
        password=mysql_server.admin_password,
        connect_timeout=5,
    )
    try:
        for name in instance_attributes("aiomysql.connection.Connection"):
            assert hasattr(raw, name), name
        assert (raw._host, raw._port, raw._ssl_context) == (mysql_server.host, mysql_server.port, None)
        assert raw._writer.transport.get_extra_info("ssl_object") is None
    finally:
        await raw.ensure_closed()


def test_refreshable_credentials_attributes() -> None:
    """Credentials built as the container provider builds them keep their expiry in `_expiry_time`."""
    from aiobotocore.credentials import AioRefreshableCredentials

    expiry = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    credentials = AioRefreshableCredentials.create_from_metadata(
        metadata={"access_key": "AKIDPRIVATEAPI", "secret_key": "x" * 40, "token": "t", "expiry_time": str(expiry)},
        refresh_using=None,
        method="container-role",
    )
    for name in instance_attributes("botocore.credentials.RefreshableCredentials"):
        assert hasattr(credentials, name), name
    assert credentials._expiry_time == expiry


def test_credential_resolver_attributes() -> None:
    """The standard chain's resolver lists its providers, the container provider among them, by METHOD."""
    from aiobotocore.credentials import AioContainerProvider, create_credential_resolver
    from aiobotocore.session import get_session

    resolver = create_credential_resolver(get_session())
    for name in instance_attributes("botocore.credentials.CredentialResolver"):
        assert hasattr(resolver, name), name
    assert AioContainerProvider.METHOD in [provider.METHOD for provider in resolver.providers]


def test_instance_metadata_provider_attributes() -> None:
    """The standard chain's instance metadata provider holds its fetcher, and the fetcher its AIOHTTPSession."""
    from aiobotocore.httpsession import AIOHTTPSession
    from aiobotocore.session import get_session

    from agent.aws.clients import _fast_resolver

    resolver = _fast_resolver(get_session(), 2.0, {})
    [provider] = [p for p in resolver.providers if p.METHOD == "iam-role"]
    for name in instance_attributes("botocore.credentials.InstanceMetadataProvider"):
        assert hasattr(provider, name), name
    for name in instance_attributes("aiobotocore.utils.AioIMDSFetcher"):
        assert hasattr(provider._role_fetcher, name), name
    assert isinstance(provider._role_fetcher._session, AIOHTTPSession)


def test_moto_server_attributes() -> None:
    """A started ThreadedMotoServer holds its werkzeug server in `_server`, whose listening socket can be closed."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    werkzeug_server = None
    try:
        for name in instance_attributes("moto.moto_server.threaded_moto_server.ThreadedMotoServer"):
            assert hasattr(server, name), name
        werkzeug_server = server._server
        assert werkzeug_server is not None and callable(werkzeug_server.server_close)
    finally:
        server.stop()
        if werkzeug_server is not None:
            werkzeug_server.server_close()


def test_ssl_object_attributes() -> None:
    """An SSLObject (as asyncio makes one, through wrap_bio) has `_sslobj`, with get_unverified_chain()."""
    import ssl

    tls = ssl.create_default_context().wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="localhost")
    for name in instance_attributes("ssl.SSLObject"):
        assert hasattr(tls, name), name
    assert callable(tls._sslobj.get_unverified_chain)  # type: ignore[attr-defined]


def test_session_attributes() -> None:
    """A session keeps the endpoint resolver its clients get in `_internal_components`, a ComponentLocator."""
    from aiobotocore.session import get_session
    from botocore.regions import EndpointResolver

    session = get_session()
    for name in instance_attributes("botocore.session.Session"):
        assert hasattr(session, name), name
    assert isinstance(session._internal_components.get_component("endpoint_resolver"), EndpointResolver)


INSTANCE_CHECKS = {
    "ssl.SSLObject": test_ssl_object_attributes,
    "botocore.session.Session": test_session_attributes,
    "asyncpg.connection.Connection": test_asyncpg_connection_attributes,
    "aiomysql.connection.Connection": test_aiomysql_connection_attributes,
    "botocore.credentials.RefreshableCredentials": test_refreshable_credentials_attributes,
    "botocore.credentials.CredentialResolver": test_credential_resolver_attributes,
    "moto.moto_server.threaded_moto_server.ThreadedMotoServer": test_moto_server_attributes,
    "botocore.credentials.InstanceMetadataProvider": test_instance_metadata_provider_attributes,
    "aiobotocore.utils.AioIMDSFetcher": test_instance_metadata_provider_attributes,
}


def test_every_guarding_test_exists() -> None:
    """Each node id in `guarded_by` collects (without conftest: collecting must not touch this run's fixtures)."""
    ids = sorted({node for api in PRIVATE_APIS for node in api.guarded_by})
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "--noconftest", "-p", "no:cacheprovider"]
    collected = subprocess.run([*command, *ids], cwd=REPO, capture_output=True, text=True, timeout=300)
    lines = collected.stdout.splitlines()
    missing = [node for node in ids if not any(line == node or line.startswith(f"{node}[") for line in lines)]
    assert (collected.returncode, missing) == (0, []), collected.stdout[-2000:] + collected.stderr[-2000:]


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__") and name not in DOCUMENTED


def root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def foreign_origins(tree: ast.Module) -> dict[str, str]:
    """Local names bound by imports from outside the agent (function-level ones too) -> what they name."""
    origins: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in (a for a in node.names if not a.name.startswith("agent")):
                local = alias.asname or alias.name.split(".")[0]
                origins[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and not (node.module or "").startswith("agent"):
            origins |= {alias.asname or alias.name: f"{node.module}.{alias.name}" for alias in node.names}
    return origins


def foreign_bases(cls: ast.ClassDef, origins: dict[str, str]) -> list[Any]:
    """The classes from other packages that a class derives from directly, imported."""
    bases = []
    for base in cls.bases:
        dotted = ast.unparse(base)
        root, _, rest = dotted.partition(".")
        if root in origins:
            bases.append(resolve(f"{origins[root]}.{rest}" if rest else origins[root]))
    return bases


def inherited_private_members(cls: ast.ClassDef, bases: list[Any]) -> set[str]:
    """In a subclass of another package's class: the base's private methods it overrides, and private attributes
    it reads but never assigns (so they come from the base)."""
    methods = {n.name for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    declared = {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    declared |= {t.id for n in cls.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    on_self = [
        n
        for n in ast.walk(cls)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "self"
    ]
    assigned = {n.attr for n in on_self if isinstance(n.ctx, ast.Store)}
    read = {n.attr for n in on_self if is_private(n.attr)} - assigned - methods - declared
    overridden = {name for name in methods if is_private(name) and any(hasattr(b, name) for b in bases)}
    return read | overridden


def private_names_used(path: Path) -> set[str]:
    """Private names of other packages a module uses: imported, read off a non-self object, via getattr, or
    inherited by a subclass of another package's class."""
    tree = ast.parse(path.read_text(), str(path))
    origins = foreign_origins(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and not (node.module or "").startswith("agent"):
            found |= {a.name for a in node.names if is_private(a.name)}
        elif isinstance(node, ast.Attribute) and is_private(node.attr):
            if not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"}):
                found.add(node.attr)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {"getattr", "hasattr"}:
            if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
                found |= {node.args[1].value} if is_private(node.args[1].value) else set()
        elif isinstance(node, ast.ClassDef) and (bases := foreign_bases(node, origins)):
            found |= inherited_private_members(node, bases)
    return found


def test_every_private_name_the_agent_uses_is_listed() -> None:
    """A private name of another package used anywhere in agent/ without a record here fails (the agent's own
    private attributes are reached through self or cls, never another object)."""
    listed = {(api.used_in, owner_and_attribute(api)[1]) for api in PRIVATE_APIS}
    used = {
        (str(path.relative_to(REPO)), name)
        for path in sorted((REPO / "agent").rglob("*.py"))
        for name in private_names_used(path)
    }
    assert used - listed == set(), "list these in agent/shared/private_api.py"
    assert {("agent/probes/drivers/pg.py", "_transport"), ("agent/aws/container.py", "_RefCountedSession")} <= used


def test_every_record_is_still_used_where_it_says_and_points_there() -> None:
    """A record whose name left its module is stale; a module using private API names the registry in a comment."""
    for api in PRIVATE_APIS:
        source = (REPO / api.used_in).read_text()
        assert owner_and_attribute(api)[1] in source, f"{api.name} is no longer used in {api.used_in}"
        assert "agent/shared/private_api.py" in source, f"{api.used_in} has no comment pointing at the registry"
