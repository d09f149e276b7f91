"""The gateway's side of filtering: the input step, the compliance step, the answer filter
and the ``POST /v1/filter`` function URL.

    filter_input   mask every text field, refuse blocked input, classify (header and
                   unreadable content may raise the level; with filtering off too)
    comply         drop deployments the request's level may not reach; 503 if none is left

The answer side is :mod:`functions.filtering.answer`.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from functions import lifecycle
from functions.audit.local import RequestAudit
from functions.auth import caller
from functions.context import ChatContext, ChatStep, Step
from functions.edge import json_response, read_json
from functions.errors import InvalidRequestError
from functions.filtering.classify import CLASSIFICATION_HEADER, Level, highest, raise_level
from functions.filtering.engine import FilterSet
from functions.filtering.fields import unreadable_parts
from functions.filtering.policy import FilterPolicy
from functions.filtering.results import ContentBlockedError
from functions.filtering.routing import compliant_plan
from functions.filtering.scanner import Scanner

FILTER_BODY_LIMIT = 262_144


def _with_unreadable(policy: FilterPolicy, level: Level, unreadable: int) -> Level:
    """The request's level once content the gateway cannot read is accounted for."""
    if not unreadable or policy.unreadable_content == "allow":
        return level
    if policy.unreadable_content == "block":
        raise ContentBlockedError(
            "The content policy refuses content the gateway cannot read (images, audio, files)."
        )
    return highest((level, policy.unreadable_level))


def make_filter_input(filters: FilterSet, scanner: Scanner) -> ChatStep:
    async def filter_input(ctx: ChatContext) -> ChatContext:
        cf = filters.for_tenant(ctx.principal.tenant)
        header = ctx.headers.get(CLASSIFICATION_HEADER)
        if not cf.policy.enabled:  # no masking, but classification still decides the route
            unreadable = unreadable_parts(ctx.body)
            level = _with_unreadable(cf.policy, cf.policy.default_level, unreadable)
            level = raise_level(level, header)
            return ctx.evolve(
                level=level,
                decisions={**ctx.decisions, "filter": "off", "level": level.value},
            )
        tenant = ctx.principal.tenant
        conversation = await scanner.mask(ctx.size, tenant, ctx.body, ctx.retrieved)
        if conversation.result.blocked:  # the verdict outlives the refusal
            lifecycle.call().verdict(**conversation.result.log_fields())
        conversation.result.raise_if_blocked()
        level = _with_unreadable(cf.policy, conversation.result.level, conversation.unreadable)
        level = raise_level(level, header)
        fields = conversation.result.log_fields()
        decisions = {
            **ctx.decisions,
            "filter": fields["filter"],
            "level": level.value,
            "detections": fields["detections"],
            "injection": fields["injection"],
        }
        if conversation.unreadable:
            decisions["unreadable"] = str(conversation.unreadable)
        return ctx.evolve(
            body=conversation.request, conversation=conversation, level=level, decisions=decisions
        )

    return filter_input


def make_comply(filters: FilterSet) -> ChatStep:
    async def comply(ctx: ChatContext) -> ChatContext:
        if ctx.level is None:
            return ctx
        policy = filters.for_tenant(ctx.principal.tenant).policy
        plan = compliant_plan(ctx.plan, ctx.level, policy, lambda d: d.location)
        return ctx.evolve(plan=plan) if plan != ctx.plan else ctx

    return comply


def filter_route(
    filters: FilterSet, authenticate: Step, scanner: Scanner, audit: RequestAudit
) -> Route:
    """``POST /v1/filter``: what the input or output filter would do with a text (audited).
    An input text is read by both injection stages, as a chat's messages are."""

    async def endpoint(request: Request) -> Response:
        async with audit.opened_durable("/v1/filter") as call:
            call.principal = principal = await caller(authenticate, request)
            body = await read_json(request, FILTER_BODY_LIMIT)
            if not isinstance(body, dict) or not isinstance(body.get("text"), str):
                raise InvalidRequestError('Send {"text": "…", "direction": …}.', param="text")
            direction = body.get("direction", "input")
            if direction not in ("input", "output"):
                raise InvalidRequestError("direction is 'input' or 'output'.", param="direction")
            text = body["text"]
            cf = filters.for_tenant(principal.tenant)
            if direction == "input" and cf.policy.injection_model and scanner.inline(len(text)):
                # injection stage 2's embedding, in a thread: the scan then runs on the loop
                await asyncio.to_thread(cf.prepare_injection, [text])
            result = await scanner.scan(principal.tenant, text, direction)
            call.decisions.update(result.log_fields())
            return json_response(result.model_dump(mode="json"))

    return Route("/v1/filter", endpoint, methods=["POST"])
