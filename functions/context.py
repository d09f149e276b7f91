"""The typed, frozen request context that the gateway's steps pass along.

A step is ``async (ctx) -> ctx``: it reads what earlier steps produced, returns a
new context with what it adds, or raises an :class:`~functions.errors.EnclaveError`.
Steps are composed once, at start-up, into a single step (:func:`compose`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.datastructures import Headers

from functions.filtering.classify import Level
from functions.filtering.engine import MaskedConversation
from functions.ratelimit.limiter import Admission
from functions.settings import Deployment
from functions.wire import ChatCompletionRequest

if TYPE_CHECKING:
    from functions.cache.cache import Lookup


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a key's id (never the key) or a token's subject, and its policy."""

    key_id: str
    tenant: str = "default"
    role: str = "member"
    models: frozenset[str] | None = None  # None: any model the role may use
    collections: frozenset[str] | None = None  # None: any collection of the tenant
    rpm: int | None = None
    tpm: int | None = None
    daily_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str
    headers: Headers
    client: str | None = None  # the socket peer's address; functions/logins.py reads it
    payload: Any = None  # the request's JSON, as sent
    size: int = 0  # the body's length in bytes
    body: ChatCompletionRequest | None = None
    principal: Principal | None = None
    # deployments to try, in order: litellm's pick for the model, then its fallbacks
    plan: tuple[Deployment, ...] = ()
    # the request as the model may see it, and what it takes to restore the answer
    conversation: MaskedConversation | None = None
    level: Level | None = None  # data classification, set by the filter step
    admission: Admission | None = None  # rate-limit headers and the token settlement
    citations: tuple[dict[str, Any], ...] = ()  # sources retrieved into the prompt
    retrieved: frozenset[int] = frozenset()  # indices of messages holding retrieved passages
    cache: Lookup | None = None  # the response cache's hit (with the answer), miss or bypass
    # what each step decided, for the log line and the audit record
    decisions: Mapping[str, str] = field(default_factory=dict)

    def evolve(self, **changes: object) -> RequestContext:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def decided(self, step: str, verdict: str, **changes: object) -> RequestContext:
        return self.evolve(decisions={**self.decisions, step: verdict}, **changes)


Step = Callable[[RequestContext], Awaitable[RequestContext]]


def compose(steps: Sequence[Step]) -> Step:
    """One step that runs ``steps`` in order."""
    chain = tuple(steps)

    async def pipeline(ctx: RequestContext) -> RequestContext:
        for step in chain:
            ctx = await step(ctx)
        return ctx

    return pipeline
