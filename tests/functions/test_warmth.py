"""Warmth's exported state: a gauge per self-hosted deployment, and its wake-ups counted."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from functions.settings import Deployment
from functions.warmth import Warmth

NOWHERE = Deployment(name="d1", model="m", api_base="http://127.0.0.1:9/v1")  # refused at once
EXTERNAL = Deployment(name="d2", model="m", api_base="https://api.example/v1", provider="anthropic")


def test_the_gauge_follows_the_state_and_wakes_are_counted() -> None:
    registry = CollectorRegistry()

    def sample(name: str, deployment: str = "d1") -> float | None:
        return registry.get_sample_value(f"enclave_gateway_{name}", {"deployment": deployment})

    async def main() -> None:
        warmth = Warmth(
            [NOWHERE, EXTERNAL],
            probe_interval_s=60,
            probe_timeout_s=1,
            wake_timeout_s=1,
            registry=registry,
        )
        assert sample("deployment_warm") == 1  # unknown counts as warm
        assert sample("deployment_wakes_total") == 0
        assert sample("deployment_warm", "d2") is None  # not probed: not exported
        warmth.mark_cold(NOWHERE)
        assert sample("deployment_warm") == 0
        warmth.wake(NOWHERE)
        warmth.wake(NOWHERE)  # one wake-up in flight at a time
        assert sample("deployment_wakes_total") == 1
        await warmth.aclose()

    asyncio.run(main())


def test_without_a_registry_nothing_is_exported() -> None:
    async def main() -> None:
        warmth = Warmth([NOWHERE], probe_interval_s=60, probe_timeout_s=1, wake_timeout_s=1)
        warmth.mark_cold(NOWHERE)
        warmth.wake(NOWHERE)
        await warmth.aclose()

    asyncio.run(main())
