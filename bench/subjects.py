"""How the bench starts what it measures: the agent (`python -m agent serve`) and Debian's three exporters,
each as the bench's own process on a free loopback port with a config of the bench's own."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import PYTHON, SCRAPE_HEADERS, Reply, Service, clean_env, free_port, get, sample, spawn, wait_until
from bench.world import Login

POSTGRES_EXPORTER = "/usr/bin/prometheus-postgres-exporter"
MYSQLD_EXPORTER = "/usr/bin/prometheus-mysqld-exporter"
BLACKBOX_EXPORTER = "/usr/bin/prometheus-blackbox-exporter"
BLACKBOX_MODULE = "tcp_connect"  # all blackbox can say about a database port: does TCP connect


class BenchError(RuntimeError):
    """A subject did not start or did not become healthy; the message carries its log's tail."""


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """One agent configuration: AGENT_*/AWS_* variables, and optionally a YAML file (database.connections)."""

    name: str
    env: Mapping[str, str]
    config: Mapping[str, Any] | None = None
    python_flags: tuple[str, ...] = ()
    interval: float = 10.0
    extra_env: Mapping[str, str] = field(default_factory=dict)


def pg_dsn(login: Login, port: int, *, password: bool = False, query: str = "", host: str = "127.0.0.1") -> str:
    """postgresql://user[:password]@HOST:port/postgres[?query]"""
    secret = f":{login.password}" if password else ""
    return f"postgresql://{login.user}{secret}@{host}:{port}/postgres" + (f"?{query}" if query else "")


def mysql_dsn(login: Login, port: int) -> str:
    """mysql://user@127.0.0.1:port/ (the password goes in AGENT_DB_PASSWORD)"""
    return f"mysql://{login.user}@127.0.0.1:{port}/"


def password_env(dsn: str, login: Login) -> dict[str, str]:
    """A single target with a static password, the commonest setup."""
    return {"AGENT_DB_DSN": dsn, "AGENT_DB_PASSWORD": login.password}


def start_agent(spec: AgentSpec, workdir: Path, command: tuple[str, ...] = ("-m", "agent", "serve")) -> Service:
    """Start `python -m agent serve` with the spec; no drain wait on stop (the bench stops agents often).

    `command` replaces `-m agent serve` for a harness that runs serve() itself (bench.rss_steps)."""
    port = free_port()
    env = clean_env(
        {
            "AGENT_HOST": "127.0.0.1",
            "AGENT_PORT": str(port),
            "AGENT_SHUTDOWN_GRACE_SECONDS": "0",
            "AGENT_INTERVAL_SECONDS": f"{spec.interval:g}",
            "MALLOC_ARENA_MAX": "2",  # as the Dockerfile sets it
            **spec.env,
            **spec.extra_env,
        }
    )
    argv = [PYTHON, *spec.python_flags, *command]
    if spec.config is not None:
        argv += ["--config", str(_private_file(workdir / f"{spec.name}.yaml", json.dumps(spec.config)))]
    return spawn(spec.name, argv, env, port, workdir)


def start_postgres_exporter(name: str, login: Login, port: int, workdir: Path) -> Service:
    """prometheus-postgres-exporter for `login` over TLS (the cluster serves it, as RDS does)."""
    listen = free_port()
    dsn = pg_dsn(login, port, password=True, query="sslmode=require")
    argv = [POSTGRES_EXPORTER, f"--web.listen-address=127.0.0.1:{listen}"]
    return spawn(name, argv, clean_env({"DATA_SOURCE_NAME": dsn}), listen, workdir)


def start_mysqld_exporter(name: str, login: Login, port: int, workdir: Path) -> Service:
    """prometheus-mysqld-exporter for `login`, its credentials in a my.cnf of its own."""
    listen = free_port()
    cnf = f"[client]\nuser={login.user}\npassword={login.password}\nhost=127.0.0.1\nport={port}\n"
    path = _private_file(workdir / f"{name}.my.cnf", cnf)
    argv = [MYSQLD_EXPORTER, f"--config.my-cnf={path}", f"--web.listen-address=127.0.0.1:{listen}"]
    return spawn(name, argv, clean_env(), listen, workdir)


def start_blackbox_exporter(name: str, workdir: Path) -> Service:
    """prometheus-blackbox-exporter with one module: a TCP connect with a 5 s timeout."""
    listen = free_port()
    config = {"modules": {BLACKBOX_MODULE: {"prober": "tcp", "timeout": "5s"}}}
    path = _private_file(workdir / f"{name}.yml", json.dumps(config))  # JSON is YAML
    argv = [BLACKBOX_EXPORTER, f"--config.file={path}", f"--web.listen-address=127.0.0.1:{listen}"]
    return spawn(name, argv, clean_env(), listen, workdir)


def blackbox_path(port: int, debug: bool = False) -> str:
    """The /probe path that checks 127.0.0.1:port."""
    return f"/probe?module={BLACKBOX_MODULE}&target=127.0.0.1:{port}" + ("&debug=true" if debug else "")


def scrape(service: Service, path: str = "/metrics") -> Reply:
    """GET as Prometheus would (its scrape-timeout header and timeout)."""
    return get(service.url(path), timeout=10.0, headers=SCRAPE_HEADERS)


def metric(service: Service, name: str, path: str = "/metrics", **labels: str) -> float | None:
    """One sample from a scrape, or None if the scrape failed or lacks it."""
    reply = scrape(service, path)
    return sample(reply.text(), name, **labels) if reply.status == 200 else None


def wait_for(service: Service, check: Callable[[], object], what: str, timeout: float = 30.0) -> float:
    """Wait until `check()` holds; BenchError (with the log's tail) if the process dies or time runs out."""

    def alive_and_checked() -> bool:
        if service.proc.poll() is not None:
            raise BenchError(f"{service.name} exited with {service.proc.returncode}:\n{_tail(service)}")
        return bool(check())

    took = wait_until(alive_and_checked, timeout, period=0.01)
    if took is None:
        raise BenchError(f"{service.name}: {what} not within {timeout:g}s:\n{_tail(service)}")
    return took


def agent_ready(service: Service) -> bool:
    """Whether /ready answers 200."""
    return get(service.url("/ready"), timeout=1.0).status == 200


def agent_probed(service: Service) -> bool:
    """Whether every probe has run at least once (/status), passing or not."""
    reply = get(service.url("/status"), timeout=1.0)
    if reply.status != 200:
        return False
    probes = json.loads(reply.body)["probes"]
    return bool(probes) and all(p["ok"] is not None for p in probes)


def _private_file(path: Path, text: str) -> Path:
    """A file only this user can read: these configs hold the bench's (random) passwords."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return path


def _tail(service: Service, lines: int = 15) -> str:
    text = service.log_path.read_text(errors="replace") if service.log_path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])
