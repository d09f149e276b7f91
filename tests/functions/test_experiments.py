"""Experiments: what the settings refuse at start-up, the split, and the assignment step."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import httpx
import pydantic
import pytest
from starlette.datastructures import Headers

from functions.cache.cache import request_key
from functions.context import ChatContext, Principal
from functions.experiments import Experiment, bucket_of, make_assign, subject_of, variant_headers
from functions.gateway import create_app  # imports litellm (seconds): once, here
from functions.settings import Deployment, GatewaySettings, Settings
from functions.wire import ChatCompletionRequest, ChatMessage

DEPLOYMENTS = [
    {"name": "one", "model": "m1", "api_base": "http://127.0.0.1:9/v1"},
    {"name": "two", "model": "m2", "api_base": "http://127.0.0.1:9/v1"},
]
KEY = "sk-test-" + "x" * 24
SPLIT = {
    "variants": [
        {"name": "a", "model": "m1", "weight": 90},
        {"name": "b", "model": "m2", "weight": 10},
    ]
}


def settings(monkeypatch: pytest.MonkeyPatch, experiments: object, **extra: str) -> Settings:
    monkeypatch.setenv("ENCLAVE_GATEWAY_DEPLOYMENTS", json.dumps(DEPLOYMENTS))
    monkeypatch.setenv("ENCLAVE_GATEWAY_EXPERIMENTS", json.dumps(experiments))
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_a_valid_experiment_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = settings(monkeypatch, {"chat": SPLIT}).gateway.experiments["chat"]
    assert [v.name for v in loaded.variants] == ["a", "b"] and loaded.total_weight == 100


@pytest.mark.parametrize(
    ("experiments", "extra", "says"),
    [
        ({"chat": {"variants": [{"name": "a", "model": "m1", "weight": 0}]}}, {}, "greater than 0"),
        (
            {"chat": {"variants": [{"name": "a", "model": "m1", "weight": -5}]}},
            {},
            "greater than 0",
        ),
        ({"chat": {"variants": [{"name": "a", "model": "m1", "weight": 1.5}]}}, {}, "integer"),
        (
            {"chat": {"variants": [{"name": "a", "model": "m1", "weight": 1}] * 2}},
            {},
            "variant names must be unique",
        ),
        (
            {"chat": {"variants": [{"name": "a", "model": "m3", "weight": 1}]}},
            {},
            "names models no deployment serves: ['m3']",
        ),
        ({"m1": SPLIT}, {}, "experiment 'm1' has the name of a model or alias"),
        (
            {"kb": SPLIT},
            {"ENCLAVE_GATEWAY_ALIASES": json.dumps({"kb": {"model": "m1", "collections": ["c"]}})},
            "experiment 'kb' has the name of a model or alias",
        ),
        ({"chat": {"variants": []}}, {}, "at least 1 item"),
        ({"chat": {"variants": [{"name": "a b", "model": "m1", "weight": 1}]}}, {}, "pattern"),
    ],
)
def test_start_up_refuses_what_cannot_be_served(
    monkeypatch: pytest.MonkeyPatch, experiments: object, extra: dict[str, str], says: str
) -> None:
    with pytest.raises(pydantic.ValidationError) as refused:
        settings(monkeypatch, experiments, **extra)
    assert says in str(refused.value)


def test_the_split_follows_the_weights() -> None:
    """10,000 subjects at 90/10: b's share in the 99.9 % binomial interval."""
    experiment = Experiment.model_validate(SPLIT)
    n = 10_000
    b = sum(experiment.variant_for("chat", f"user:{i}").name == "b" for i in range(n))
    half = 3.29 * math.sqrt(n * 0.1 * 0.9)
    assert n * 0.1 - half <= b <= n * 0.1 + half


def test_buckets_depend_on_the_experiment_and_the_subject_only() -> None:
    assert bucket_of("chat", "user:x", 100) == bucket_of("chat", "user:x", 100)
    buckets = {bucket_of(name, "user:x", 1_000_000) for name in ("chat", "chat2", "code")}
    assert len(buckets) == 3  # another experiment reshuffles its callers


def context(user: str | None = None, model: str = "chat") -> ChatContext:
    body = ChatCompletionRequest.model_validate(
        {"model": model, "messages": [{"role": "user", "content": "hi"}], "user": user}
    )
    return ChatContext(
        request_id="r1", headers=Headers(), principal=Principal("key-1", "acme"), body=body
    )


def test_the_subject_is_the_user_else_the_key() -> None:
    assert subject_of(context("alice")) == "user:alice"
    assert subject_of(context()) == "key:key-1"
    assert subject_of(context("key-1")) != subject_of(context())  # no collision by naming


def test_assignment_resolves_the_model_before_routing() -> None:
    experiment = Experiment.model_validate(SPLIT)
    assign = make_assign({"chat": experiment})
    users = [f"u{i}" for i in range(50)]
    for user in users:
        done = asyncio.run(assign(context(user)))
        variant = experiment.variant_for("chat", f"user:{user}")
        assert done.body.model == variant.model
        assert done.decisions == {"experiment": "chat", "variant": variant.name}
        assert variant_headers(done) == {"x-enclave-variant": variant.name}
    plain = context(model="m1")
    assert asyncio.run(assign(plain)) is plain and variant_headers(plain) == {}


def test_variants_never_share_a_cache_entry() -> None:
    """The cache key is the upstream request's digest: the resolved model is in it."""
    experiment = Experiment.model_validate(SPLIT)
    assign = make_assign({"chat": experiment})
    by_variant = {}
    for i in range(200):
        done = asyncio.run(assign(context(f"u{i}")))
        by_variant[done.decisions["variant"]] = request_key("acme", done.body)
    assert set(by_variant) == {"a", "b"} and by_variant["a"] != by_variant["b"]


def experiment_app(fallbacks: dict[str, list[str]]) -> Any:
    """A gateway whose variant b's model is served only outside the organisation."""
    unreachable = "http://127.0.0.1:9/v1"  # the discard port: connection refused
    return create_app(
        Settings(
            gateway=GatewaySettings(
                api_keys=[KEY],
                deployments=[
                    Deployment(name="inside", model="m1", api_base=unreachable),
                    Deployment(
                        name="outside", model="m2", api_base=unreachable, location="external"
                    ),
                ],
                experiments={"chat": Experiment.model_validate(SPLIT)},
                fallbacks=fallbacks,
                cold_wait_s=0,
            )
        )
    )


def b_user() -> str:
    experiment = Experiment.model_validate(SPLIT)
    return next(
        f"u{i}" for i in range(1000) if experiment.variant_for("chat", f"user:u{i}").name == "b"
    )


def refusal_code(fallbacks: dict[str, list[str]], level: str) -> str:
    app = experiment_app(fallbacks)
    body = {"model": "chat", "user": b_user(), "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": f"Bearer {KEY}", "x-enclave-classification": level}

    async def main() -> httpx.Response:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                return await client.post("/v1/chat/completions", json=body, headers=headers)

    answer = asyncio.run(main())
    assert answer.status_code == 503, answer.text
    return str(answer.json()["error"]["code"])


def test_compliance_and_fallbacks_apply_to_the_variants_model() -> None:
    """Variant b's model m2 is external: a confidential request in b may not go there
    (no compliant deployment), unless m2 falls back to the on-prem m1, which is then
    tried (and is down here: refusing connections, it is reported down at once)."""
    assert refusal_code({}, "public") == "deployment_unavailable"  # m2 tried, refuses
    assert refusal_code({}, "confidential") == "no_compliant_deployment"
    assert refusal_code({"m2": ["m1"]}, "confidential") == "deployment_unavailable"


def test_a_frontends_bookkeeping_is_served_by_the_variant_but_not_counted() -> None:
    """Open WebUI sends its title and tag requests with the model the user chose: they go
    to the caller's variant's model, but are no answer to compare (no experiment decision,
    no header, so neither the report nor the metric counts them)."""
    experiment = Experiment.model_validate(SPLIT)
    assign = make_assign({"chat": experiment})
    title = "### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat"
    for ctx in (
        context("alice").evolve(
            body=context("alice").body.model_copy(
                update={"messages": [ChatMessage(role="user", content=title)]}
            )
        ),
        ChatContext(
            request_id="r2",
            headers=Headers({"x-enclave-priority": "background"}),
            principal=Principal("key-1", "acme"),
            body=context("alice").body,
        ),
    ):
        done = asyncio.run(assign(ctx))
        assert done.body.model == experiment.variant_for("chat", "user:alice").model
        assert "experiment" not in done.decisions and variant_headers(done) == {}
