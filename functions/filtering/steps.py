"""The gateway's side of filtering: the input step, the compliance step, the answer filter
and the ``POST /v1/filter`` function URL.

    filter_input   mask the conversation, refuse blocked input, classify (header may raise)
    comply         drop deployments the request's level may not reach; 503 if none is left
    AnswerFilter   guard then restore the answer, whole or chunk by chunk
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from functions.auth import caller
from functions.context import RequestContext, Step
from functions.edge import json_response, read_json
from functions.errors import InvalidRequestError
from functions.filtering.classify import CLASSIFICATION_HEADER, raise_level
from functions.filtering.engine import FilterSet, MaskedConversation
from functions.filtering.output import OutputStream
from functions.filtering.results import ContentBlockedError
from functions.filtering.routing import compliant_plan

FILTER_BODY_LIMIT = 262_144


def make_filter_input(filters: FilterSet) -> Step:
    async def filter_input(ctx: RequestContext) -> RequestContext:
        assert ctx.principal is not None and ctx.body is not None
        cf = filters.for_tenant(ctx.principal.tenant)
        if not cf.policy.enabled:
            return ctx.decided("filter", "off")
        conversation = cf.mask_conversation(ctx.body.messages)
        conversation.result.raise_if_blocked()
        level = raise_level(conversation.result.level, ctx.headers.get(CLASSIFICATION_HEADER))
        fields = conversation.result.log_fields()
        return ctx.evolve(
            body=ctx.body.model_copy(update={"messages": conversation.messages}),
            conversation=conversation,
            level=level,
            decisions={
                **ctx.decisions,
                "filter": fields["filter"],
                "level": level.value,
                "detections": fields["detections"],
                "injection": fields["injection"],
            },
        )

    return filter_input


def make_comply(filters: FilterSet) -> Step:
    async def comply(ctx: RequestContext) -> RequestContext:
        assert ctx.principal is not None
        if ctx.level is None:
            return ctx
        policy = filters.for_tenant(ctx.principal.tenant).policy
        plan = compliant_plan(ctx.plan, ctx.level, policy, lambda d: d.location)
        return ctx.evolve(plan=plan) if plan != ctx.plan else ctx

    return comply


class AnswerFilter:
    """One answer's output checks and restore; the chat relay feeds it upstream payloads."""

    def __init__(self, filters: FilterSet, tenant: str, conversation: MaskedConversation) -> None:
        self._stream: OutputStream = filters.for_tenant(tenant).output_stream(conversation)

    def apply(self, answer: dict[str, Any]) -> None:
        """A whole chat.completion, in place: checked, restored, or cut short as
        ``content_filter``."""
        for choice in answer.get("choices") or []:
            message = choice.get("message")
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                try:
                    message["content"] = self._stream.feed(message["content"])
                    message["content"] += self._stream.finish()
                except ContentBlockedError:
                    message["content"] = ""
                    choice["finish_reason"] = "content_filter"

    def chunk(self, chunk: dict[str, Any]) -> dict[str, Any] | None:
        """A streamed chunk with its text checked and restored; None when nothing is left.

        Raises :class:`ContentBlockedError` when the answer must stop here.
        """
        choices = chunk.get("choices") or []
        if not choices:
            return chunk
        choice = choices[0]
        if not isinstance(choice.get("delta"), dict):
            choice["delta"] = {}
        delta = choice["delta"]
        text = self._stream.feed(delta["content"]) if delta.get("content") else ""
        if choice.get("finish_reason") is not None:
            text += self._stream.finish()
        if delta.get("content") is not None or text:
            delta["content"] = text
        if not text and choice.get("finish_reason") is None and set(delta) <= {"content"}:
            return None
        return chunk


def filter_route(filters: FilterSet, authenticate: Step) -> Route:
    """``POST /v1/filter``: what the input or output filter would do with a text."""

    async def endpoint(request: Request) -> Response:
        principal = await caller(authenticate, request)
        body = await read_json(request, FILTER_BODY_LIMIT)
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            raise InvalidRequestError('Send {"text": "…", "direction": …}.', param="text")
        direction = body.get("direction", "input")
        if direction not in ("input", "output"):
            raise InvalidRequestError("direction is 'input' or 'output'.", param="direction")
        result = filters.for_tenant(principal.tenant).scan(body["text"], direction)
        return json_response(result.model_dump(mode="json"))

    return Route("/v1/filter", endpoint, methods=["POST"])
