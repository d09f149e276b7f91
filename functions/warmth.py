"""Which self-hosted deployments are warm, cold or down, so users never wait on a GPU by accident.

Each relayed deployment's ``/health`` is probed in the background every
``probe_interval_s`` with a short timeout, and a request that could not reach it
marks it at once. What an unreachable deployment is depends on how it is
configured:

- **cold**, when it scales to zero (``scale_to_zero: true``, e.g. on Modal): it
  is woken by a request of its own — on Modal any HTTP request starts a
  container — sent in the background with a long timeout (single-flight per
  deployment); when it answers 200 it is warm again and everyone waiting for it
  is released. Requests may wait for it (``cold_wait_s``).
- **down**, otherwise (a local node, a server that is always on): nothing can
  wake it, so nobody waits for it. It is still tried, last, so a node that a
  supervisor restarted serves again at once; the probe marks it warm again too.

Deployments reached through litellm's translation (external providers) are not
probed: they are always taken to be warm.

Given a registry, the state is exported: ``enclave_gateway_deployment_warm``
(1 warm, 0 cold or down, per watched deployment) and
``enclave_gateway_deployment_wakes_total`` (wake-ups started: cold starts).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Iterable

import httpx
from loguru import logger
from prometheus_client import CollectorRegistry, Counter, Gauge

from functions import tls
from functions.errors import (
    DeploymentDownError,
    UpstreamRefusedError,
    UpstreamUnavailableError,
    UpstreamUnreachableError,
)
from functions.settings import Deployment

DOWN_RETRY_AFTER_S = 5  # a supervisor restarts a dead node within seconds, or not at all


def _as_number(event: asyncio.Event) -> float:
    return float(event.is_set())


def unreachable(deployment: Deployment, exc: UpstreamUnavailableError) -> bool:
    """Whether ``exc`` says the deployment is not there: any failure to reach one that
    scales to zero (it may be starting), only a refused connection for any other (a
    timeout from a busy server is not a dead one)."""
    if deployment.scale_to_zero:
        return isinstance(exc, UpstreamUnreachableError)
    return isinstance(exc, UpstreamRefusedError)


def down_error(model: str) -> DeploymentDownError:
    """The 503 for a model whose every deployment that may serve is down."""
    return DeploymentDownError(
        f"The model `{model}` is down: its server refuses connections and is not one that "
        "starts on demand, so there is nothing to wait for. Please try again later.",
        headers={"retry-after": str(DOWN_RETRY_AFTER_S)},
    )


def health_url(deployment: Deployment) -> str:
    if deployment.health_url:
        return deployment.health_url
    base = deployment.api_base.rstrip("/")
    return (base[: -len("/v1")] if base.endswith("/v1") else base) + "/health"


class Warmth:
    def __init__(
        self,
        deployments: Iterable[Deployment],
        *,
        probe_interval_s: float,
        probe_timeout_s: float,
        wake_timeout_s: float,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._watched = {d.name: d for d in deployments if d.relayed}
        self._scale_to_zero = {name for name, d in self._watched.items() if d.scale_to_zero}
        self._warm = {name: asyncio.Event() for name in self._watched}
        for event in self._warm.values():
            event.set()  # unknown counts as warm until a probe or a request says otherwise
        self._wakes: Counter | None = None
        if registry is not None:
            self._export(registry)
        self._interval, self._probe_timeout = probe_interval_s, probe_timeout_s
        self._wake_timeout = wake_timeout_s
        self._client: httpx.AsyncClient | None = None  # made on the first probe (TLS: tls.py)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._monitor: asyncio.Task[None] | None = None

    def _export(self, registry: CollectorRegistry) -> None:
        warm = Gauge(
            "enclave_gateway_deployment_warm",
            "1 while a self-hosted deployment answers its health probe, 0 while it is cold",
            ["deployment"],
            registry=registry,
        )
        self._wakes = Counter(
            "enclave_gateway_deployment_wakes",
            "Cold deployments woken by a request (cold starts)",
            ["deployment"],
            registry=registry,
        )
        for name, event in self._warm.items():
            warm.labels(name).set_function(functools.partial(_as_number, event))
            self._wakes.labels(name)

    def _unreachable(self, deployment: Deployment) -> bool:
        event = self._warm.get(deployment.name)
        return event is not None and not event.is_set()

    def is_cold(self, deployment: Deployment) -> bool:
        """Unreachable, but it scales to zero: woken, and worth waiting for."""
        return self._unreachable(deployment) and deployment.name in self._scale_to_zero

    def is_down(self, deployment: Deployment) -> bool:
        """Unreachable, and nothing can wake it: not worth waiting for."""
        return self._unreachable(deployment) and deployment.name not in self._scale_to_zero

    def states(self) -> dict[str, str]:
        return {name: self._state(name) for name in self._warm}

    def _state(self, name: str) -> str:
        if self._warm[name].is_set():
            return "warm"
        return "cold" if name in self._scale_to_zero else "down"

    def mark_unreachable(self, deployment: Deployment) -> None:
        """A probe or a request could not reach it: cold if it scales to zero, else down."""
        event = self._warm.get(deployment.name)
        if event is not None and event.is_set():
            event.clear()
            state = self._state(deployment.name)
            logger.warning(f"deployment is {state}", deployment=deployment.name)

    def _mark_warm(self, name: str) -> None:
        if not self._warm[name].is_set():
            self._warm[name].set()
            logger.info("deployment is warm", deployment=name)

    def wake(self, deployment: Deployment) -> None:
        """Start waking a cold deployment (at most one wake-up in flight per deployment);
        one that does not scale to zero has no wake-up path."""
        name = deployment.name
        if name not in self._scale_to_zero:
            return
        if name in self._tasks and not self._tasks[name].done():
            return
        logger.info("waking deployment", deployment=name)
        if self._wakes is not None:
            self._wakes.labels(name).inc()
        self._tasks[name] = asyncio.create_task(self._probe(name, self._wake_timeout, wake=True))

    async def wait_warm(
        self, deployments: Iterable[Deployment], within_s: float
    ) -> Deployment | None:
        """The first of ``deployments`` to become warm within ``within_s`` seconds, or None."""
        candidates = [d for d in deployments if d.name in self._warm]
        if not candidates:
            return None
        waits = {asyncio.ensure_future(self._warm[d.name].wait()): d for d in candidates}
        try:
            done, _ = await asyncio.wait(waits, timeout=within_s, return_when="FIRST_COMPLETED")
        finally:
            for task in waits:
                task.cancel()
        return waits[next(iter(done))] if done else None

    def client(self) -> httpx.AsyncClient:
        """The probes' client (:func:`functions.tls.upstream_client`), made on first use."""
        if self._client is None:
            self._client = tls.upstream_client()
        return self._client

    async def _probe(self, name: str, limit_s: float, wake: bool = False) -> None:
        try:
            response = await self.client().get(health_url(self._watched[name]), timeout=limit_s)
            healthy = response.status_code == 200
        except httpx.HTTPError:
            healthy = False
        if healthy:
            self._mark_warm(name)
        elif not wake:
            self.mark_unreachable(self._watched[name])
        else:
            logger.warning("deployment did not wake", deployment=name, timeout_s=limit_s)

    async def _watch(self) -> None:
        while True:
            await asyncio.gather(
                *(self._probe(name, self._probe_timeout) for name in self._watched)
            )
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        if self._watched and self._monitor is None:
            self._monitor = asyncio.create_task(self._watch())

    async def aclose(self) -> None:
        for task in [*self._tasks.values(), *([self._monitor] if self._monitor else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()
