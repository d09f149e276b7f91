"""Run one service (gateway or node) under uvicorn: the same app factories Modal serves."""

from __future__ import annotations

from typing import Any

import uvicorn

from functions.logs import configure_logging
from functions.settings import Settings
from inference_node.adapter import check_adapter
from inference_node.engine import EngineRegistry
from inference_node.engines import register_builtins
from inference_node.server import create_app as create_node_app


def gateway_app(settings: Settings) -> Any:
    from functions.gateway import create_app  # imports litellm (seconds): only when serving it

    return create_app(settings)


def node_app(settings: Settings) -> Any:
    # an adapter that cannot be read stops the node before its port opens (fail closed)
    check_adapter(settings.node)
    registry = EngineRegistry()
    register_builtins(registry.register)
    return create_node_app(settings, load=lambda: registry.create(settings.node))


def serve(service: str, settings: Settings) -> None:
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
        timeout_graceful_shutdown=5,
        # the peer's address stays the socket's: X-Forwarded-For is judged by the gateway
        # itself, from configured trusted proxies only (functions/logins.py)
        proxy_headers=False,
    )
    uvicorn.Server(config).run()
