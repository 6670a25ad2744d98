"""Command line: argument parsing and exit codes only. Heavy modules are imported per command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
        if command == "lint":
            return _lint(args)
        config = _load(args.config, as_json=command == "check" and args.json)
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


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose epilog, the environment variables its command reads, is written only when help is
    shown: it comes from the configuration models (pydantic), which the `healthcheck` path must not import."""

    def __init__(self, *args: Any, environment: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        self._environment = environment

    def format_help(self) -> str:
        if self._environment is not None and self.epilog is None:
            from agent.config.reference import environment_help

            self.epilog = environment_help(self._environment)
        return super().format_help()


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ecs-health-agent",
        description="Proves an ECS task can reach its database; says why when it cannot.",
        epilog="`ecs-health-agent COMMAND --help` lists the environment variables COMMAND reads, with defaults.",
    )
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    serve = commands.add_parser(
        "serve", help="run the sidecar: probes in the background, /ready /metrics (default)", environment="serve"
    )
    check = commands.add_parser("check", help="run every check once and print the diagnosis", environment="check")
    check.add_argument("--json", action="store_true", help="print JSON instead of the checklist")
    for sub in (parser, serve, check):
        sub.add_argument(
            "--config",
            type=Path,
            default=argparse.SUPPRESS if sub is not parser else None,
            help="YAML file with database.connections (the diagnostics guide's shape)",
        )
    health = commands.add_parser(
        "healthcheck", help="exit 0 if the local agent answers 200 (ECS healthCheck)", environment="healthcheck"
    )
    health.add_argument("--ready", action="store_true", help="ask /ready instead of /health")
    health.add_argument("--port", type=_port, default=None, help="agent port (default: AGENT_PORT or 8099)")
    lint = commands.add_parser(
        "lint",
        help="check task definitions before they are deployed (a literal password, the agent's wiring); docs/lint.md",
        description="Checks task definitions: register-task-definition JSON, describe-task-definition output, or"
        " CloudFormation templates (JSON or YAML) with AWS::ECS::TaskDefinition resources. Exit 0 clean, 1 findings,"
        " 2 a file that cannot be read.",
    )
    lint.add_argument("files", nargs="+", type=Path, metavar="FILE", help="a task definition or template")
    lint.add_argument("--json", action="store_true", help="print JSON (for CI) instead of one line per finding")
    sandbox = commands.add_parser(
        "sandbox",
        help="a stand-in for an ECS task on this machine (moto, PostgreSQL) with the agent inside",
        environment="sandbox",
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


def _load(path: Path | None, as_json: bool = False) -> AgentConfig | None:
    """The configuration, or None after saying why on stderr (and, for `check --json`, as JSON on stdout too: a
    script parsing stdout gets a document, `{"ok": false, "error": "invalid configuration", "problems": [...]}`)."""
    from agent.config.load import load_config
    from agent.config.models import ConfigError

    try:
        return load_config(path)
    except ConfigError as exc:
        print("ecs-health-agent: invalid configuration:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        if as_json:
            import json

            problems = list(exc.problems)
            print(json.dumps({"ok": False, "error": "invalid configuration", "problems": problems}, indent=2))
        return None


def _check(config: AgentConfig, as_json: bool) -> int:
    import asyncio

    from agent.outputs.logs import quiet_libraries, setup_logging
    from agent.outputs.report import as_checklist
    from agent.outputs.report import as_json as render_json
    from agent.runtime.check import run_check

    setup_logging(config.log_level, stream=sys.stderr)  # stdout is the report
    quiet_libraries(config.log_level)
    results = asyncio.run(run_check(config))
    print(render_json(results) if as_json else as_checklist(results))
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def _serve(config: AgentConfig) -> int:
    import asyncio

    from agent.outputs.log_queue import claim_stdout

    claim_stdout()  # before the event loop opens its first descriptor

    from agent.app import serve
    from agent.outputs.logs import flush_logs

    try:
        return asyncio.run(serve(config))
    finally:
        flush_logs()  # the last lines ("stopped", or why it could not listen) reach stdout, within a bound


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


def _lint(args: argparse.Namespace) -> int:
    from agent.lint.run import lint_files

    return lint_files(args.files, json_output=args.json)


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
