"""The knowledge base facade: what the gateway, the ingest URL and the CLI call.

Everything here is synchronous (LanceDB's sync API, CPU-bound embedding). Request
handlers call it from a worker thread (``await anyio.to_thread.run_sync(...)``);
the CLI calls it directly. One instance per process: it holds the embedder (a
loaded model) and a cache of opened tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path, PurePath

from functions.errors import InvalidRequestError, RequestTooLargeError
from functions.knowledge.access import (
    Caller,
    CollectionAccess,
    TenantAccess,
    readable,
    writable,
)
from functions.knowledge.embeddings import Embedder, create_embedder
from functions.knowledge.fanout import DocumentMapper, ProcessPoolMapper, available_cores
from functions.knowledge.ingest import (
    Ingestor,
    IngestSummary,
    Progress,
    SourceItem,
    walk,
)
from functions.knowledge.parsers import supported
from functions.knowledge.retrieve import Passage, hybrid_search
from functions.knowledge.settings import KnowledgeSettings
from functions.knowledge.store import CollectionRef, DocumentInfo, Store


class KnowledgeBase:
    """Ingest into and retrieve from the LanceDB database that ``settings.uri`` names.

    ``embedder`` defaults to the one ``settings.embedder`` names; ``access`` to
    :class:`~functions.knowledge.access.TenantAccess`.
    """

    def __init__(
        self,
        settings: KnowledgeSettings,
        embedder: Embedder | None = None,
        access: CollectionAccess | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder or create_embedder(settings)
        # a pool's workers build their embedders from settings: only then may they
        # stand in for this one (an embedder given here embeds in this process)
        self._pool_embeds_alike = embedder is None
        self.access: CollectionAccess = access or TenantAccess()
        self.store = Store(settings.uri, settings.storage_options(), settings.refresh_interval)

    # -- ingestion (operator or admin; never inside a chat request) ---------------

    def ingest(
        self,
        paths: Iterable[str | Path],
        collection: str,
        tenant: str = "default",
        progress: Progress | None = None,
        root: str | Path = ".",
        mapper: DocumentMapper | None = None,
    ) -> IngestSummary:
        """Ingest files and folders into ``tenant/collection`` (see :mod:`.ingest`).

        Sources are named relative to ``root`` (see :func:`.ingest.walk`). Documents
        are embedded by ``mapper`` (e.g. Modal containers), else by a pool of
        ``settings.ingest_workers`` processes (see :mod:`.fanout`).
        """
        items, skipped, missing = walk(paths, root)
        ref = CollectionRef(tenant, collection)
        ingestor = Ingestor(self.store, self.embedder, self.settings, mapper or self._pool())
        return ingestor.run(ref, items, progress, skipped=skipped, failed=missing)

    def _pool(self) -> DocumentMapper | None:
        workers = self.settings.ingest_workers or available_cores()
        if workers < 2 or not self._pool_embeds_alike:
            return None
        return ProcessPoolMapper(self.settings, workers, local=self.embedder)

    def ingest_upload(
        self,
        caller: Caller,
        filename: str,
        data: bytes,
        collection: str,
        progress: Progress | None = None,
    ) -> IngestSummary:
        """Ingest one uploaded document, if ``caller`` may write the collection (else 403).

        Its source is ``upload/<filename>``; uploading the same name again replaces it.
        """
        ref = writable(self.access, caller, collection)
        name = PurePath(filename.replace("\\", "/")).name
        if not name or not supported(name):
            raise InvalidRequestError(f"Unsupported document type: {filename!r}.", param="file")
        if len(data) > self.settings.max_upload_bytes:
            raise RequestTooLargeError("The document is larger than the upload limit.")
        item = SourceItem(f"upload/{name}", lambda: data)
        return Ingestor(self.store, self.embedder, self.settings).run(ref, [item], progress)

    def writable(self, caller: Caller, collection: str) -> CollectionRef:
        """``collection`` resolved for ``caller``; 403 unless the caller may ingest into it.

        For checking before an upload's body is read; :meth:`ingest_upload` checks again.
        """
        return writable(self.access, caller, collection)

    # -- documents (operator) -----------------------------------------------------

    def collections(self, tenant: str = "default") -> list[str]:
        return self.store.collections(tenant)

    def list_documents(self, collection: str, tenant: str = "default") -> list[DocumentInfo]:
        ref = CollectionRef(tenant, collection)
        self.store.require(ref)
        return sorted(self.store.documents(ref).values(), key=lambda d: d.source)

    def delete_document(self, collection: str, source: str, tenant: str = "default") -> int:
        """Delete one document's chunks (one commit); returns how many were deleted."""
        return self.store.delete_documents(CollectionRef(tenant, collection), [source])

    def drop_collection(self, collection: str, tenant: str = "default") -> None:
        self.store.drop(CollectionRef(tenant, collection))

    # -- retrieval (request path: no index building, no model loading) -----------

    def retrieve(
        self,
        query: str,
        collections: Sequence[str],
        caller: Caller,
        top_k: int | None = None,
    ) -> list[Passage]:
        """The best passages for ``query`` from ``collections`` that ``caller`` may read.

        Raises PermissionDeniedError (403) before searching anything if one of the
        collections is not readable, CollectionNotFoundError (404) if one does not
        exist in a readable namespace, EmbeddingMismatchError (400) if one was built
        with another embedding model.
        """
        refs = readable(self.access, caller, collections)
        tables = [(ref, self.store.require(ref)) for ref in refs]
        for ref, _ in tables:
            self.store.check_model(ref, self.embedder.name, self.embedder.dim)
        vector = self.embedder.embed([query], "query")[0]
        k = top_k or self.settings.top_k
        depth = max(self.settings.candidates, k)
        return hybrid_search(tables, query, vector, top_k=k, depth=depth)
