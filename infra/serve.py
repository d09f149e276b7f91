"""Run one service (gateway or node) under uvicorn: the same app factories Modal serves.

On SIGTERM (or SIGINT) uvicorn stops accepting, lets the requests in flight
finish for up to ``drain_s`` (a streamed answer included: its last byte and its
audit record), and only then runs the app's shutdown (the audit queue flushed,
the engine closed). ``enclave up`` passes the socket it bound as ``fd``.

Gateway workers: ``workers`` > 1 runs that many gateway processes on the one
listening socket (uvicorn's supervisor: each spawned worker builds its Settings
from the same environment, and one that dies is replaced; SIGTERM drains them
all, the supervisor stops listening at once, and a worker whose supervisor died
gets a SIGTERM too). What must hold across them is shared or per process by
design: keys are reloaded from the store every ``key_reload_s``, each process
writes an audit chain of its own, feedback is one SQLite file. Rate limits are
the exception: the memory store counts per process, so several workers are
refused unless the limits live in a store they share (file or redis); see
:func:`workers_refusal`. Still per worker, and said so in the README: the memory
answer cache (a miss in one worker may be a hit in another), the failed-login
throttle, and ``/metrics`` (each scrape sees the worker that answered it).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import socket
import sys
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from functions.logs import configure_logging
from functions.settings import Settings
from inference_node.adapter import check_adapter
from inference_node.engine import EngineRegistry
from inference_node.engines import register_builtins
from inference_node.server import create_app as create_node_app
from infra.services import DRAIN_S

WORKER_HEALTHCHECK_S = 300  # seconds: a start that imports litellm, on a host under load
MAX_WORKERS = 64  # as GatewaySettings.workers allows
PR_SET_PDEATHSIG = 1  # linux/prctl.h
SHARED_LIMIT_STORE = 'ENCLAVE_GATEWAY_RATE_LIMIT=\'{"backend": "file"}\''


class WorkersRefusedError(Exception):
    """Several gateway workers asked for where some state would be per process."""


def gateway_app(settings: Settings) -> Any:
    from functions.gateway import create_app  # the gateway's modules: only when serving it

    return create_app(settings)


class Supervisor(Multiprocess):
    """uvicorn's supervisor of gateway workers, which closes its copy of the listening
    socket as it stops them. uvicorn's keeps it open until the last worker has drained,
    so for up to ``drain_s`` new callers were queued by the kernel with nobody to accept
    them, where one process refuses them at once (and a client or balancer tries
    elsewhere)."""

    def terminate_all(self) -> None:
        for listening in self.sockets:
            listening.close()
        super().terminate_all()


def _die_with_parent() -> None:
    """SIGTERM this worker when its supervisor dies, however it dies (SIGKILL included):
    else the worker would go on serving the socket, orphaned, past ``enclave up``'s
    stop. The worker then drains as on any SIGTERM. Linux only (``prctl``)."""
    parent = multiprocessing.parent_process()
    if not sys.platform.startswith("linux") or parent is None:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        return
    if os.getppid() != parent.pid:  # it died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)


def gateway_worker() -> Any:
    """One worker's app (uvicorn's factory, run in each spawned worker): its Settings come
    from the environment it inherited, as the parent's did."""
    _die_with_parent()
    settings = Settings()
    configure_logging("gateway", settings.log_level)
    return gateway_app(settings)


def node_app(settings: Settings) -> Any:
    # an adapter that cannot be read stops the node before its port opens (fail closed)
    check_adapter(settings.node)
    registry = EngineRegistry()
    register_builtins(registry.register)
    return create_node_app(settings, load=lambda: registry.create(settings.node))


def workers_refusal(settings: Settings, workers: int) -> str | None:
    """Why ``workers`` gateway processes cannot serve these settings, or None if they can."""
    if not 1 <= workers <= MAX_WORKERS:
        return f"gateway workers: {workers} is not between 1 and {MAX_WORKERS}"
    if workers == 1:
        return None
    if settings.gateway.rate_limit.backend == "memory":
        return (
            f"{workers} gateway workers need a rate-limit store they share: the memory store"
            " counts per process, so each key and tenant would get its limits once per worker."
            f" Set {SHARED_LIMIT_STORE} (one host) or a redis backend, or run one worker"
        )
    if settings.audit.instance_id is not None:
        return (
            f"{workers} gateway workers cannot share the fixed audit instance_id"
            f" {settings.audit.instance_id!r}: each process writes an audit chain of its own."
            " Unset ENCLAVE_AUDIT_INSTANCE_ID, or run one worker"
        )
    return None


def _config(app: Any, host: str, port: int, drain_s: float, **extra: Any) -> uvicorn.Config:
    return uvicorn.Config(
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
        **extra,
    )


def serve(
    service: str,
    settings: Settings,
    fd: int | None = None,
    drain_s: float = DRAIN_S,
    workers: int | None = None,
) -> None:
    """Serve until stopped; ``workers`` (gateway only) defaults to ``settings.gateway.workers``.

    Raises :class:`WorkersRefusedError` before anything starts when the workers asked
    for cannot share the settings' state.
    """
    configure_logging(service, settings.log_level)
    if service == "gateway":
        count = settings.gateway.workers if workers is None else workers
    elif workers is not None:
        raise WorkersRefusedError("--workers is the gateway's: the node runs one engine")
    else:
        count = 1
    why = workers_refusal(settings, count)
    if why is not None:
        raise WorkersRefusedError(why)
    # a socket handed down already listens (family and address detected from it)
    sockets = [socket.socket(fileno=fd)] if fd is not None else None
    if count > 1:
        gateway = settings.gateway
        app = "infra.serve:gateway_worker"  # imported by each worker: spawned, not forked
        config = _config(
            app,
            gateway.host,
            gateway.port,
            drain_s,
            factory=True,
            workers=count,
            # a worker answers the supervisor's pings only once Python has started in it;
            # on a busy host that alone can take minutes (uvicorn waits 5 s), and the worker
            # would be killed and spawned again and again
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
        )
        Supervisor(config, sockets=sockets or [config.bind_socket()]).run()
        return
    if service == "gateway":
        app, host, port = gateway_app(settings), settings.gateway.host, settings.gateway.port
    else:
        app, host, port = node_app(settings), settings.node.host, settings.node.port
    uvicorn.Server(_config(app, host, port, drain_s)).run(sockets=sockets)
