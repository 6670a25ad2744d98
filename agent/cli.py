"""Command line: argument parsing and exit codes only. Heavy modules are imported per command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.config.models import AgentConfig

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_INTERNAL = 0, 1, 2, 70


def main(argv: list[str] | None = None) -> int:
    """Entry point of `ecs-health-agent` and `python -m agent`."""
    args = _parser().parse_args(argv)
    command = args.command or "serve"
    try:
        if command == "healthcheck":
            return _healthcheck(args)
        if command == "sandbox":
            return _sandbox(args)
        config = _load(args.config)
        if config is None:
            return EXIT_CONFIG
        if command == "check":
            return _check(config, args.json)
        return _serve(config)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the process edge: a message, never a traceback
        from agent.shared.reasons import describe
        from agent.shared.redact import redact

        print(f"ecs-health-agent: internal error: {redact(describe(exc))}", file=sys.stderr)
        return EXIT_INTERNAL


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecs-health-agent",
        description="Proves an ECS task can reach its database; says why when it cannot.",
    )
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the sidecar: probes in the background, /ready /metrics (default)")
    check = commands.add_parser("check", help="run every check once and print the diagnosis")
    check.add_argument("--json", action="store_true", help="print JSON instead of the checklist")
    for sub in (parser, serve, check):
        sub.add_argument(
            "--config",
            type=Path,
            default=argparse.SUPPRESS if sub is not parser else None,
            help="YAML file with database.connections (the diagnostics guide's shape)",
        )
    health = commands.add_parser("healthcheck", help="exit 0 if the local agent answers 200 (ECS healthCheck)")
    health.add_argument("--ready", action="store_true", help="ask /ready instead of /health")
    health.add_argument("--port", type=_port, default=None, help="agent port (default: AGENT_PORT or 8099)")
    sandbox = commands.add_parser(
        "sandbox", help="a stand-in for an ECS task on this machine (moto, PostgreSQL) with the agent inside"
    )
    sandbox.add_argument("--port", type=int, default=8099, help="the agent's port on 127.0.0.1 (default 8099)")
    sandbox.add_argument("--control-port", type=int, default=8098, help="the break/fix API's port (default 8098)")
    sandbox.add_argument(
        "--postgres",
        metavar="ADMIN_DSN",
        default=None,
        help="an admin DSN of a PostgreSQL that checks passwords (default: AGENT_DB_DSN or 127.0.0.1:5432 if it"
        " does, else a throwaway cluster)",
    )
    return parser


class _VersionAction(argparse.Action):
    """`--version`: prints `ecs-health-agent X.Y.Z` to stdout and exits 0, as argparse's "version" action does.

    argparse's own action needs the string when the parser is built, for every command; reading it here, only when
    asked, keeps package metadata off the `healthcheck` command's path (see agent/__init__.py).
    """

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None) -> None:
        # default=SUPPRESS: nothing lands in the namespace under `dest`; the version is printed.
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        _option_string: str | None = None,
    ) -> None:
        from agent import __version__

        print(f"{parser.prog} {__version__}")
        parser.exit()


def _load(path: Path | None) -> AgentConfig | None:
    from agent.config.load import load_config
    from agent.config.models import ConfigError

    try:
        return load_config(path)
    except ConfigError as exc:
        print("ecs-health-agent: invalid configuration:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return None


def _check(config: AgentConfig, as_json: bool) -> int:
    import asyncio

    from agent.outputs.logs import setup_logging
    from agent.outputs.report import as_checklist
    from agent.outputs.report import as_json as render_json
    from agent.runtime.check import run_check

    setup_logging(config.log_level, stream=sys.stderr)  # stdout is the report
    results = asyncio.run(run_check(config))
    print(render_json(results) if as_json else as_checklist(results))
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def _serve(config: AgentConfig) -> int:
    import asyncio

    from agent.app import serve

    return asyncio.run(serve(config))


def _sandbox(args: argparse.Namespace) -> int:
    # The demo is an extra that container images leave out (agent.sandbox, moto). agent.sandbox.demo imports moto
    # when it loads, so a missing piece is one line naming it and the fix, not an internal error once half the
    # sandbox runs.
    try:
        from agent.sandbox.demo import SandboxOptions, run_sandbox
    except ModuleNotFoundError as exc:
        print(
            f"ecs-health-agent sandbox: {exc.name} is not installed (the sandbox is an extra, left out of the"
            " container image): pip install 'ecs-health-agent[sandbox]' (from a checkout: pip install -e '.[sandbox]')",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    return run_sandbox(SandboxOptions(port=args.port, control_port=args.control_port, postgres=args.postgres))


def _port(text: str) -> int:
    """A TCP port for argparse: a number from 1 to 65535 (argparse exits 2 naming the option otherwise)."""
    port = int(text) if text.strip().isascii() and text.strip().isdigit() else 0
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{text[:64]!r} is not a port: expected a number from 1 to 65535")
    return port


def _healthcheck(args: argparse.Namespace) -> int:
    from agent.config.environ import agent_dial_host, agent_port
    from agent.healthcheck import healthcheck

    try:
        host, port = agent_dial_host(), args.port or agent_port()  # where `serve` listens, as it reads them
    except ValueError as exc:
        print(f"ecs-health-agent healthcheck: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return healthcheck(port=port, ready=args.ready, host=host)
