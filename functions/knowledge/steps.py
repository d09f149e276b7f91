"""The gateway's side of the knowledge base: the retrieval step and its function URLs.

    retrieve              chat: passages from the named collections go before the
                          conversation as a numbered context; citations ride along
    POST /v1/retrieve     {"query", "collections", "top_k"} → {"data": [passages]}
    POST /v1/embeddings   OpenAI-compatible, with the knowledge base's embedder
    PUT  /v1/admin/collections/{collection}/documents?filename=…   ingest one upload

A chat names collections with ``extra_body={"enclave": {"collections": [...]}}``
or through a model alias bound to collections (``ENCLAVE_GATEWAY_ALIASES``).
Access is decided before any search: the tenant's own collections, narrowed by
the key's collection list (:func:`functions.rbac.may_read_collection`); anything
else is 403 and nothing from it is read. An upload is decided the same way (an
admin's role, the key's collection list) before a byte of its body is read. The
knowledge base (LanceDB and the embedder) is loaded on first use, in a worker
thread, so it costs the gateway's cold start nothing.

Each request to these routes leaves one audit record, answered or refused
(:meth:`functions.audit.local.RequestAudit.opened`). Embedding and retrieval run
in worker threads and stop when the client goes away
(:func:`functions.edge.unless_disconnected`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from functions import rbac
from functions.audit.errors import AuditUnavailableError
from functions.audit.local import RequestAudit
from functions.auth import caller
from functions.context import ChatContext, ChatStep, Principal, Step
from functions.edge import json_response, read_body, read_json, unless_disconnected
from functions.errors import InvalidRequestError, map_exception
from functions.knowledge.api import (
    MAX_QUERY_CHARS,
    EmbeddingRequest,
    RetrieveRequest,
    RetrieveResponse,
    create_embeddings,
)
from functions.knowledge.embeddings import Vectors
from functions.knowledge.parsers import supported
from functions.knowledge.prompting import citations, context_message
from functions.knowledge.settings import KnowledgeSettings
from functions.settings import ModelAlias
from functions.wire import ChatMessage

if TYPE_CHECKING:  # LanceDB and pyarrow: loaded once a request retrieves or ingests
    from functions.knowledge.access import Caller, CollectionAccess
    from functions.knowledge.base import KnowledgeBase
    from functions.knowledge.retrieve import Passage
    from functions.knowledge.store import CollectionRef

BODY_LIMIT = 262_144
UPLOAD_ROUTE = "/v1/admin/collections/{collection}/documents"


class RbacAccess:
    """A tenant policy (TenantAccess: own tenant only), narrowed to the collections a key
    lists, if it lists any. Writing takes what the tenant policy asks (an admin's role)
    as well, within the same list."""

    def __init__(self, tenants: CollectionAccess) -> None:
        self._tenants = tenants

    def can_read(self, caller: Caller, ref: CollectionRef) -> bool:
        if not self._tenants.can_read(caller, ref):
            return False
        if isinstance(caller, Principal):
            return rbac.may_read_collection(caller, ref.tenant, ref.name)
        return True

    def can_write(self, caller: Caller, ref: CollectionRef) -> bool:
        return self._tenants.can_write(caller, ref) and self.can_read(caller, ref)


def open_knowledge_base(settings: KnowledgeSettings) -> KnowledgeBase:
    """The knowledge base with the gateway's access policy. LanceDB, pyarrow and the
    embedder take seconds and over 100 MiB, so they are imported here, when a request
    first needs them, in a worker thread; not with the gateway, whose first chat would
    wait for them (:func:`functions.gateway.preload` imports them where that is free)."""
    from functions.knowledge.access import TenantAccess
    from functions.knowledge.base import KnowledgeBase

    return KnowledgeBase(settings, None, RbacAccess(TenantAccess()))


class Knowledge:
    """The knowledge base, opened on first use (see :func:`open_knowledge_base`)."""

    def __init__(self, settings: KnowledgeSettings) -> None:
        self.settings = settings
        self._kb: KnowledgeBase | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> KnowledgeBase:
        async with self._lock:
            if self._kb is None:
                self._kb = await asyncio.to_thread(open_knowledge_base, self.settings)
        return self._kb

    async def embed_query(self, text: str) -> Vectors:
        """One query's embedding, computed in a worker thread (the response cache's
        semantic matching)."""
        kb = await self.get()
        return await asyncio.to_thread(kb.embedder.embed, [text], "query")


def _collections(ctx: ChatContext) -> list[str]:
    """The collections the request names in its ``enclave`` extension (validated as wire)."""
    return list(ctx.body.enclave.collections) if ctx.body.enclave is not None else []


# screen(tenant, passage texts) -> whether each passage tries to instruct the model
# (one call for all of a request's passages: their embeddings are computed in one batch)
Screen = Callable[[str, Sequence[str]], list[bool]]


def make_retrieve(
    knowledge: Knowledge, aliases: Mapping[str, ModelAlias], screen: Screen | None = None
) -> ChatStep:
    """Retrieval for chat. Passages are untrusted input (a document author may write to the
    model): ``screen`` drops, and the decision records, any that carries instructions. The
    context message's index goes into ``ctx.retrieved``, so the filters treat it as
    documents, not as the operator's system prompt. How the answer shows the citations
    (``ctx.citing``): the request's ``enclave.citations``, else the alias's, else the field."""

    async def retrieve(ctx: ChatContext) -> ChatContext:
        body, names = ctx.body, _collections(ctx)
        alias = aliases.get(body.model)
        if alias is not None:
            ctx = ctx.evolve(alias=body.model, citing=alias.citations)
            body = body.model_copy(update={"model": alias.model})
            names = [*alias.collections, *names]
        if body.enclave is not None and body.enclave.citations is not None:
            ctx = ctx.evolve(citing=body.enclave.citations)
        question = next((m.text() for m in reversed(body.messages) if m.role == "user"), "")
        question = question[:MAX_QUERY_CHARS]  # what is searched for; the model sees it all
        if not names or not question:
            return ctx.evolve(body=body) if body is not ctx.body else ctx
        kb = await knowledge.get()
        principal = ctx.principal
        tenant = principal.tenant

        def search() -> tuple[list[Passage], int]:
            found = kb.retrieve(question, names, principal)
            carrying = screen(tenant, [p.text for p in found]) if screen else [False] * len(found)
            kept = [p for p, bad in zip(found, carrying, strict=True) if not bad]
            return kept, len(found) - len(kept)

        passages, dropped = await asyncio.to_thread(search)
        limit = knowledge.settings.context_max_chars
        decisions = {**ctx.decisions}
        if dropped:
            decisions["retrieval_dropped"] = f"{dropped}:injection"
        context = ChatMessage.model_validate(context_message(passages, max_chars=limit))
        cited = tuple(dict(c) for c in citations(passages, max_chars=limit))
        decisions["retrieval"] = ",".join(names) + f":{len(cited)}"
        return ctx.evolve(
            body=body.model_copy(update={"messages": [context, *body.messages]}),
            citations=cited,
            retrieved=frozenset({0}),
            decisions=decisions,
        )

    return retrieve


def knowledge_routes(
    knowledge: Knowledge, authenticate: Step, audit: RequestAudit | None = None
) -> list[Route]:
    recorder = audit if audit is not None else RequestAudit(None)  # None: records nothing

    async def retrieve(request: Request) -> Response:
        async with recorder.opened_durable("/v1/retrieve") as call:
            call.principal = principal = await caller(authenticate, request)
            req = RetrieveRequest.model_validate(await read_json(request, BODY_LIMIT))
            call.decisions["retrieval"] = ",".join(req.collections)
            kb = await knowledge.get()
            work = asyncio.to_thread(kb.retrieve, req.query, req.collections, principal, req.top_k)
            passages = await unless_disconnected(request, work)
            call.decisions["retrieval"] += f":{len(passages)}"
            return json_response(RetrieveResponse.of(passages).model_dump(mode="json"))

    async def embeddings(request: Request) -> Response:
        async with recorder.opened_durable("/v1/embeddings") as call:
            call.principal = principal = await caller(authenticate, request)
            rbac.require(principal, rbac.CHAT)
            req = EmbeddingRequest.model_validate(await read_json(request, BODY_LIMIT))
            call.model = req.model
            kb = await knowledge.get()
            body: dict[str, Any] = await unless_disconnected(
                request, create_embeddings(kb.embedder, req)
            )
            call.tokens_in = body["usage"]["prompt_tokens"]
            return json_response(body)

    async def upload(request: Request) -> Response:
        """Answered: one admin record ("knowledge.upload"); refused: one request record."""
        started, principal = time.perf_counter(), None
        try:
            principal = await caller(authenticate, request)
            return await ingest(request, principal)
        except Exception as exc:
            refused = map_exception(exc)
            with suppress(AuditUnavailableError):  # the refusal's own error stands
                await recorder.endpoint_durable(
                    principal,
                    UPLOAD_ROUTE,
                    status=refused.status_code,
                    latency_s=time.perf_counter() - started,
                    error=refused.message,
                    decisions={"collection": request.path_params["collection"]},
                )
            raise

    async def ingest(request: Request, principal: Principal) -> Response:
        filename = request.query_params.get("filename", "")
        if not filename or not supported(filename):
            raise InvalidRequestError(
                f"Name a supported file: ?filename=report.pdf (not {filename[:80]!r}).",
                param="filename",
            )
        collection = request.path_params["collection"]
        kb = await knowledge.get()
        kb.writable(principal, collection)  # 403 before the body is read
        data = await read_body(request, knowledge.settings.max_upload_bytes)
        summary = await asyncio.to_thread(kb.ingest_upload, principal, filename, data, collection)
        # durable before the answer: a crash must not lose a committed upload's record
        target = {"target": f"{collection}/{filename}"}
        await recorder.admin_durable(principal, "knowledge.upload", target)
        return json_response(
            {
                "files": summary.files,
                "chunks": summary.chunks,
                "added": summary.added,
                "replaced": summary.replaced,
                "unchanged": summary.unchanged,
                "failed": [{"source": f.source, "reason": f.reason} for f in summary.failed],
            },
            201 if summary.added or summary.replaced else 200,
        )

    return [
        Route("/v1/retrieve", retrieve, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route(UPLOAD_ROUTE, upload, methods=["PUT"]),
    ]
