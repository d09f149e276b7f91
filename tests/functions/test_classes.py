"""Request classes: the caller's header, Open WebUI's task templates, and what a class changes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from starlette.datastructures import Headers

from functions.classes import ClassMetrics, background_models, classify, make_classify
from functions.context import ChatContext, Principal
from functions.errors import InvalidRequestError
from functions.settings import GatewaySettings
from functions.wire import ChatCompletionRequest

# the openings of Open WebUI's default task templates (0.6 to 0.12), as it sends them:
# the whole template is the last (and only) user message
TITLE = (
    "### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat history.\n"
    "### Guidelines:\n- The title should clearly represent the main theme…\n### Chat History:\n"
    "<chat_history>\nUSER: what is our leave policy?\n</chat_history>"
)
TAGS = "### Task:\nGenerate 1-3 broad tags categorizing the main themes of the chat history"
FOLLOW_UPS = "### Task:\nSuggest 3-5 relevant follow-up questions or prompts that the user"
QUERIES = (
    "### Task:\nAnalyze the chat history to determine the necessity of generating search "
    "queries, in the given language."
)
AUTOCOMPLETE = "### Task:\nYou are an autocompletion system. Continue the text in `<text>`"
EMOJI = "Your task is to reflect the speaker's likely facial expression through a fitting emoji."


def body(text: str, model: str = "chat", **extra: Any) -> ChatCompletionRequest:
    messages = [{"role": "user", "content": text}]
    return ChatCompletionRequest.model_validate({"model": model, "messages": messages, **extra})


@pytest.mark.parametrize(
    ("text", "priority", "task"),
    [
        (TITLE, "background", "title"),
        (TAGS, "background", "tags"),
        (FOLLOW_UPS, "background", "follow_ups"),
        (EMOJI, "background", "emoji"),
        (QUERIES, "interactive", "queries"),  # the user's answer waits for these
        (AUTOCOMPLETE, "interactive", "autocomplete"),
        ("What is our leave policy?", "interactive", None),
        ("### Task:\nWrite me a poem about tasks.", "interactive", None),
        ("Please Generate a concise, 3-5 word title for my essay", "interactive", None),
    ],
)
def test_open_webuis_tasks_are_recognised_by_their_template(
    text: str, priority: str, task: str | None
) -> None:
    found = classify(Headers({}), body(text))
    assert (found.priority, found.task) == (priority, task)


def test_only_the_last_user_message_and_its_opening_count() -> None:
    earlier = ChatCompletionRequest.model_validate(
        {
            "model": "chat",
            "messages": [
                {"role": "user", "content": TITLE},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "and now a real question"},
            ],
        }
    )
    assert classify(Headers({}), earlier).priority == "interactive"
    buried = body("x" * 500 + TITLE)
    assert classify(Headers({}), buried).task is None


def test_the_header_decides_and_any_key_may_send_it() -> None:
    assert classify(Headers({"x-enclave-priority": "background"}), body("hi")).priority == (
        "background"
    )
    found = classify(Headers({"x-enclave-priority": " Interactive "}), body(TITLE))
    assert (found.priority, found.reason, found.task) == ("interactive", "header", "title")


@pytest.mark.parametrize("value", ["urgent", "", "background, interactive"])
def test_an_unknown_priority_is_400(value: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        classify(Headers({"x-enclave-priority": value}), body("hi"))
    assert refused.value.param == "x-enclave-priority"


def test_a_repeated_priority_header_is_400() -> None:
    twice = Headers(raw=[(b"x-enclave-priority", b"background")] * 2)
    with pytest.raises(InvalidRequestError):
        classify(twice, body("hi"))


SETTINGS = GatewaySettings.model_validate(
    {
        "deployments": [
            {"name": "big", "model": "chat", "api_base": "http://127.0.0.1:1/v1"},
            {"name": "small", "model": "chat-small", "api_base": "http://127.0.0.1:1/v1"},
            {"name": "tiny", "model": "chat-tiny", "api_base": "http://127.0.0.1:1/v1"},
        ],
        "background_models": {"chat": "chat-small"},
        "aliases": {
            "handbook": {"model": "chat", "collections": ["handbook"]},
            "wiki": {"model": "chat", "collections": ["wiki"], "background_model": "chat-tiny"},
        },
    }
)
ALIASES = {name: alias.model for name, alias in SETTINGS.aliases.items()}


def run(
    request: ChatCompletionRequest,
    headers: dict[str, str] | None = None,
    principal: Principal | None = None,
    registry: CollectorRegistry | None = None,
) -> ChatContext:
    metrics = ClassMetrics(registry) if registry is not None else None
    step = make_classify(ALIASES, background_models(SETTINGS), metrics)
    ctx = ChatContext(
        request_id="t",
        headers=Headers(headers or {}),
        principal=principal or Principal(key_id="k"),
        body=request,
    )
    return asyncio.run(step(ctx))


def test_background_models_come_from_the_alias_else_its_model() -> None:
    assert background_models(SETTINGS) == {
        "chat": "chat-small",
        "handbook": "chat-small",
        "wiki": "chat-tiny",
    }


def test_a_title_on_an_alias_retrieves_nothing_and_goes_to_the_background_model() -> None:
    registry = CollectorRegistry()
    ctx = run(body(TITLE, model="handbook"), registry=registry)
    assert (ctx.priority, ctx.body.model) == ("background", "chat-small")
    assert ctx.decisions["retrieval"] == "skipped (openwebui:title)"
    assert ctx.decisions["priority"] == "background (openwebui:title) -> chat-small"
    sample = registry.get_sample_value(
        "enclave_gateway_chat_classes_total", {"priority": "background", "task": "title"}
    )
    assert sample == 1


def test_collections_a_request_names_itself_are_still_searched() -> None:
    named = ChatCompletionRequest.model_validate(
        {
            "model": "handbook",
            "messages": [{"role": "user", "content": QUERIES}],
            "enclave": {"collections": ["policies"]},
        }
    )
    ctx = run(named)
    assert ctx.body.model == "handbook" and "retrieval" not in ctx.decisions  # retrieval runs


def test_interactive_chat_on_an_alias_is_untouched() -> None:
    ctx = run(body("What is our leave policy?", model="handbook"))
    assert (ctx.priority, ctx.body.model) == ("interactive", "handbook")
    assert ctx.decisions["priority"] == "interactive (default)"


def test_a_key_that_may_not_use_the_background_model_keeps_its_own() -> None:
    narrow = Principal(key_id="k", models=frozenset({"chat"}))
    ctx = run(body("hi"), {"x-enclave-priority": "background"}, narrow)
    assert (ctx.priority, ctx.body.model) == ("background", "chat")
    assert ctx.decisions["priority"] == "background (header)"
