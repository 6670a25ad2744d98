"""The agent under test, as ECS would run it: `python -m agent serve` in its own process, output forwarded."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Callable, Mapping

STOP_TIMEOUT_SECONDS = 10.0  # the agent drains for AGENT_SHUTDOWN_GRACE_SECONDS (1 s in the sandbox), then exits
_LINE_LIMIT = 1 << 20


class AgentExited(RuntimeError):
    """The agent process ended on its own (bad configuration, port in use)."""


class AgentProcess:
    """One `python -m agent serve` child; its JSON log lines are shown as `agent | message`."""

    def __init__(self, env: Mapping[str, str], say: Callable[[str], None]) -> None:
        self._env = dict(env)
        self._say = say
        self._proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    async def start(self) -> None:
        """Start the child; its stdout and stderr are forwarded line by line."""
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent", "serve",
            env=self._env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, limit=_LINE_LIMIT,
        )  # fmt: skip
        self._pump = asyncio.create_task(self._forward())

    async def wait_listening(self, port: int, timeout: float) -> None:
        """Return once the agent accepts connections on 127.0.0.1:port; raise AgentExited if it ends first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self._proc is None or self._proc.returncode is not None:
                code = self._proc.returncode if self._proc is not None else None
                raise AgentExited(f"the agent exited with code {code} (its output is above)")
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1.0)
            except (OSError, TimeoutError):
                await asyncio.sleep(0.1)
                continue
            writer.close()
            await writer.wait_closed()
            return
        raise AgentExited(f"the agent did not listen on 127.0.0.1:{port} within {timeout:g}s")

    async def wait(self) -> int:
        """Wait until the child exits on its own; return its exit code."""
        assert self._proc is not None
        return await self._proc.wait()

    async def stop(self) -> int | None:
        """SIGTERM, wait for the drain, kill if it hangs; return the exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_SECONDS)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._pump is not None:
            await self._pump
        return proc.returncode

    async def _forward(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for raw in self._proc.stdout:
            for line in _readable(raw.decode("utf-8", errors="replace").rstrip()):
                self._say(f"agent | {line}")


def _readable(line: str) -> list[str]:
    """A JSON log line as `level message` plus its hint (the agent has already redacted it); other text as is."""
    try:
        record = json.loads(line)
    except ValueError:
        return [line] if line else []
    if not isinstance(record, dict) or "message" not in record:
        return [line]
    lines = [f"{record.get('level', '')} {record['message']}".strip()]
    if record.get("hint"):
        lines.append(f"  next: {record['hint']}")
    return lines
