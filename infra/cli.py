"""The ``enclave`` command."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pydantic

from functions.errors import EnclaveError, map_exception
from functions.settings import Settings
from inference_node.adapter import AdapterError
from inference_node.exposure import NodeKeyMissingError
from infra import (
    cli_audit,
    cli_cache,
    cli_chat,
    cli_dataset,
    cli_experiments,
    cli_finetune,
    cli_keys,
    cli_knowledge,
)
from infra.services import DRAIN_S


def _reported(parser: argparse.ArgumentParser, command: Callable[[], int]) -> int:
    """Run ``command``; a refusal (bad flags, unknown id…) is one line and status 2."""
    try:
        return command()
    except (EnclaveError, pydantic.ValidationError) as exc:
        parser.exit(2, f"enclave: {map_exception(exc).message}\n")


def _settings(parser: argparse.ArgumentParser) -> Settings:
    """The settings, or one line per mistake in them and status 2 (never a traceback)."""
    try:
        return Settings()
    except pydantic.ValidationError as exc:
        lines = [
            f"  {'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        ]
        parser.exit(2, "enclave: the ENCLAVE_* settings are invalid:\n" + "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="enclave", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run the node and the gateway locally")
    up.add_argument("--check", action="store_true", help="stop after the first answered chat")
    up.add_argument("--port", type=int, help="the gateway's port (default 8000)")
    up.add_argument("--node-port", type=int, help="the node's port (default 8001)")
    up.add_argument("--verbose", action="store_true", help="also show the services' JSON logs")
    up.add_argument("--drain-s", type=float, default=DRAIN_S, help="on stop, wait for answers")
    up.add_argument("--max-restarts", type=int, default=5, help="quick node restarts, then stop")
    up.add_argument("--workers", type=int, help="gateway processes (default: one per core)")
    serve = commands.add_parser("serve", help="run one service in the foreground")
    serve.add_argument("service", choices=["gateway", "node"])
    serve.add_argument("--fd", type=int, help=argparse.SUPPRESS)  # a socket `enclave up` bound
    serve.add_argument("--drain-s", type=float, default=DRAIN_S, help="stop: wait for answers")
    serve.add_argument("--workers", type=int, help="gateway processes (ENCLAVE_GATEWAY_WORKERS)")
    cli_chat.add_parser(commands)
    cli_keys.add_parser(commands)
    cli_audit.add_parser(commands)
    cli_knowledge.add_parsers(commands)
    cli_cache.add_parser(commands)
    cli_experiments.add_parser(commands)
    cli_dataset.add_parser(commands)
    cli_finetune.add_parser(commands)
    args = parser.parse_args(argv)

    settings = _settings(parser)
    if args.command == "keys":
        return _reported(parser, lambda: cli_keys.run(args, settings))
    if args.command in ("ingest", "docs"):
        return _reported(parser, lambda: cli_knowledge.run(args, settings))
    if args.command == "cache":
        return cli_cache.run(args, settings)
    if args.command == "finetune":
        return cli_finetune.run(args)
    if args.command == "audit":
        return cli_audit.run(args, settings)
    if args.command == "experiments":
        return cli_experiments.run(args, settings)
    if args.command == "dataset":
        return cli_dataset.run(args, settings)
    if args.command == "chat":
        return cli_chat.run(args, settings)
    if args.command == "up":
        from infra.launcher import up as run_up
        from infra.launcher import with_ports

        if args.port is not None or args.node_port is not None:
            settings = with_ports(args.port, args.node_port)
        return run_up(
            settings, args.check, args.verbose, args.drain_s, args.max_restarts, args.workers
        )
    from infra.serve import WorkersRefusedError
    from infra.serve import serve as run_serve

    try:
        run_serve(args.service, settings, args.fd, args.drain_s, args.workers)
    except (NodeKeyMissingError, AdapterError, WorkersRefusedError) as exc:
        parser.exit(2, f"enclave: {exc}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
