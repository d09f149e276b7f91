"""What the steps added for chat frontends cost per request, in process.

- ``classify``: recognising Open WebUI's task templates (and the priority header)
  in a chat like the ones Open WebUI sends: a 20-turn conversation, 30 tool
  definitions, and a last message of 200 characters, or of 1 MB (a paste);
- ``window``: fitting that conversation into a 2,048-token context (the estimate, the
  turns, what to drop), with the context length already known;
- ``end_user``: naming the end user from Open WebUI's forwarded headers (validation
  and the keyed pseudonym).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.datastructures import Headers

from functions.classes import classify
from functions.context import ChatContext, Principal
from functions.endusers import identify, pseudonymiser
from functions.settings import Deployment
from functions.window.lengths import ContextLengths
from functions.window.settings import WindowSettings
from functions.window.steps import make_window
from functions.wire import ChatCompletionRequest

TOOL = {
    "type": "function",
    "function": {
        "name": "tool_{n}",
        "description": "Looks something up for the user. " * 4,
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    },
}


def chat(last: str) -> ChatCompletionRequest:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are helpful."}]
    for n in range(20):
        messages.append({"role": "user", "content": f"Question {n}: " + "words " * 60})
        messages.append({"role": "assistant", "content": f"Answer {n}: " + "words " * 80})
    messages.append({"role": "user", "content": last})
    tools = [{**TOOL, "function": {**TOOL["function"], "name": f"tool_{n}"}} for n in range(30)]
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": messages, "tools": tools}
    )


SHORT = "How many days of annual leave do I have left this year, and can I carry them over? " * 2
PASTE = "x" * 1_000_000


@pytest.mark.parametrize("last", [SHORT[:200], PASTE], ids=["200-chars", "1-MB-paste"])
def test_classify(benchmark: Any, last: str) -> None:
    body, headers = chat(last), Headers({"x-openwebui-user-id": "u-1"})
    found = benchmark(classify, headers, body)
    assert found.priority == "interactive" and found.task is None


def test_window(benchmark: Any) -> None:
    settings = WindowSettings()
    step = make_window(settings, ContextLengths(settings), {})
    node = Deployment(name="n", model="m", api_base="http://n/v1", context_tokens=2048)
    ctx = ChatContext(
        request_id="r",
        headers=Headers(),
        principal=Principal(key_id="k", tenant="acme"),
        body=chat(SHORT[:200]),
        plan=(node,),
    )
    loop = asyncio.new_event_loop()
    fitted = benchmark(lambda: loop.run_until_complete(step(ctx)))
    loop.close()
    assert fitted.window is not None and fitted.window.dropped  # 20 turns do not fit 2,048


def test_end_user(benchmark: Any) -> None:
    principal = Principal(key_id="k", tenant="acme", trust_user_headers=True)
    headers = Headers(
        {
            "x-openwebui-user-id": "8f14e45f-ceea-467f-a0e6-8d3c2e2f5a11",
            "x-openwebui-user-email": "jane.roe@example.org",
            "x-openwebui-user-role": "user",
            "x-openwebui-user-name": "Jane%20Roe",
        }
    )
    pseudonym = pseudonymiser(b"p" * 32)
    user = benchmark(identify, principal, headers, None, pseudonym)
    assert user is not None and user.pseudonym.startswith("u_")
