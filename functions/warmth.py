"""Which self-hosted deployments are warm, so users never wait on a cold GPU by accident.

Each relayed deployment's ``/health`` is probed in the background every
``probe_interval_s`` with a short timeout, and a failed request marks it cold at
once. A cold deployment is woken by a request of its own — on Modal any HTTP
request starts a container — sent in the background with a long timeout
(single-flight per deployment); when it answers 200 the deployment is warm again
and everyone waiting for it is released.

Deployments reached through litellm's translation (external providers) are not
probed: they are always taken to be warm.

Given a registry, the state is exported: ``enclave_gateway_deployment_warm``
(1 warm, 0 cold, per watched deployment) and
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

from functions.settings import Deployment


def _as_number(event: asyncio.Event) -> float:
    return float(event.is_set())


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
        self._warm = {name: asyncio.Event() for name in self._watched}
        for event in self._warm.values():
            event.set()  # unknown counts as warm until a probe or a request says otherwise
        self._wakes: Counter | None = None
        if registry is not None:
            self._export(registry)
        self._interval, self._probe_timeout = probe_interval_s, probe_timeout_s
        self._wake_timeout = wake_timeout_s
        self._client = httpx.AsyncClient()
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

    def is_cold(self, deployment: Deployment) -> bool:
        event = self._warm.get(deployment.name)
        return event is not None and not event.is_set()

    def states(self) -> dict[str, str]:
        return {name: "warm" if e.is_set() else "cold" for name, e in self._warm.items()}

    def mark_cold(self, deployment: Deployment) -> None:
        event = self._warm.get(deployment.name)
        if event is not None and event.is_set():
            event.clear()
            logger.warning("deployment is cold", deployment=deployment.name)

    def _mark_warm(self, name: str) -> None:
        if not self._warm[name].is_set():
            self._warm[name].set()
            logger.info("deployment is warm", deployment=name)

    def wake(self, deployment: Deployment) -> None:
        """Start waking a cold deployment (at most one wake-up in flight per deployment)."""
        name = deployment.name
        if name not in self._watched or (name in self._tasks and not self._tasks[name].done()):
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

    async def _probe(self, name: str, limit_s: float, wake: bool = False) -> None:
        try:
            response = await self._client.get(health_url(self._watched[name]), timeout=limit_s)
            healthy = response.status_code == 200
        except httpx.HTTPError:
            healthy = False
        if healthy:
            self._mark_warm(name)
        elif not wake:
            self.mark_cold(self._watched[name])
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
        await self._client.aclose()
