"""Routing's order of deployments and its cooldowns (functions/routing.py, cooldowns.py).

The router is driven the way the chat step drives it: ``plan`` for a model, then
``record_failure``/``record_success`` per attempt. Cooldowns run on a hand-set clock.
"""

from __future__ import annotations

import asyncio

import pytest

from functions.cooldowns import WINDOW_S, Cooldowns
from functions.errors import ModelNotFoundError
from functions.routing import DeploymentRouter
from functions.settings import Deployment, GatewaySettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _dep(name: str, model: str) -> Deployment:
    return Deployment(name=name, model=model, api_base=f"http://127.0.0.1:9/{name}/v1")


def _router(allowed_fails: int = 0, cooldown_s: float = 30.0) -> DeploymentRouter:
    return DeploymentRouter(_settings(allowed_fails, cooldown_s))


def _settings(allowed_fails: int = 0, cooldown_s: float = 30.0) -> GatewaySettings:
    return GatewaySettings(
        api_keys=["sk-test-" + "r" * 24],
        deployments=[_dep("a1", "a"), _dep("a2", "a"), _dep("b1", "b")],
        fallbacks={"a": ["b"]},
        allowed_fails=allowed_fails,
        cooldown_s=cooldown_s,
    )


def _deployment(name: str) -> Deployment:
    return next(d for d in _settings().deployments if d.name == name)


def _names(router: DeploymentRouter, model: str) -> list[str]:
    return [d.name for d in asyncio.run(router.plan(model))]


def test_plan_is_the_models_deployments_then_its_fallbacks() -> None:
    router = _router()
    plans = {tuple(_names(router, "a")) for _ in range(200)}
    assert plans == {("a1", "a2", "b1"), ("a2", "a1", "b1")}  # either may lead: shuffled
    assert _names(router, "b") == ["b1"]
    assert router.models() == ["a", "b"]


def test_an_unknown_model_is_a_404() -> None:
    with pytest.raises(ModelNotFoundError):
        asyncio.run(_router().plan("nope"))


def test_a_failed_deployment_goes_last_and_is_still_tried() -> None:
    router = _router()
    a1 = _deployment("a1")
    router.record_failure(a1)
    for _ in range(50):
        assert _names(router, "a") == ["a2", "b1", "a1"]
    router.record_success(a1)  # it answered as the last resort: back in the rotation
    assert {tuple(_names(router, "a")) for _ in range(200)} == {
        ("a1", "a2", "b1"),
        ("a2", "a1", "b1"),
    }


def test_cooldown_starts_past_allowed_fails_within_a_minute() -> None:
    clock = Clock()
    cooldowns = Cooldowns(allowed_fails=2, cooldown_s=30, clock=clock)
    cooldowns.failed("d")
    cooldowns.failed("d")
    assert cooldowns.resting(["d"]) == set()
    clock.now += WINDOW_S + 1  # those two are older than a minute now
    cooldowns.failed("d")
    cooldowns.failed("d")
    assert cooldowns.resting(["d"]) == set()
    cooldowns.failed("d")  # the third within a minute
    assert cooldowns.resting(["d", "other"]) == {"d"}


def test_cooldown_ends_after_cooldown_s_with_a_fresh_count() -> None:
    clock = Clock()
    cooldowns = Cooldowns(allowed_fails=1, cooldown_s=30, clock=clock)
    cooldowns.failed("d")
    cooldowns.failed("d")
    clock.now += 29.9
    assert cooldowns.resting(["d"]) == {"d"}
    clock.now += 0.2
    assert cooldowns.resting(["d"]) == set()
    cooldowns.failed("d")  # one failure after the rest: within allowed_fails again
    assert cooldowns.resting(["d"]) == set()


def test_a_zero_cooldown_never_rests() -> None:
    router = _router(cooldown_s=0)
    router.record_failure(_deployment("b1"))
    assert _names(router, "b") == ["b1"]
    assert router.cooldowns.resting(["b1"]) == set()


def test_a_429_rests_the_deployment_at_once() -> None:
    router = _router(allowed_fails=3)
    router.record_failure(_deployment("a1"), rate_limited=True)  # one 429, under allowed_fails
    assert router.cooldowns.resting(["a1", "a2"]) == {"a1"}
    for _ in range(50):
        assert _names(router, "a") == ["a2", "b1", "a1"]
    router.record_failure(_deployment("a2"))  # any other failure still counts to the limit
    assert router.cooldowns.resting(["a2"]) == set()


def test_only_an_answer_to_an_attempt_begun_during_the_rest_ends_it() -> None:
    clock = Clock()
    cooldowns = Cooldowns(allowed_fails=0, cooldown_s=30, clock=clock)
    in_flight = cooldowns.now()  # a long request to "d" begins
    clock.now += 1
    cooldowns.failed("d")  # meanwhile other requests fail: "d" rests
    clock.now += 1
    cooldowns.succeeded("d", in_flight)  # the old request's answer: says nothing new
    assert cooldowns.resting(["d"]) == {"d"}
    retried = cooldowns.now()  # tried as the last resort, during the rest
    clock.now += 1
    cooldowns.succeeded("d", retried)
    assert cooldowns.resting(["d"]) == set()
