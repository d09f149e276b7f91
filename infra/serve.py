"""Run one service (gateway or node) under uvicorn: the same app factories Modal serves.

On SIGTERM (or SIGINT) uvicorn stops accepting, lets the requests in flight
finish for up to ``drain_s`` (a streamed answer included: its last byte and its
audit record), and only then runs the app's shutdown (the audit queue flushed,
the engine closed). ``enclave up`` passes the socket it bound as ``fd``.
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn

from functions.logs import configure_logging
from functions.settings import Settings
from inference_node.adapter import check_adapter
from inference_node.engine import EngineRegistry
from inference_node.engines import register_builtins
from inference_node.server import create_app as create_node_app
from infra.services import DRAIN_S


def gateway_app(settings: Settings) -> Any:
    from functions.gateway import create_app  # the gateway's modules: only when serving it

    return create_app(settings)


def node_app(settings: Settings) -> Any:
    # an adapter that cannot be read stops the node before its port opens (fail closed)
    check_adapter(settings.node)
    registry = EngineRegistry()
    register_builtins(registry.register)
    return create_node_app(settings, load=lambda: registry.create(settings.node))


def serve(
    service: str, settings: Settings, fd: int | None = None, drain_s: float = DRAIN_S
) -> None:
    configure_logging(service, settings.log_level)
    if service == "gateway":
        app, host, port = gateway_app(settings), settings.gateway.host, settings.gateway.port
    else:
        app, host, port = node_app(settings), settings.node.host, settings.node.port
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        # uvloop's event loop and httptools' parser: ~40% less gateway CPU per request
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=max(1, round(drain_s)),
        # the peer's address stays the socket's: X-Forwarded-For is judged by the gateway
        # itself, from configured trusted proxies only (functions/logins.py)
        proxy_headers=False,
    )
    # a socket handed down already listens (family and address detected from it)
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=fd)] if fd is not None else None)
