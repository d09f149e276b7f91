"""The ingestion job: walk, parse, chunk, embed, then write each collection in one commit.

An ingest runs in three phases, reported through an optional progress callback:

    read     each file: read, hash, skip if unchanged, parse, chunk   (done/total = files)
    embed    every new chunk, in batches across files                 (done/total = chunks)
    commit   one merge_insert (or create_table), then index upkeep    (once)

With a fan-out mapper (:mod:`.fanout`: a process pool, or Modal containers) only
reading and hashing happen here; each changed document is parsed, chunked and
embedded by the mapper, and ``embed`` counts documents instead of chunks.

Re-ingesting a file whose SHA-256 is unchanged does nothing; a changed file
replaces its old chunks. A file that can't be read or parsed is recorded in
:attr:`IngestSummary.failed` and the others go on; an embedding failure, an
interrupt or any other exception aborts the whole ingest *before* the commit, so
the collection stays exactly as it was. The whole run is held in memory until
the commit (about 2.5 KB a chunk with 384 dimensions).

Index building and optimisation happen here only, never on a request path.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Literal

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]

from functions.errors import EmbeddingMismatchError
from functions.knowledge.chunking import Chunk, chunk_document
from functions.knowledge.embeddings import Embedder
from functions.knowledge.fanout import DocumentMapper, DocumentTask, embedding_input
from functions.knowledge.parsers import ParseError, parse, supported
from functions.knowledge.settings import KnowledgeSettings
from functions.knowledge.store import CollectionRef, DocumentInfo, Store, chunk_schema

Phase = Literal["read", "embed", "commit"]


@dataclass(frozen=True, slots=True)
class IngestProgress:
    phase: Phase
    done: int
    total: int
    source: str = ""


Progress = Callable[[IngestProgress], None]


@dataclass(frozen=True, slots=True)
class SourceItem:
    """One document to ingest: its source name (the citation) and how to read it."""

    source: str
    read: Callable[[], bytes]


@dataclass(frozen=True, slots=True)
class Failure:
    source: str
    reason: str


@dataclass(frozen=True, slots=True)
class IngestSummary:
    """What an ingest did. ``files`` counts supported files looked at."""

    collection: str
    files: int = 0
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    chunks: int = 0
    skipped: tuple[str, ...] = ()
    failed: tuple[Failure, ...] = ()
    version: int | None = None  # the table version written, None if nothing was
    seconds: float = 0.0

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds if self.seconds > 0 else 0.0


def source_name(path: Path, root: Path, top: Path | None = None) -> str:
    """``path`` relative to ``root`` if it lies under it, else relative to the folder
    that holds ``top`` (the argument it was found under; ``path`` itself if None), with
    ``/``: a citation names a document, never where the server keeps it. Paths are made
    absolute, not resolved: a link inside the folder is named where it lies."""
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        base = Path(os.path.abspath(top or path)).parent
        try:
            return absolute.relative_to(base).as_posix()
        except ValueError:  # ``top`` does not hold ``path``: its name alone
            return absolute.name


def public_source(source: str) -> str:
    """A stored source as a citation may show it: an absolute path (stored by an older
    ingest, from outside its working directory) is reduced to its file name."""
    posix = source.replace("\\", "/")
    if posix.startswith("/") or PureWindowsPath(source).drive:
        return PurePosixPath(posix).name
    return source


def walk(
    paths: Iterable[str | Path], root: str | Path = "."
) -> tuple[list[SourceItem], list[str], list[Failure]]:
    """Files under ``paths`` (folders recursively, hidden entries skipped), in order.

    Returns (supported files, unsupported files, paths that don't exist). A file's
    source name — its identity for re-ingestion and its citation — is its path
    relative to ``root`` (the CLI passes the working directory), e.g.
    ``docs/leave.md`` however the argument was spelt; outside ``root``, relative to the
    folder that holds the argument (``/tmp/x/docs`` gives ``docs/leave.md``).
    """
    items: dict[str, SourceItem] = {}
    origins: dict[str, Path] = {}  # source name -> the file it came from
    skipped: list[str] = []
    missing: list[Failure] = []
    for top in map(Path, paths):
        if not top.exists():
            missing.append(Failure(top.as_posix(), "no such file or directory"))
            continue
        found = [top] if top.is_file() else sorted(_files(top))
        for path in found:
            source = source_name(path, Path(root), top)
            if not supported(source):
                skipped.append(source)
            elif source not in items:
                items[source] = SourceItem(source, path.read_bytes)
                origins[source] = Path(os.path.abspath(path))
            elif origins[source] != Path(os.path.abspath(path)):  # never one over the other
                why = f"another file is also named {source}: ingest from a common parent folder"
                missing.append(Failure(path.as_posix(), why))
    return list(items.values()), skipped, missing


def _files(folder: Path) -> Iterator[Path]:
    for path in folder.rglob("*"):
        hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
        if path.is_file() and not hidden:
            yield path


@dataclass(slots=True)
class _Prepared:
    source: str
    title: str
    content_hash: str
    chunks: list[Chunk]


@dataclass(slots=True)
class _Tally:
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    failed: list[Failure] = field(default_factory=list)


class Ingestor:
    """One ingest. With a ``mapper`` (see :mod:`.fanout`), documents are parsed and
    embedded by it, in parallel, instead of here; the commit is made here either way."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        settings: KnowledgeSettings,
        mapper: DocumentMapper | None = None,
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._settings = settings
        self._mapper = mapper

    def run(
        self,
        ref: CollectionRef,
        items: Sequence[SourceItem],
        progress: Progress | None = None,
        *,
        skipped: Sequence[str] = (),
        failed: Sequence[Failure] = (),
    ) -> IngestSummary:
        started = time.perf_counter()
        notify = progress or (lambda _: None)
        self._store.check_model(ref, self._embedder.name, self._embedder.dim)
        tally = _Tally(failed=list(failed))
        known = self._store.documents(ref)
        if self._mapper is None:
            prepared = self._prepare(known, items, tally, notify)
            rows = self._embed(prepared, notify)
        else:
            prepared, vectors = self._fan_out(self._mapper, known, items, tally, notify)
            rows = self._rows(prepared, vectors)
        notify(IngestProgress("commit", 0, 1))
        # every written source, not only those known above: another writer may have
        # added one since, and the commit must leave each exactly as written here
        version = self._store.commit(ref, rows, {p.source for p in prepared})
        self._store.maintain(
            ref,
            tokenizer=self._settings.fts_tokenizer,
            index_threshold=self._settings.index_threshold,
            changed=version is not None,
        )
        notify(IngestProgress("commit", 1, 1))
        return IngestSummary(
            collection=str(ref),
            files=len(items),
            added=tally.added,
            replaced=tally.replaced,
            unchanged=tally.unchanged,
            chunks=rows.num_rows,
            skipped=tuple(skipped),
            failed=tuple(tally.failed),
            version=version,
            seconds=time.perf_counter() - started,
        )

    def _prepare(
        self,
        known: Mapping[str, DocumentInfo],
        items: Sequence[SourceItem],
        tally: _Tally,
        notify: Progress,
    ) -> list[_Prepared]:
        prepared: list[_Prepared] = []
        for done, item in enumerate(items, start=1):
            notify(IngestProgress("read", done - 1, len(items), item.source))
            try:
                data = item.read()
                digest = _sha256(data)
                previous = known.get(item.source)
                if previous is not None and previous.content_hash == digest:
                    tally.unchanged += 1
                    continue
                document = parse(item.source, data)
                chunks = chunk_document(
                    document, self._settings.chunk_size, self._settings.chunk_overlap
                )
                if not chunks:
                    raise ParseError("no text found")
            except (OSError, ParseError) as exc:
                tally.failed.append(Failure(item.source, str(exc) or type(exc).__name__))
                continue
            prepared.append(_Prepared(item.source, document.title, digest, chunks))
            tally.added += previous is None
            tally.replaced += previous is not None
        notify(IngestProgress("read", len(items), len(items)))
        return prepared

    def _embed(self, prepared: Sequence[_Prepared], notify: Progress) -> pa.Table:
        texts = [embedding_input(p.title, c) for p in prepared for c in p.chunks]
        batch = self._settings.embedding_batch_size
        vectors: list[np.ndarray] = []
        for start in range(0, len(texts), batch):
            notify(IngestProgress("embed", start, len(texts)))
            vectors.append(self._embedder.embed(texts[start : start + batch], "passage"))
        notify(IngestProgress("embed", len(texts), len(texts)))
        return self._rows(prepared, vectors)

    def _fan_out(
        self,
        mapper: DocumentMapper,
        known: Mapping[str, DocumentInfo],
        items: Sequence[SourceItem],
        tally: _Tally,
        notify: Progress,
    ) -> tuple[list[_Prepared], list[np.ndarray]]:
        """Read and hash here, parse and embed through ``mapper`` (progress: documents)."""
        tasks: list[DocumentTask] = []
        for done, item in enumerate(items):
            notify(IngestProgress("read", done, len(items), item.source))
            try:
                data = item.read()
            except OSError as exc:
                tally.failed.append(Failure(item.source, str(exc) or type(exc).__name__))
                continue
            previous = known.get(item.source)
            if previous is not None and previous.content_hash == _sha256(data):
                tally.unchanged += 1
                continue
            settings = self._settings
            tasks.append(
                DocumentTask(
                    item.source,
                    data,
                    settings.chunk_size,
                    settings.chunk_overlap,
                    settings.embedding_batch_size,
                )
            )
        notify(IngestProgress("read", len(items), len(items)))
        prepared: list[_Prepared] = []
        vectors: list[np.ndarray] = []
        notify(IngestProgress("embed", 0, len(tasks)))
        for done, result in enumerate(mapper.map(tasks), start=1):
            notify(IngestProgress("embed", done, len(tasks), result.source))
            if result.error is not None:
                tally.failed.append(Failure(result.source, result.error))
                continue
            if (result.embedder, result.vectors.shape[1]) != (
                self._embedder.name,
                self._embedder.dim,
            ):
                raise EmbeddingMismatchError(
                    f"A worker embedded {result.source} with {result.embedder}, "
                    f"not {self._embedder.name}: configure the workers like this process."
                )
            prepared.append(
                _Prepared(result.source, result.title, result.content_hash, list(result.chunks))
            )
            vectors.append(result.vectors)
            tally.added += result.source not in known
            tally.replaced += result.source in known
        return prepared, vectors

    def _rows(self, prepared: Sequence[_Prepared], vectors: Sequence[np.ndarray]) -> pa.Table:
        schema = chunk_schema(self._embedder.name, self._embedder.dim)
        columns = _columns(prepared)
        flat = np.concatenate(vectors) if vectors else np.empty((0, self._embedder.dim))
        columns["vector"] = pa.FixedSizeListArray.from_arrays(
            pa.array(flat.astype(np.float32).ravel()), self._embedder.dim
        )
        return pa.table(columns, schema=schema)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _columns(prepared: Sequence[_Prepared]) -> dict[str, list[object] | pa.Array]:
    columns: dict[str, list[object] | pa.Array] = {
        name: []
        for name in (
            "id",
            "source",
            "title",
            "section",
            "page",
            "location",
            "position",
            "text",
            "content_hash",
        )
    }
    for doc in prepared:
        key = hashlib.sha256(doc.source.encode()).hexdigest()[:16]
        for chunk in doc.chunks:
            values = (
                f"{key}:{chunk.position}",
                doc.source,
                doc.title,
                chunk.section,
                chunk.page,
                chunk.location,
                chunk.position,
                chunk.text,
                doc.content_hash,
            )
            for column, value in zip(columns, values, strict=True):
                columns[column].append(value)
    return columns
