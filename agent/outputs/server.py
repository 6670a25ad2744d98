"""The HTTP face of the agent: /health, /ready, /status and /metrics, all read from the state snapshot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from aiohttp.log import access_logger
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from agent.config.models import AgentConfig, StatusDetail
from agent.outputs.connections import MAX_CONNECTIONS, CappedSite, ConnectionCap
from agent.outputs.io_metrics import OutputsCollector
from agent.outputs.listen import dual_stack_socket
from agent.outputs.logs import iso_utc
from agent.outputs.metrics import build_registry, render
from agent.outputs.status_page import PAGE_HEADERS, render_status_page
from agent.runtime.state import AgentState, AwsIdentity, ProbeView, Snapshot

STATE_KEY = web.AppKey("state", AgentState)
CONFIG_KEY = web.AppKey("config", AgentConfig)
REGISTRY_KEY = web.AppKey("registry", CollectorRegistry)

PATHS = ("/health", "/ready", "/status", "/metrics")
# No endpoint takes a body; anything bigger than a few headers' worth is not a health check.
CLIENT_MAX_SIZE = 4096
# Handlers only read a snapshot. The guard keeps a future handler that awaits from holding an ALB check past
# the shortest ALB timeout (2 s).
HANDLER_TIMEOUT_SECONDS = 1.0
# aiohttp arms this timer when a connection opens and re-arms it after each answer; bytes arriving do not reset
# it. So it is at once the time allowed for the first request's headers (a slow-headers client is cut here), and
# how long an idle keep-alive connection is kept. Health checkers send at once; Prometheus simply reconnects
# between scrapes (15-60 s). uvicorn's default keep-alive is 5 s too.
KEEPALIVE_SECONDS = 5.0
# After answering a request whose body was not read (a POST to a GET endpoint), how long to read and drop the rest.
LINGER_SECONDS = 1.0
SHUTDOWN_TIMEOUT_SECONDS = 2.0
NO_STORE = {"Cache-Control": "no-store"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(state: AgentState, config: AgentConfig) -> web.Application:
    """The aiohttp application: four read-only endpoints over `state`, JSON errors, no caching."""
    app = web.Application(client_max_size=CLIENT_MAX_SIZE, middlewares=[_json_errors])
    app[STATE_KEY] = state
    app[CONFIG_KEY] = config
    app[REGISTRY_KEY] = build_registry(state)
    for path, handler in zip(PATHS, (health, ready, status, metrics), strict=True):
        app.router.add_get(path, handler)  # HEAD comes with GET
    app.router.add_get("/", status_page)  # for people; not in PATHS, which lists the machine endpoints
    return app


async def start_server(
    app: web.Application, host: str, port: int, access_log: bool = False, max_connections: int = MAX_CONNECTIONS
) -> web.AppRunner:
    """Serve app on host:port inside the running loop, at most `max_connections` at once (see
    agent.outputs.connections); the caller awaits runner.cleanup() on shutdown."""
    cap = ConnectionCap(max_connections)
    app[REGISTRY_KEY].register(OutputsCollector(cap))
    runner = web.AppRunner(
        app,
        access_log=access_logger if access_log else None,  # a line per ALB check is noise by default
        keepalive_timeout=KEEPALIVE_SECONDS,
        lingering_time=LINGER_SECONDS,
        max_headers=32,
        max_line_size=4096,
        max_field_size=4096,
        shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,  # on the runner: aiohttp deprecates it on TCPSite
    )
    await runner.setup()
    try:
        await CappedSite(runner, host, port, cap, sock=dual_stack_socket(host, port)).start()
    except OSError:  # port in use, bad address: release the runner before the error reaches the caller
        await runner.cleanup()
        raise
    return runner


async def health(request: web.Request) -> web.Response:
    """Liveness: 503 only when the scheduler stopped ticking; never depends on a downstream system."""
    if request.app[STATE_KEY].stalled():
        return _json({"status": "stalled"}, 503)
    return _json({"status": "alive"})


async def ready(request: web.Request) -> web.Response:
    """Readiness, per the readiness policy: 200 ready/degraded, 503 starting/not_ready/draining."""
    verdict = request.app[STATE_KEY].readiness()  # not the snapshot: /ready needs no per-probe views
    body = {"status": verdict.status.value, "failing": [f.as_dict() for f in verdict.failing]}
    return _json(body, 200 if verdict.http_ok else 503)


async def status(request: web.Request) -> web.Response:
    """Everything known, per probe and target; always 200 (it is a report, /ready is the verdict)."""
    return _json(status_body(request.app[STATE_KEY].snapshot(), _full_detail(request)))


async def status_page(request: web.Request) -> web.Response:
    """The status page for a person (HTML, see agent.outputs.status_page); always 200, like /status."""
    body = render_status_page(request.app[STATE_KEY].snapshot(), _full_detail(request), time.time())
    return web.Response(text=body, content_type="text/html", charset="utf-8", headers={**NO_STORE, **PAGE_HEADERS})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition; always 200, since a 503 makes Prometheus drop the whole scrape."""
    body = render(request.app[REGISTRY_KEY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST, **NO_STORE})


def _full_detail(request: web.Request) -> bool:
    """Whether messages, hints and the AWS identity may be shown (AGENT_STATUS_DETAIL=full)."""
    return request.app[CONFIG_KEY].status_detail is StatusDetail.FULL


def status_body(snapshot: Snapshot, full: bool) -> dict[str, object]:
    """The /status document; `full=False` (status_detail=summary) leaves out messages, hints and identity."""
    body: dict[str, object] = {
        "status": snapshot.status.value,
        "ready": snapshot.http_ok,
        "version": snapshot.version,
        "failing": [f.as_dict() for f in snapshot.failing],
        "probes": [_probe_entry(view, full) for view in snapshot.probes],
        "clock_skew_seconds": snapshot.clock_skew_seconds,  # AWS's Date minus this clock; null before an answer
    }
    if full and snapshot.aws is not None:
        body["aws"] = _aws_entry(snapshot.aws)
    return body


def _probe_entry(view: ProbeView, full: bool) -> dict[str, object]:
    last = view.last
    entry: dict[str, object] = {
        "probe": view.probe,
        "target": view.target,
        "ok": last.ok if last else None,
        "reason": last.reason.value if last and last.reason else None,
        "scope": last.scope.value if last and last.scope else None,
        "code": last.code if last else None,
        "critical": view.critical,
        "consecutive_failures": view.consecutive_failures,
        "last_success": _iso(view.last_success),
        "last_run": _iso(last.finished_at if last else None),
        "last_duration_ms": round(last.duration_ms, 1) if last else None,
    }
    if last is not None and not last.ok and "login_backoff_seconds" in last.details:
        entry["login_backoff_seconds"] = float(last.details["login_backoff_seconds"])
    if last is not None and last.ok and "tls_verified" in last.details:  # encrypted: was the server checked?
        entry["tls"] = {"version": last.details.get("tls"), "verified": last.details["tls_verified"]}
    if not view.facts.empty:  # what the database login read, and what to act on before it breaks
        entry["database"] = view.facts.as_dict() | {"warnings": view.facts.warnings(time.time())}
    if full:
        entry["message"] = last.message if last else ""
        entry["hint"] = last.hint if last else ""
    return entry


def _aws_entry(aws: AwsIdentity) -> dict[str, object]:
    expires = iso_utc(aws.expires_at, "auto") if aws.expires_at else None
    return {
        "arn": aws.arn,
        "account": aws.account,
        "provider": aws.provider,
        "credentials_expire_at": expires,
    }


def _iso(moment: float | None) -> str | None:
    return iso_utc(moment, "seconds") if moment is not None else None


def _json(body: Mapping[str, object], status_code: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status_code, headers={**NO_STORE, **(headers or {})})


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown paths and wrong methods answer in JSON, like everything else; no response is cached."""
    try:
        async with asyncio.timeout(HANDLER_TIMEOUT_SECONDS):
            response = await handler(request)
    except web.HTTPMethodNotAllowed as exc:
        allowed = sorted(exc.allowed_methods)
        body: dict[str, object] = {"error": "method not allowed", "allowed": allowed}
        return _json(body, 405, {"Allow": ", ".join(allowed)})
    except web.HTTPNotFound:
        return _json({"error": "not found", "paths": list(PATHS)}, 404)
    except TimeoutError:
        return _json({"error": "handler timed out"}, 503)
    response.headers.setdefault("Cache-Control", "no-store")
    return response
