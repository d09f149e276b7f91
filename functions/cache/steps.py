"""The cache in the gateway: the lookup step and the operators' routes.

The lookup runs after filtering and routing decided (the request as masked, the
model resolved, the plan compliant) and before the rate limit: a hit is counted
as a request but charges no tokens.

    GET    /v1/admin/cache               entries and this process's hit/miss/bypass counts
    DELETE /v1/admin/cache[?tenant=T]    drop entries (an admin: its tenant; bootstrap: any)
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from functions import rbac
from functions.admin import audited_operation
from functions.audit.local import RequestAudit
from functions.cache.cache import ResponseCache
from functions.context import ChatContext, ChatStep, Principal, Step
from functions.edge import json_response
from functions.errors import PermissionDeniedError

ROUTE = "/v1/admin/cache"


class CacheMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "enclave_gateway_cache_requests",
            "Chat requests by what the response cache did: hit, miss or bypass",
            ["result"],
            registry=registry,
        )
        self.errors = Counter(
            "enclave_gateway_cache_errors",
            "Response-cache store operations that failed (served by the model instead)",
            ["op"],
            registry=registry,
        )
        self.seen = {result: 0 for result in ("hit", "miss", "bypass")}  # this process
        for result in self.seen:
            self.requests.labels(result)

    def record(self, result: str) -> None:
        self.requests.labels(result).inc()
        self.seen[result] += 1


def make_cache_lookup(cache: ResponseCache, metrics: CacheMetrics) -> ChatStep:
    async def lookup(ctx: ChatContext) -> ChatContext:
        found = await cache.lookup(
            ctx.principal.tenant,
            ctx.body,
            ctx.level,
            ctx.headers,
            filtered=ctx.conversation is not None,
        )
        metrics.record(found.result)
        return ctx.decided("cache", found.decision, cache=found)

    return lookup


def _may_manage(principal: Principal, tenant: str | None) -> bool:
    bootstrap = principal.key_id.startswith("bootstrap-")
    return bootstrap or (tenant is not None and principal.tenant == tenant)


def cache_routes(
    cache: ResponseCache, metrics: CacheMetrics, authenticate: Step, audit: RequestAudit
) -> list[Route]:
    def tenant_of(request: Request, principal: Principal) -> str | None:
        tenant = request.query_params.get("tenant")
        if tenant is None and not principal.key_id.startswith("bootstrap-"):
            tenant = principal.tenant  # a tenant's operator: its own entries
        if not _may_manage(principal, tenant):
            raise PermissionDeniedError("An operator manages its own tenant's cache only.")
        return tenant

    async def stats(request: Request, principal: Principal) -> tuple[Response, dict[str, Any]]:
        tenant = tenant_of(request, principal)
        found = await cache.stats(tenant)
        body = {
            "backend": cache.settings.backend,
            "tenant": tenant,
            "entries": found.entries,
            "bytes": found.bytes,
            "requests": dict(metrics.seen),  # this process since it started
        }
        return json_response(body), {"tenant": tenant}

    async def clear(request: Request, principal: Principal) -> tuple[Response, dict[str, Any]]:
        tenant = tenant_of(request, principal)
        deleted = await cache.clear(tenant)
        return json_response({"deleted": deleted, "tenant": tenant}), {
            "tenant": tenant,
            "deleted": deleted,
        }

    read = audited_operation(authenticate, audit, ROUTE, "cache.stats", rbac.READ_AUDIT, stats)
    drop = audited_operation(authenticate, audit, ROUTE, "cache.clear", rbac.MANAGE_KEYS, clear)

    async def endpoint(request: Request) -> Response:
        return await (drop if request.method == "DELETE" else read)(request)

    return [Route(ROUTE, endpoint, methods=["GET", "DELETE"])]
