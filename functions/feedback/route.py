"""``POST /v1/feedback`` and the lifecycle hook that makes answers rateable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from loguru import logger
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from functions import rbac
from functions.audit.local import RequestAudit
from functions.auth import caller
from functions.context import Step
from functions.edge import json_response, read_json
from functions.errors import InvalidRequestError, StorageUnavailableError
from functions.feedback.model import FeedbackRequest, FeedbackStore
from functions.filtering.scanner import Scanner
from functions.lifecycle import Call

ROUTE = "/v1/feedback"
BODY_LIMIT = 16_384  # bytes: a request id, a rating and a comment of 2,000 characters


class RatedRequestNotFoundError(InvalidRequestError):
    """No answer under this id in the caller's tenant (another tenant's looks the same)."""

    status = 404
    code = "request_not_found"


def make_remember(store: FeedbackStore) -> Callable[[Call], Awaitable[None]]:
    """The lifecycle's ``answered`` hook: index each answered chat for rating. A failure
    is logged and the answer goes on: feedback is worth less than the answer."""

    async def remember(owner: Call) -> None:
        ctx = owner.ctx
        if ctx is None or ctx.principal is None:
            return
        tenant, request_id = ctx.principal.tenant, ctx.request_id
        try:
            await store.remember(
                tenant, request_id, owner.experiment or None, owner.variant or None
            )
        except StorageUnavailableError as exc:
            logger.warning("feedback index", error=exc.message, request_id=request_id)

    return remember


def feedback_route(
    store: FeedbackStore, authenticate: Step, scanner: Scanner, audit: RequestAudit
) -> Route:
    """``POST /v1/feedback``: rate an answer of the caller's own tenant (audited)."""

    async def endpoint(request: Request) -> Response:
        async with audit.opened_durable(ROUTE) as call:
            call.principal = principal = await caller(authenticate, request)
            rbac.require(principal, rbac.CHAT)  # who may not ask (an auditor) may not rate
            body = FeedbackRequest.model_validate(await read_json(request, BODY_LIMIT))
            comment = body.comment
            if comment:
                result = await scanner.scan(principal.tenant, comment, "input")
                call.decisions.update(result.log_fields())
                result.raise_if_blocked()
                comment = result.masked_text
            call.decisions["rating"] = str(body.rating)
            tenant, rater = principal.tenant, principal.key_id
            try:
                stored = await store.rate(tenant, rater, body, comment)
            except StorageUnavailableError as exc:  # where and why is the operator's to read
                logger.error("feedback store", error=exc.message)
                raise StorageUnavailableError(
                    "Ratings cannot be stored right now; retry shortly.",
                    headers={"retry-after": "5"},
                ) from None
            if not stored:
                raise RatedRequestNotFoundError(
                    f"No answer with the id `{body.request_id}` to rate.", param="request_id"
                )
            answer = {"object": "feedback", "request_id": body.request_id, "rating": body.rating}
            return json_response({**answer, "comment": comment})

    return Route(ROUTE, endpoint, methods=["POST"])
