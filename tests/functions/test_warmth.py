"""Warmth's state: a gauge per self-hosted deployment, its wake-ups counted, and down
(nothing can wake it) told apart from cold (it scales to zero)."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from functions.settings import Deployment
from functions.warmth import Warmth

# refused at once; one that scales to zero, and one that does not
NOWHERE = Deployment(name="d1", model="m", api_base="http://127.0.0.1:9/v1", scale_to_zero=True)
LOCAL = Deployment(name="d3", model="m", api_base="http://127.0.0.1:9/v1")
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
        warmth.mark_unreachable(NOWHERE)
        assert sample("deployment_warm") == 0
        warmth.wake(NOWHERE)
        warmth.wake(NOWHERE)  # one wake-up in flight at a time
        assert sample("deployment_wakes_total") == 1
        await warmth.aclose()

    asyncio.run(main())


def test_without_a_registry_nothing_is_exported() -> None:
    async def main() -> None:
        warmth = Warmth([NOWHERE], probe_interval_s=60, probe_timeout_s=1, wake_timeout_s=1)
        warmth.mark_unreachable(NOWHERE)
        warmth.wake(NOWHERE)
        await warmth.aclose()

    asyncio.run(main())


def test_an_unreachable_deployment_that_cannot_scale_to_zero_is_down_and_never_woken() -> None:
    registry = CollectorRegistry()

    async def main() -> None:
        warmth = Warmth(
            [NOWHERE, LOCAL],
            probe_interval_s=60,
            probe_timeout_s=1,
            wake_timeout_s=1,
            registry=registry,
        )
        warmth.mark_unreachable(NOWHERE)
        warmth.mark_unreachable(LOCAL)
        assert warmth.states() == {"d1": "cold", "d3": "down"}
        assert (warmth.is_cold(NOWHERE), warmth.is_down(NOWHERE)) == (True, False)
        assert (warmth.is_cold(LOCAL), warmth.is_down(LOCAL)) == (False, True)
        warmth.wake(LOCAL)  # no wake-up path: nothing is started, nothing counted
        sample = registry.get_sample_value(
            "enclave_gateway_deployment_wakes_total", {"deployment": "d3"}
        )
        assert sample == 0
        assert await warmth.wait_warm([LOCAL], 0.05) is None
        await warmth.aclose()

    asyncio.run(main())
