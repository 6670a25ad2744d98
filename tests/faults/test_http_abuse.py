"""Abuse of the HTTP server over raw sockets: unknown paths and methods, oversized request lines and headers,
garbage bytes, clients sending a byte a second, hundreds of idle connections. None of it stops /health from
answering quickly, crashes the process, or leaves descriptors behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator

import pytest

from agent.sandbox.postgres import PostgresSandbox
from tests.faults.cadence import FAST
from tests.faults.harness import LiveAgent, Reply, http, live_agent, parse_reply
from tests.faults.hygiene import distinctive
from tests.faults.servers import PgControl

HEALTH_BUDGET = 0.5  # seconds; the shortest ALB/ECS timeout is 2 s
PATHS = ("/health", "/ready", "/status", "/metrics", "/")


@pytest.fixture(scope="module")
async def agent(fault_cluster: PostgresSandbox, pg_control: PgControl) -> AsyncIterator[LiveAgent]:
    password = distinctive("PostgreSQL password (HTTP abuse)")
    role = await pg_control.role(password)
    env = {
        **FAST,
        "AGENT_DB_DSN": f"postgresql://{role}@{fault_cluster.host}:{fault_cluster.port}/postgres",
        "AGENT_DB_PASSWORD": password,
    }
    try:
        async with live_agent("http-abuse", env) as running:
            await running.wait_status("ready", 20)
            yield running
    finally:
        await pg_control.drop_role(role)


async def raw(port: int, data: bytes, *, timeout: float = 1.0, read: bool = True) -> bytes:
    """Send bytes as they are; return whatever comes back until the server closes (or the timeout)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        if not read:
            return b""
        chunks = []
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(timeout):
                while chunk := await reader.read(65536):
                    chunks.append(chunk)
        return b"".join(chunks)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def assert_healthy(agent: LiveAgent) -> None:
    reply = await http(agent.port, "GET", "/health", timeout=HEALTH_BUDGET * 4)
    assert reply.status == 200 and reply.elapsed < HEALTH_BUDGET, f"/health {reply.status} in {reply.elapsed:.3f}s"
    assert agent.running, "the agent process died"


async def test_unknown_paths_answer_a_json_404_listing_the_endpoints(agent: LiveAgent) -> None:
    for path in ("/nope", "/health/", "//health", "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/status.json",
                 "/metrics/../status", "/%00", "/%ff%fe", "/" + "a" * 2000, "/health;jsessionid=1"):  # fmt: skip
        reply = await agent.get(path)
        assert reply.status in (400, 404), (path, reply.status)
        if reply.status == 404:
            assert reply.json()["paths"] == ["/health", "/ready", "/status", "/metrics"], path
        assert reply.headers.get("cache-control") == "no-store", path
    await assert_healthy(agent)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND"])
async def test_other_methods_are_405_with_allow_on_every_endpoint(agent: LiveAgent, method: str) -> None:
    for path in PATHS:
        reply = await agent.get(path, method=method)
        assert reply.status == 405, (method, path, reply.status)
        assert set(reply.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}, (method, path)
        assert reply.json()["error"] == "method not allowed"


async def test_a_method_http_does_not_know_is_400_from_the_parser(agent: LiveAgent) -> None:
    reply = await agent.get("/health", method="BREW")
    assert reply.status == 400
    await assert_healthy(agent)


async def test_head_answers_like_get_without_a_body(agent: LiveAgent) -> None:
    for path in PATHS:
        data = await raw(agent.port, f"HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        reply = parse_reply(data)
        assert reply.status in (200, 503) and reply.body == b"", (path, reply.status)


async def test_oversized_request_lines_headers_and_bodies_are_refused(agent: LiveAgent) -> None:
    """The server's limits (4 KiB line and field, 32 headers, 4 KiB body) answer 4xx at once, nothing buffered."""
    cases = {
        "64 KiB URL": f"GET /{'a' * 65536} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        "64 KiB header": f"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {'b' * 65536}\r\n\r\n".encode(),
        "200 headers": b"GET /health HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-%d: y\r\n" % i for i in range(200))
        + b"\r\n",
        "10 MB body announced": b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n" + b"z" * 65536,
        "1 MiB chunked body": b"POST /status HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"10000\r\n" + b"c" * 65536 + b"\r\n" for _ in range(16)) + b"0\r\n\r\n",
    }  # fmt: skip
    for name, request in cases.items():
        data = await raw(agent.port, request)
        status = parse_reply(data).status if data else None
        assert status is not None and 400 <= status < 500, (name, data[:120])
    await assert_healthy(agent)


async def test_garbage_bytes_get_400_or_a_closed_connection(agent: LiveAgent) -> None:
    rng = random.Random(5)  # fixed: the same garbage every run
    cases = [
        bytes(rng.getrandbits(8) for _ in range(4096)),
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64),  # a TLS ClientHello
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes(32),  # the HTTP/2 preface
        b"\x00" * 1024,
        b"\r\n" * 4096,
        b"GET /health HTTP/9.9\r\n\r\n",
        b"GET /health\r\n\r\n",  # HTTP/0.9
        b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n",
        b"GET /health HTTP/1.1\r\nBad Header Without Colon\r\n\r\n",
        "GET /health HTTP/1.1\r\nHost: \u00e9\u00e8\r\n\r\n".encode(),
    ]
    for data in cases:
        answer = await raw(agent.port, data)
        if answer:
            status = parse_reply(answer).status
            assert status in (200, 400, 404, 405, 505) or 400 <= status < 500, (data[:40], answer[:120])
    await assert_healthy(agent)


async def test_pipelined_requests_are_all_answered_in_order(agent: LiveAgent) -> None:
    requests = b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % p.encode() for p in ("/health", "/ready") * 50)
    data = await raw(agent.port, requests + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert data.count(b"HTTP/1.1 ") == 101


async def test_slow_clients_sending_a_byte_a_second_do_not_delay_health(agent: LiveAgent) -> None:
    """Slowloris: 50 clients dribbling a request line; /health keeps answering within its budget."""
    fds_before = agent.fds()
    request = b"GET /status HTTP/1.1\r\nHost: slow\r\nX-Pad: " + b"p" * 64

    async def dribble() -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", agent.port)
        try:
            for byte in request:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(1.0)
        except ConnectionError:
            pass
        finally:
            writer.close()

    clients = [asyncio.create_task(dribble()) for _ in range(50)]
    try:
        await asyncio.sleep(1.5)
        assert agent.fds() >= fds_before + 40, "the slow clients did not get through"
        for _ in range(10):
            await assert_healthy(agent)
            await asyncio.sleep(0.2)
    finally:
        for client in clients:
            client.cancel()
        await asyncio.gather(*clients, return_exceptions=True)
    await _fds_return_to(agent, fds_before)


async def test_hundreds_of_idle_connections_do_not_block_health(agent: LiveAgent) -> None:
    fds_before = agent.fds()
    writers = []
    try:
        for _ in range(500):
            _, writer = await asyncio.open_connection("127.0.0.1", agent.port)
            writers.append(writer)
        await asyncio.sleep(0.5)
        assert agent.fds() >= fds_before + 450, f"only {agent.fds() - fds_before} of 500 connections accepted"
        started = time.monotonic()
        replies: list[Reply] = await asyncio.gather(*(http(agent.port, "GET", p) for p in ("/health", "/ready") * 25))
        assert all(r.status in (200, 503) for r in replies)
        assert time.monotonic() - started < HEALTH_BUDGET * 4
        await assert_healthy(agent)
    finally:
        for writer in writers:
            writer.close()
    await _fds_return_to(agent, fds_before)


async def test_abuse_is_logged_as_one_warning_line_per_bad_request_without_traceback(agent: LiveAgent) -> None:
    """After all of the above the agent is still ready; each malformed request left one warning line, with
    no traceback and none of the client's bytes; nothing was logged as an error."""
    for request in (b"GET /health HTTP/1.1\r\nBad Header\r\n\r\n", f"GET /{'a' * 8192} HTTP/1.1\r\n\r\n".encode()):
        await raw(agent.port, request)
    await agent.wait_status("ready", 5)
    await asyncio.sleep(0.2)  # the log lines reach the pipe
    lines = agent.log_lines()
    errors = [line for line in lines if line["level"] in ("error", "critical") or "exception" in line]
    assert not errors, errors[:3]
    bad = [line for line in lines if line["logger"] == "aiohttp.server"]
    assert bad and all("bad HTTP request" in line["message"] for line in bad), bad[:3]
    assert not [line for line in bad if "aaaa" in line["message"] or "bbbb" in line["message"]]


async def _fds_return_to(agent: LiveAgent, expected: int, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while agent.fds() > expected + 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert agent.fds() <= expected + 1, f"file descriptors {expected} -> {agent.fds()} after the clients left"
