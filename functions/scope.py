"""The tenant a request acts for, for code below the steps that keeps per-tenant state
without a context argument (injection stage 2's vector cache, shared with retrieval).

Set by authentication, in the request's own task: the steps after it, and the worker
threads they start (``asyncio.to_thread`` copies the context), see it. Outside a request
it is ``""``, a scope of its own. Why a cache needs it: a cache shared by tenants tells
one tenant, by how fast it answers, whether another sent the same text (invariant I6).
"""

from __future__ import annotations

from contextvars import ContextVar

tenant: ContextVar[str] = ContextVar("tenant", default="")
