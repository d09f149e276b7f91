"""The ``enclave`` command."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pydantic

from functions.errors import EnclaveError, map_exception
from functions.settings import Settings
from inference_node.adapter import AdapterError
from inference_node.exposure import NodeKeyMissingError
from infra import cli_audit, cli_cache, cli_finetune, cli_keys, cli_knowledge


def _reported(parser: argparse.ArgumentParser, command: Callable[[], int]) -> int:
    """Run ``command``; a refusal (bad flags, unknown id…) is one line and status 2."""
    try:
        return command()
    except (EnclaveError, pydantic.ValidationError) as exc:
        parser.exit(2, f"enclave: {map_exception(exc).message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="enclave", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run the node and the gateway locally")
    up.add_argument("--check", action="store_true", help="stop after the first answered chat")
    serve = commands.add_parser("serve", help="run one service in the foreground")
    serve.add_argument("service", choices=["gateway", "node"])
    cli_keys.add_parser(commands)
    cli_audit.add_parser(commands)
    cli_knowledge.add_parsers(commands)
    cli_cache.add_parser(commands)
    cli_finetune.add_parser(commands)
    args = parser.parse_args(argv)

    settings = Settings()
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
    if args.command == "up":
        from infra.launcher import up as run_up

        return run_up(settings, check_only=args.check)
    from infra.serve import serve as run_serve

    try:
        run_serve(args.service, settings)
    except (NodeKeyMissingError, AdapterError) as exc:
        parser.exit(2, f"enclave: {exc}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
