"""A blocking call on a running event loop fails the test: blockbuster, as aiohttp's own test suite uses it.

blockbuster patches the blocking functions of the standard library (time.sleep, os.stat, file and socket I/O,
lock waits, ...) and raises BlockingError when one is called from a thread whose event loop is running, unless
a frame on the call stack is one where blocking is allowed. `ALLOWED` is that list: each entry names the exact
function (file and function name) and the blocking calls it may make, and says why. Everything else that blocks
the loop fails the test, the agent's code and the tests' own alike.

A BlockingError can be swallowed (the probe runner's catch-all turns any exception into an `unknown` result),
so every one raised during a test is also recorded, and the fixture in tests/conftest.py fails the test with
the list at teardown.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import blockbuster.blockbuster as blockbuster_impl
from blockbuster import BlockBuster, BlockingError

EVERY = ("*",)  # every function blockbuster watches; only for frames that run no agent code


@dataclass(frozen=True)
class Allowance:
    """Blocking calls `calls` (blockbuster's names) are allowed under a frame of `file` running one of `functions`."""

    file: str  # a path suffix, e.g. "botocore/loaders.py"
    functions: frozenset[str]
    calls: tuple[str, ...]
    why: str


def _allow(file: str, functions: set[str], calls: tuple[str, ...], why: str) -> Allowance:
    return Allowance(file, frozenset(functions), calls, why)


ALLOWED: tuple[Allowance, ...] = (
    # Third-party code the agent awaits in production. Not ours to change; each was measured or read.
    _allow(
        "botocore/loaders.py",
        {"load_service_model", "load_data_with_path"},
        ("os.stat", "os.listdir", "io.BufferedReader.read"),
        "aiobotocore creates a client with botocore's synchronous loader (service model and endpoint JSON, "
        "once per client: the agent keeps its clients). AioConfig(warm_up_loader_caches=True) moves the reads to "
        "a thread, but the JSON parse holds the GIL: the loop still stalled ~100 ms here, no better than on it.",
    ),
    _allow(
        "botocore/configloader.py",
        {"raw_config_parse"},
        ("os.stat",),
        "botocore's credential chain checks for ~/.aws/config and ~/.aws/credentials (a stat of a missing file "
        "in a task) when the chain is built and on each credentials load; aiobotocore keeps that synchronous.",
    ),
    _allow(
        "botocore/credentials.py",
        {"_build_headers"},
        ("io.TextIOWrapper.read",),
        "the container provider re-reads AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (a few hundred bytes, often "
        "tmpfs) on every fetch, as the SDKs do, so a rotated token is used; aiobotocore inherits the method.",
    ),
    _allow(
        "botocore/utils.py",
        {"__call__"},  # FileWebIdentityTokenLoader.__call__
        ("io.TextIOWrapper.read",),
        "EKS web identity (IRSA): botocore reads AWS_WEB_IDENTITY_TOKEN_FILE (a projected token of about 1 KiB on "
        "tmpfs) on each AssumeRoleWithWebIdentity, so the kubelet's refreshed token is used; aiobotocore inherits it.",
    ),
    _allow(
        "asyncpg/connect_utils.py",
        {"_parse_connect_dsn_and_args"},
        ("os.stat", "os.path.abspath"),
        "asyncpg looks for ~/.pgpass and ~/.postgresql/ certificates (stats, usually of missing files) while "
        "parsing the connection arguments, before its first await.",
    ),
    _allow(
        "prometheus_client/process_collector.py",
        {"collect"},
        ("os.listdir", "io.BufferedReader.read"),
        "process_* metrics read /proc/self/stat, /proc/self/fd and limits: procfs, answered from kernel memory.",
    ),
    _allow(
        "subprocess.py",
        {"_execute_child"},
        ("os.read",),
        "Popen waits on its exec-status pipe until the child has exec'd (milliseconds); blockbuster allows the "
        "same read in asyncio's own subprocess_exec.",
    ),
    # The tests' own synchronous helpers. Each frame runs no agent code, so nothing of the agent is excused.
    _allow(
        "support/agent_process.py",
        {"_write"},
        EVERY,
        "writes a stopped agent's output under test-artifacts/ (for the session-finish secret scan) after its run.",
    ),
    _allow(
        "faults/harness.py",
        {"fds", "rss_kib"},
        ("os.listdir", "io.TextIOWrapper.read"),
        "reads the agent child's /proc entries: procfs, answered from kernel memory.",
    ),
    _allow(
        "faults/harness.py",
        {"keep"},
        EVERY,
        "writes the stopped agent's output under test-artifacts/ after the run.",
    ),
    _allow(
        "faults/pressure.py",
        {"fds", "stdout_target"},
        ("os.listdir", "os.readlink"),
        "reads the agent child's /proc/PID/fd: procfs, answered from kernel memory.",
    ),
    _allow(
        "faults/pressure.py",
        {"_fill", "_drain", "_keep"},
        EVERY,
        "fills a pipe before the agent starts and empties it after it exited (both ends non-blocking), and writes "
        "the stopped agent's output under test-artifacts/.",
    ),
    _allow(
        "faults/servers.py",
        {"_write"},
        EVERY,
        "rewrites the tests' small hosts file (tests/faults/resolver), atomically, between agent lookups.",
    ),
    _allow(
        "support/fault_proxy.py",
        {"_call", "close"},
        ("threading.Lock.acquire",),
        "waits (milliseconds) for the proxy's own loop thread to switch its fault, or to end at close.",
    ),
    _allow(
        "support/hostile_peer.py",
        {"_call", "start", "close"},
        ("threading.Lock.acquire",),
        "waits (milliseconds) for the hostile peer's own loop thread to start, to turn or forward, or to end.",
    ),
    _allow(
        "support/hermetic.py",
        {"refusals", "forget"},
        EVERY,
        "reads (and, for the resolver's own tests, rewrites) the small file of refused lookups under "
        "test-artifacts/resolver/: the proof that a refusal was recorded.",
    ),
    _allow(
        "support/backend.py",
        {"_call", "close"},
        ("threading.Lock.acquire",),
        "waits (milliseconds) for the stand-in backend's own loop thread to switch its mode, or to end at close.",
    ),
    _allow(
        "sandbox/postgres.py",
        {"__init__", "__enter__", "__exit__", "restart"},
        EVERY,
        "PostgresSandbox is synchronous (pg_config, initdb, pg_ctl, rmtree): the demo runs it in threads; the pg "
        "restart test and a sandbox test build or drive one on their loop, where nothing else runs meanwhile.",
    ),
    _allow(
        "outputs/test_status_page.py",
        {"look"},
        EVERY,
        "keeps the browser's DOM and screenshot under test-artifacts/; Chromium itself runs in a thread.",
    ),
)


def _to_devnull(file: Any, *_: Any, **__: Any) -> bool:
    """pytest's log-file handler writes every record to os.devnull unless --log-file is given."""
    return getattr(file, "name", None) == os.devnull


def configure(bb: BlockBuster) -> None:
    """Apply ALLOWED (and the os.devnull writes) to an inactive BlockBuster."""
    for allowance in ALLOWED:
        calls = list(bb.functions) if allowance.calls == EVERY else allowance.calls
        for call in calls:
            bb.functions[call].can_block_in(allowance.file, allowance.functions)
    for call in ("io.TextIOWrapper.write", "io.BufferedWriter.write"):
        function = bb.functions[call]
        default = function.can_block_predicate
        # Set before activation: the wrapper captures the predicate when it is installed.
        function.can_block_predicate = lambda *a, _default=default, **k: _default(*a, **k) or _to_devnull(*a, **k)


class RecordedBlockingError(BlockingError):
    """A BlockingError that adds itself to the current test's list, so a catch-all cannot hide it."""

    seen: list[RecordedBlockingError] = []

    def __init__(self, func: str) -> None:
        super().__init__(func)
        self.where = "".join(traceback.format_stack(limit=12)[:-2])
        RecordedBlockingError.seen.append(self)


@contextmanager
def no_blocking_calls() -> Iterator[list[RecordedBlockingError]]:
    """blockbuster active with ALLOWED; yields the list of every BlockingError raised meanwhile, caught or not."""
    bb = BlockBuster()
    configure(bb)
    seen: list[RecordedBlockingError] = []
    RecordedBlockingError.seen = seen
    # blockbuster's wrappers raise the BlockingError of their module, looked up when they raise.
    original, blockbuster_impl.BlockingError = blockbuster_impl.BlockingError, RecordedBlockingError  # type: ignore[misc]
    bb.activate()
    try:
        yield seen
    finally:
        bb.deactivate()
        blockbuster_impl.BlockingError = original  # type: ignore[misc]
