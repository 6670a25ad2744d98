"""Every private or undocumented name of a dependency the agent relies on, in one place.

A release may rename or remove any of these without notice. So: pyproject.toml keeps those packages' ranges to the
major version the tests ran with, requirements/*.txt pins the exact versions (scripts/lock.sh), and
tests/shared/test_private_api.py checks that each name below still exists (on a real object where the agent reads
it from one), that each guarding test exists, and that no private name is used in `agent/` without a record here.
Before taking an upgrade (`scripts/lock.sh --upgrade`), run the guarding tests: they fail when the behaviour the
agent gets from a name is gone, not only the name.

Strings only, on purpose: importing the packages here would load aiobotocore and the drivers into every process
that imports the shared vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PrivateApi:
    """One private name: what it is, who provides it, where and why the agent uses it, what test guards it.

    `name` is the dotted path from the module (`package.module.Class.attribute`); `package` is the distribution
    that ships it (as pinned in requirements/); `used_in` is the agent module, relative to the repository;
    `guarded_by` holds pytest node ids of tests that fail if an upgrade removes the name or changes what it does;
    `on_instance` marks an attribute that only an object has (set in `__init__` or at connect time), which the
    test checks on a real object.
    """

    name: str
    package: str
    used_in: str
    why: str
    guarded_by: tuple[str, ...]
    on_instance: bool = False


_CREDENTIALS = "tests/probes/test_credentials.py"
_PG = "tests/probes/test_db_pg.py"
_MYSQL = "tests/probes/test_db_mysql.py"
_CONTAINER_SUCCESS = f"{_CREDENTIALS}::test_container_role_success_reports_provider_expiry_and_identity"
_CONTAINER_HANG = f"{_CREDENTIALS}::test_hanging_endpoint_is_timeout_within_the_probe_timeout"
_MYSQL_SUCCESS = f"{_MYSQL}::test_success_reports_version_tls_login_and_leaves_no_session"
_MYSQL_NO_TLS = f"{_MYSQL}::test_tls_required_against_a_server_without_tls_sends_no_credentials"
_MYSQL_SILENT = f"{_MYSQL}::test_silent_listener_times_out_within_the_budget_and_says_where"
_GUARD = "tests/probes/drivers/test_guard.py"
_GUARD_PG = (
    f"{_GUARD}::test_asyncpg_builds_its_protocol_from_the_guards_subclass",
    f"{_GUARD}::test_a_gigantic_or_endless_answer_is_server_answer_too_large_at_once",
    f"{_GUARD}::test_pg_answers_are_counted_per_request_on_a_kept_connection",
)
_GUARD_MYSQL = (
    f"{_GUARD}::test_mysql_answers_are_counted_per_request_and_a_claim_past_the_cap_is_refused",
    f"{_GUARD}::test_a_gigantic_or_endless_answer_is_server_answer_too_large_at_once",
)
_CAPPED = "tests/aws/test_capped_http.py"
_CLEARTEXT = "tests/probes/test_db_cleartext.py"
_PG_GUARD = (
    f"{_CLEARTEXT}::test_pg_cleartext_request_without_tls_is_refused",
    f"{_CLEARTEXT}::test_pg_without_the_guard_the_standin_gets_the_password",
    f"{_CLEARTEXT}::test_pg_guard_is_the_protocol_asyncpg_builds",
)
_MYSQL_GUARD = (
    f"{_CLEARTEXT}::test_mysql_readable_password_request_without_tls_is_refused",
    f"{_CLEARTEXT}::test_mysql_without_the_guard_the_standin_gets_the_password",
)
_MYSQL_AUTH = "agent/probes/drivers/mysql_auth.py"
_SOURCES = "tests/aws/test_credential_sources.py"
_TOKEN_ECHOED = f"{_SOURCES}::test_a_403_page_quoting_the_authorization_token_never_shows_it"
_CONTAINER_REDIRECT = f"{_SOURCES}::test_a_redirect_from_the_container_endpoint_is_never_followed"
_IMDS_REDIRECT = f"{_SOURCES}::test_a_redirect_from_the_instance_metadata_service_is_never_followed"
_UNCHECKED = "tests/probes/test_db_unchecked.py"
_PG_TRUST = f"{_UNCHECKED}::test_trust_with_a_wrong_password_passes_with_a_note"
_PG_ASKED = f"{_UNCHECKED}::test_a_server_that_asks_for_the_password_gets_no_note"
_PG_GARBAGE = "tests/probes/test_db_wrong_server.py::test_either_engine_at_a_server_that_sends_garbage"
_SHA2 = "tests/probes/test_db_mysql_sha2.py"
_SHA2_RSA = f"{_SHA2}::test_a_cache_miss_without_tls_logs_in_through_the_rsa_exchange"
_SHA2_TLS = f"{_SHA2}::test_a_cache_miss_over_tls_sends_the_password_in_the_tls_session"
_SHA2_SWITCH = f"{_SHA2}::test_a_switch_to_caching_sha2_password_is_followed"
_SHA2_NO_KEY = f"{_SHA2}::test_a_server_without_rsa_keys_demands_tls"
_SHA2_GUARDS = (_SHA2_RSA, _SHA2_TLS, _SHA2_SWITCH, _SHA2_NO_KEY, f"{_SHA2}::test_sha256_password_over_rsa_or_tls")
_CERTIFICATE = "tests/probes/test_db_certificate.py"
STDLIB = "python"  # the package of a standard-library name: the image's Python (Dockerfile PYTHON_IMAGE) fixes it
_FETCHER_CONSTANT = (
    "an undocumented class constant botocore's container fetcher reads; overridden in a subclass so a credentials"
    " run gives up within the probe's timeout (the defaults take ~9 s against a silent endpoint). A rename would"
    " silently restore the defaults"
)

PRIVATE_APIS: tuple[PrivateApi, ...] = (
    PrivateApi(
        name="aiobotocore.utils._RefCountedSession",
        package="aiobotocore",
        used_in="agent/aws/container.py",
        why=(
            "the HTTP session class AioContainerMetadataFetcher expects (it acquires and releases it per fetch);"
            " built here with verify=False for an http endpoint, which spares loading the CA bundle every run"
        ),
        guarded_by=(_CONTAINER_SUCCESS, _CONTAINER_HANG),
    ),
    PrivateApi(
        name="aiobotocore.utils.AioContainerMetadataFetcher.RETRY_ATTEMPTS",
        package="aiobotocore",
        used_in="agent/aws/container.py",
        why=_FETCHER_CONSTANT,
        guarded_by=(_CONTAINER_HANG,),
    ),
    PrivateApi(
        name="aiobotocore.utils.AioContainerMetadataFetcher.SLEEP_TIME",
        package="aiobotocore",
        used_in="agent/aws/container.py",
        why=_FETCHER_CONSTANT,
        guarded_by=(_CONTAINER_HANG,),
    ),
    PrivateApi(
        name="aiobotocore.utils.AioContainerMetadataFetcher.TIMEOUT_SECONDS",
        package="aiobotocore",
        used_in="agent/aws/container.py",
        why=_FETCHER_CONSTANT,
        guarded_by=(_CONTAINER_HANG,),
    ),
    PrivateApi(
        name="botocore.credentials.CredentialResolver.providers",
        package="botocore",
        used_in="agent/aws/clients.py",
        why=(
            "the standard chain's provider list, undocumented; the container provider is replaced in place by one"
            " with the fast fetcher, keeping botocore's order of providers"
        ),
        guarded_by=(_CONTAINER_HANG,),
        on_instance=True,
    ),
    PrivateApi(
        name="botocore.credentials.ContainerProvider._build_headers",
        package="botocore",
        used_in="agent/aws/clients.py",
        why=(
            "where the container provider reads the authorization token it sends (from its file on every fetch);"
            " overridden to register that value as a secret, so an endpoint's page quoting it never shows it"
        ),
        guarded_by=(_TOKEN_ECHOED,),
    ),
    PrivateApi(
        name="aiobotocore.httpsession.AIOHTTPSession._get_session",
        package="aiobotocore",
        used_in="agent/aws/container.py",
        why=(
            "where send() gets the aiohttp.ClientSession whose request() it awaits; wrapped on the credentials"
            " fetchers' sessions so request() never follows a redirect (aiohttp's default would)"
        ),
        guarded_by=(_CONTAINER_REDIRECT, _IMDS_REDIRECT),
    ),
    PrivateApi(
        name="botocore.credentials.InstanceMetadataProvider._role_fetcher",
        package="botocore",
        used_in="agent/aws/clients.py",
        why="the instance metadata provider's fetcher, whose HTTP session is made to refuse redirects",
        guarded_by=(_IMDS_REDIRECT,),
        on_instance=True,
    ),
    PrivateApi(
        name="aiobotocore.utils.AioIMDSFetcher._session",
        package="aiobotocore",
        used_in="agent/aws/clients.py",
        why="the instance metadata fetcher's HTTP session (an AIOHTTPSession), made to refuse redirects",
        guarded_by=(_IMDS_REDIRECT,),
        on_instance=True,
    ),
    PrivateApi(
        name="botocore.credentials.RefreshableCredentials._expiry_time",
        package="botocore",
        used_in="agent/probes/credentials.py",
        why=(
            "botocore keeps the expiry of refreshable credentials only here (public: refresh_needed() alone);"
            " it feeds expires_at and aws_credentials_expiry_timestamp_seconds"
        ),
        guarded_by=(
            _CONTAINER_SUCCESS,
            "tests/probes/test_credentials_eks.py::test_irsa_reports_the_web_identity_provider_and_the_role_sts_gave",
        ),
        on_instance=True,
    ),
    PrivateApi(
        name="asyncpg.connection.Connection._transport",
        package="asyncpg",
        used_in="agent/probes/drivers/pg.py",
        why="asyncpg has no public TLS accessor; the transport's ssl_object is what was really negotiated",
        guarded_by=(
            f"{_PG}::test_tls_is_really_negotiated_in_every_sslmode",
            f"{_PG}::test_success_reports_version_tls_login_and_leaves_no_session",
        ),
        on_instance=True,
    ),
    PrivateApi(
        name="aiomysql.connection.Connection._writer",
        package="aiomysql",
        used_in="agent/probes/drivers/mysql.py",
        why="aiomysql has no public TLS accessor; the writer's transport holds the negotiated ssl_object",
        guarded_by=(_MYSQL_SUCCESS,),
        on_instance=True,
    ),
    PrivateApi(
        name="aiomysql.connection.Connection._connect",
        package="aiomysql",
        used_in="agent/probes/drivers/mysql.py",
        why="what aiomysql.connect() runs, called on the agent's subclass (connect() always builds its own class)",
        guarded_by=(_MYSQL_SUCCESS,),
    ),
    PrivateApi(
        name="aiomysql.connection.Connection._get_server_information",
        package="aiomysql",
        used_in="agent/probes/drivers/mysql.py",
        why="overridden to record the step 'waiting for the server greeting', which a timeout then reports",
        guarded_by=(_MYSQL_SILENT,),
    ),
    PrivateApi(
        name="aiomysql.connection.Connection._request_authentication",
        package="aiomysql",
        used_in="agent/probes/drivers/mysql.py",
        why=(
            "overridden to refuse to send credentials when TLS is required and the server does not offer it"
            " (aiomysql would go on in plaintext)"
        ),
        guarded_by=(_MYSQL_NO_TLS,),
    ),
    PrivateApi(
        name="aiomysql.connection.Connection._host",
        package="aiomysql",
        used_in="agent/probes/drivers/mysql.py",
        why="the server named in the step and TLS messages of the overrides above",
        guarded_by=(_MYSQL_SILENT, _MYSQL_NO_TLS),
        on_instance=True,
    ),
    PrivateApi(
        name="aiomysql.connection.Connection._port",
        package="aiomysql",
        used_in="agent/probes/drivers/mysql.py",
        why="the server named in the step and TLS messages of the overrides above",
        guarded_by=(_MYSQL_SILENT, _MYSQL_NO_TLS),
        on_instance=True,
    ),
    PrivateApi(
        name="aiomysql.connection.Connection._ssl_context",
        package="aiomysql",
        used_in="agent/probes/drivers/mysql.py",
        why="whether aiomysql will start TLS, so the login step says 'TLS and login' or 'login'",
        guarded_by=(_MYSQL_SUCCESS, _MYSQL_NO_TLS),
        on_instance=True,
    ),
    PrivateApi(
        name="asyncpg.protocol.Protocol",
        package="asyncpg",
        used_in="agent/probes/drivers/pg_auth.py",
        why=(
            "replaced by GuardedProtocol, its subclass: asyncpg's connect_utils looks the class up by this name at"
            " each connect, and asyncpg answers AuthenticationCleartextPassword inside it, with no option to refuse;"
            " the subclass also notes whether the server asked for the password, and cuts a stream that is not"
            " PostgreSQL's"
        ),
        guarded_by=(*_PG_GUARD, _PG_TRUST, _PG_ASKED, _PG_GARBAGE),
    ),
    PrivateApi(
        name="aiomysql.connection.Connection._read_bytes",
        package="aiomysql",
        used_in="agent/probes/drivers/guard.py",
        why="overridden: every read (a packet header, then the length it claims) is counted against the cap first",
        guarded_by=_GUARD_MYSQL,
    ),
    PrivateApi(
        name="aiomysql.connection.Connection._write_bytes",
        package="aiomysql",
        used_in="agent/probes/drivers/guard.py",
        why="overridden: every write is a new request, so the count of its answer starts again",
        guarded_by=_GUARD_MYSQL,
    ),
    PrivateApi(
        name="aiomysql.connection.Connection._get_server_information",
        package="aiomysql",
        used_in="agent/probes/drivers/guard.py",
        why="overridden to refuse a greeting that is not HandshakeV10 (aiomysql fails on it later with a ValueError)",
        guarded_by=(f"{_GUARD}::test_a_greeting_that_is_not_handshake_v10_is_not_a_mysql_server",),
    ),
    PrivateApi(
        name="aiomysql.connection.Connection._host",
        package="aiomysql",
        used_in="agent/probes/drivers/guard.py",
        why="the server named in the cap's message",
        guarded_by=_GUARD_MYSQL,
        on_instance=True,
    ),
    PrivateApi(
        name="aiomysql.connection.Connection._port",
        package="aiomysql",
        used_in="agent/probes/drivers/guard.py",
        why="the server named in the cap's message",
        guarded_by=_GUARD_MYSQL,
        on_instance=True,
    ),
    PrivateApi(
        name="aiobotocore.awsrequest.AioAWSResponse._content_prop",
        package="aiobotocore",
        used_in="agent/aws/capped_http.py",
        why=(
            "reads the body once through `raw.read()`, which the capped session replaces with a read bounded by the"
            " cap; if it read the aiohttp response some other way, bodies would be read whole again"
        ),
        guarded_by=(
            f"{_CAPPED}::test_an_endless_body_is_cut_at_the_cap",
            f"{_CAPPED}::test_the_largest_secret_secrets_manager_stores_passes_whole",
        ),
    ),
    PrivateApi(
        name="aiomysql.connection.Connection._process_auth",
        package="aiomysql",
        used_in=_MYSQL_AUTH,
        why="overridden to refuse an auth switch to mysql_clear_password on a connection without TLS",
        guarded_by=_MYSQL_GUARD,
    ),
    PrivateApi(
        name="aiomysql.connection.Connection._request_authentication",
        package="aiomysql",
        used_in=_MYSQL_AUTH,
        why="overridden to refuse a greeting that names mysql_clear_password on a connection without TLS",
        guarded_by=_MYSQL_GUARD,
    ),
    PrivateApi(
        name="aiomysql.connection.Connection.server_public_key",
        package="aiomysql",
        used_in=_MYSQL_AUTH,
        why=(
            "a documented connect() argument, but that aiomysql reads the attribute just before RSA-encrypting the"
            " password to a key the server sent (no TLS) is not: a property there refuses instead"
        ),
        guarded_by=_MYSQL_GUARD,
        on_instance=True,
    ),
    PrivateApi(
        name="asyncpg.connection.Connection._protocol",
        package="asyncpg",
        used_in="agent/probes/drivers/pg_auth.py",
        why="the open connection's protocol object, which holds what the agent's subclass read during the login",
        guarded_by=(_PG_TRUST, _PG_ASKED),
        on_instance=True,
    ),
    PrivateApi(
        name="aiomysql.connection.Connection._read_packet",
        package="aiomysql",
        used_in="agent/probes/drivers/mysql_sha2.py",
        why="reads the server's next packet (raising its ERR) in the agent's caching_sha2/sha256 exchanges",
        guarded_by=_SHA2_GUARDS,
    ),
    PrivateApi(
        name="aiomysql.connection.Connection._password",
        package="aiomysql",
        used_in="agent/probes/drivers/mysql_sha2.py",
        why="the password the SHA-2 exchanges send (scrambled, over TLS, or RSA-encrypted)",
        guarded_by=_SHA2_GUARDS,
        on_instance=True,
    ),
    PrivateApi(
        name="aiomysql.connection.Connection._secure",
        package="aiomysql",
        used_in=_MYSQL_AUTH,
        why="whether TLS is up, for the guards above (aiomysql sets it after its TLS upgrade)",
        guarded_by=_MYSQL_GUARD,
        on_instance=True,
    ),
    PrivateApi(
        name="aiomysql.connection.Connection._server_auth_plugin",
        package="aiomysql",
        used_in=_MYSQL_AUTH,
        why="the plugin the server's greeting names (mysql_clear_password is refused without TLS)",
        guarded_by=_MYSQL_GUARD,
        on_instance=True,
    ),
    PrivateApi(
        name="aiomysql.connection.Connection._client_auth_plugin",
        package="aiomysql",
        used_in=_MYSQL_AUTH,
        why="the plugin aiomysql uses instead of the greeting's when one is configured (the agent sets none)",
        guarded_by=_MYSQL_GUARD,
        on_instance=True,
    ),
    PrivateApi(
        name="aiomysql.connection.Connection._password",
        package="aiomysql",
        used_in=_MYSQL_AUTH,
        why="whether there is a password to protect before refusing the RSA exchange (an empty one is harmless)",
        guarded_by=_MYSQL_GUARD,
        on_instance=True,
    ),
    PrivateApi(
        name="aiomysql.connection.Connection._secure",
        package="aiomysql",
        used_in="agent/probes/drivers/mysql_sha2.py",
        why="whether TLS is up: a full authentication then sends the password in the clear, else through RSA",
        guarded_by=(_SHA2_RSA, _SHA2_TLS),
        on_instance=True,
    ),
    PrivateApi(
        name="moto.moto_server.threaded_moto_server.ThreadedMotoServer._server",
        package="moto",
        used_in="agent/sandbox/aws.py",
        why=(
            "moto's stop() leaves the listening socket open (a ResourceWarning, an error under the tests'"
            " warnings-as-errors); the sandbox and the tests close it through the werkzeug server kept here"
        ),
        guarded_by=(f"{_CREDENTIALS}::test_env_keys_report_the_env_provider_without_expiry",),
        on_instance=True,
    ),
    PrivateApi(
        name="aiohttp.web_runner.BaseSite._server",
        package="aiohttp",
        used_in="agent/outputs/connections.py",
        why=(
            "where a site keeps its asyncio server: BaseSite.stop() (called by runner.cleanup()) closes it and"
            " runner.addresses reads it. The capped site sets it as aiohttp's own TCPSite does, having created the"
            " server with a protocol factory of its own (aiohttp has no connection cap: aio-libs/aiohttp#675)"
        ),
        guarded_by=(
            "tests/outputs/test_connections.py::test_at_the_cap_the_oldest_connection_makes_way_and_health_still_answers",
        ),
    ),
    PrivateApi(
        name="_ssl._test_decode_cert",
        package=STDLIB,
        used_in="agent/probes/drivers/certificate.py",
        why=(
            "CPython's own certificate parser for a certificate the handshake did not verify (prefer, require): the"
            " dict getpeercert() gives when verified. cryptography would cost ~10 MB of RSS for the same three"
            " fields; without it the agent falls back to cryptography"
        ),
        guarded_by=(f"{_CERTIFICATE}::test_a_verified_certificate_is_read_from_the_ssl_module_not_parsed_again",),
    ),
    PrivateApi(
        name="ssl.SSLObject._sslobj",
        package=STDLIB,
        used_in="agent/probes/drivers/certificate.py",
        why=(
            "the C object behind an SSLObject, whose get_unverified_chain() (public on SSLObject from Python 3.13"
            " only) gives the certificate a failed verification refused: an expired certificate's failure names"
            " its notAfter. Without it the failure is still db:tls_expired, without the date"
        ),
        guarded_by=(
            f"{_CERTIFICATE}::test_an_expired_certificate_under_verify_full_fails_with_its_date",
            f"{_CERTIFICATE}::test_mariadb_reads_the_certificate_under_require_and_verify_full",
        ),
        on_instance=True,
    ),
    PrivateApi(
        name="botocore.session.Session._internal_components",
        package="botocore",
        used_in="agent/aws/endpoint_data.py",
        why=(
            "where a session registers the endpoint resolver its clients get (no public setter); the agent's holds"
            " endpoints.json for the services it calls only, 6.8 MiB less RSS (issue #16)"
        ),
        guarded_by=(
            "tests/aws/test_endpoint_data.py::test_clients_get_the_lean_resolver_and_the_same_endpoints_and_signing",
        ),
        on_instance=True,
    ),
)
