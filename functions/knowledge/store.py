"""LanceDB storage: one table per (tenant, collection), written in single commits.

Why one table per collection rather than one shared table with tenant/collection
columns: isolation is structural — a query only ever opens the tables the caller
was allowed to read (the access check runs before any search, so filtering is
never a post-filter), a guessed collection name is looked up in the caller's own
tenant namespace, a collection can be dropped as a whole, and each collection
records the embedding model and dimension it was built with in its schema
metadata (``enclave.embedder``, ``enclave.dim``) and refuses vectors of another
model. Per-collection tables also keep vector indexes small; a collection gets one
only above ``index_threshold`` rows (flat search is exact and fast below it).

Atomicity: an ingest writes each collection in **one** LanceDB commit — a
``merge_insert`` keyed on chunk id that updates, inserts and deletes the replaced
documents' leftover chunks together (or ``create_table`` for a new collection).
Nothing is written before that commit, so a failed or interrupted ingest leaves
the table at its previous version, or leaves no table at all.

Concurrent writers (two CLI ingests, several gateways taking uploads) are safe on a
local disk and on S3-compatible buckets alike: Lance publishes a version by writing
its manifest with a conditional PUT (``If-None-Match: *``; see
:meth:`~functions.knowledge.settings.KnowledgeSettings.storage_options`), so exactly
one writer gets each version and the loser rebases its transaction onto the winner's
and tries again (merge_insert does this itself). A commit is idempotent — chunk ids
are derived from the source and position, and every chunk of a written source that
the rows do not carry is deleted in the same commit — so whatever order two writers
land in, each source ends up exactly as its last writer wrote it. Two writers racing
to *create* a collection: one creates it, the other merges into it.

Table names are ``{tenant}__{collection}``; both names must match :data:`NAME`,
which has no ``__``, so a name can't be forged to reach another tenant's table.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import lancedb
import pyarrow as pa  # type: ignore[import-untyped]
from lancedb.index import FTS, HnswSq
from lancedb.table import Table

from functions.errors import CollectionNotFoundError as CollectionNotFoundError
from functions.errors import EmbeddingMismatchError as EmbeddingMismatchError
from functions.errors import InvalidRequestError, StorageUnavailableError
from functions.knowledge.names import MAX_NAME as MAX_NAME
from functions.knowledge.names import NAME as NAME

SEPARATOR = "__"
META_EMBEDDER = b"enclave.embedder"
META_DIM = b"enclave.dim"
T = TypeVar("T")
COMMIT_ATTEMPTS = 5  # a commit is idempotent (see above): trying again is always safe
PASSAGE_COLUMNS = ["id", "source", "title", "section", "page", "location", "position", "text"]


def check_name(kind: str, value: str) -> str:
    if len(value) > MAX_NAME or not NAME.match(value):
        raise InvalidRequestError(
            f"Invalid {kind} name {value[:80]!r}: use letters, digits, single '-' or '_' "
            f"between them, at most {MAX_NAME} characters.",
            param=kind,
        )
    return value


@dataclass(frozen=True, slots=True, order=True)
class CollectionRef:
    """A collection within a tenant's namespace; written ``tenant/name``."""

    tenant: str
    name: str

    def __post_init__(self) -> None:
        check_name("tenant", self.tenant)
        check_name("collection", self.name)

    @classmethod
    def parse(cls, text: str, tenant: str) -> CollectionRef:
        """``"name"`` is in ``tenant``'s namespace; ``"other/name"`` names another tenant's."""
        owner, _, name = text.rpartition("/")
        return cls(owner or tenant, name)

    @property
    def table_name(self) -> str:
        return f"{self.tenant}{SEPARATOR}{self.name}"

    def __str__(self) -> str:
        return f"{self.tenant}/{self.name}"


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    source: str
    title: str
    content_hash: str
    chunks: int


def chunk_schema(embedder_name: str, dim: int) -> pa.Schema:
    fields = [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("title", pa.string()),
        pa.field("section", pa.string()),
        pa.field("page", pa.int32()),
        pa.field("location", pa.string()),
        pa.field("position", pa.int32()),
        pa.field("text", pa.string()),
        pa.field("content_hash", pa.string()),
        pa.field("vector", pa.list_(pa.float32(), dim)),
    ]
    return pa.schema(fields, metadata={META_EMBEDDER: embedder_name, META_DIM: str(dim)})


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sources_filter(sources: Collection[str]) -> str:
    return f"source IN ({', '.join(sql_string(s) for s in sorted(sources))})"


class Store:
    """The LanceDB database at ``uri`` (a directory, a Volume path or ``s3://…``)."""

    def __init__(
        self,
        uri: str,
        storage_options: dict[str, str] | None = None,
        refresh: timedelta = timedelta(0),
    ) -> None:
        self._db = lancedb.connect(
            uri, storage_options=storage_options or None, read_consistency_interval=refresh
        )
        self._tables: dict[str, Table] = {}

    def _names(self) -> Iterator[str]:
        token: str | None = None
        while True:
            page = self._db.list_tables(page_token=token, limit=1000)
            yield from page.tables
            token = page.page_token
            if not token:
                return

    def open(self, ref: CollectionRef) -> Table | None:
        """The collection's table, or None if it does not exist."""
        name = ref.table_name
        if name not in self._tables:
            try:
                self._tables[name] = self._db.open_table(name)
            except ValueError:  # lancedb's type for "not found", and for worse
                if name in set(self._names()):
                    raise
                return None
        return self._tables[name]

    def require(self, ref: CollectionRef) -> Table:
        table = self.open(ref)
        if table is None:
            raise CollectionNotFoundError(f"Collection {str(ref)!r} does not exist.")
        return table

    def collections(self, tenant: str) -> list[str]:
        prefix = check_name("tenant", tenant) + SEPARATOR
        return sorted(n.removeprefix(prefix) for n in self._names() if n.startswith(prefix))

    @staticmethod
    def model_of(table: Table) -> tuple[str, int]:
        meta = table.schema.metadata or {}
        return meta.get(META_EMBEDDER, b"").decode(), int(meta.get(META_DIM, b"0"))

    def check_model(self, ref: CollectionRef, embedder_name: str, dim: int) -> None:
        table = self.open(ref)
        if table is not None and self.model_of(table) != (embedder_name, dim):
            built, built_dim = self.model_of(table)
            raise EmbeddingMismatchError(
                f"Collection {str(ref)!r} was built with {built} ({built_dim} dimensions), "
                f"not {embedder_name} ({dim}); re-ingest it into a new collection."
            )

    def documents(self, ref: CollectionRef) -> dict[str, DocumentInfo]:
        table = self.open(ref)
        if table is None:
            return {}
        rows = table.search().select(["source", "title", "content_hash"]).limit(None).to_arrow()
        counted = rows.group_by(["source", "title", "content_hash"]).aggregate(
            [("source", "count")]
        )
        return {
            row["source"]: DocumentInfo(
                row["source"], row["title"], row["content_hash"], row["source_count"]
            )
            for row in counted.to_pylist()
        }

    def commit(self, ref: CollectionRef, rows: pa.Table, sources: Collection[str]) -> int | None:
        """Make ``sources`` hold exactly their chunks in ``rows`` (none: deleted), in one commit.

        Returns the table's new version, or None when there was nothing to write.
        Lance retries a commit that lost a race itself; what it still gives up on
        (a storage error, or a lost race to create the collection) is tried again
        here, a bounded number of times, from the latest version.
        """
        return self._retrying(ref, lambda: self._commit_once(ref, rows, sources))

    def _retrying(self, ref: CollectionRef, write: Callable[[], T]) -> T:
        """``write()``, tried again from the latest version if Lance gives up on it.

        Only for idempotent writes (commits as above, index upkeep): a retry after an
        attempt that in fact landed changes nothing.
        """
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                return write()
            except (ValueError, RuntimeError, OSError) as exc:
                self._tables.pop(ref.table_name, None)  # reopen at the latest version
                if attempt == COMMIT_ATTEMPTS:  # a 503 to retry, not a 500; no path in it
                    raise StorageUnavailableError(
                        f"The knowledge base could not write collection {str(ref)!r} "
                        f"({COMMIT_ATTEMPTS} attempts); the write is safe to try again."
                    ) from exc
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _commit_once(
        self, ref: CollectionRef, rows: pa.Table, sources: Collection[str]
    ) -> int | None:
        table = self.open(ref)
        if table is None:
            if rows.num_rows == 0:
                return None
            # if another writer creates it first this raises, and the retry merges
            table = self._db.create_table(ref.table_name, data=rows, schema=rows.schema)
            self._tables[ref.table_name] = table
            return int(table.version)
        if rows.num_rows == 0 and not sources:
            return None
        if rows.num_rows == 0:
            table.delete(sources_filter(sources))
        else:
            merge = table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all()
            if sources:
                merge = merge.when_not_matched_by_source_delete(sources_filter(sources))
            return int(merge.execute(rows).version)
        return int(table.version)

    def delete_documents(self, ref: CollectionRef, sources: Collection[str]) -> int:
        """Delete every chunk of ``sources`` in one commit; returns chunks deleted."""
        table = self.require(ref)
        where = sources_filter(sources)
        count = table.count_rows(where)
        if count:
            table.delete(where)
        return count

    def drop(self, ref: CollectionRef) -> None:
        self.require(ref)
        self._db.drop_table(ref.table_name)
        self._tables.pop(ref.table_name, None)

    def maintain(
        self, ref: CollectionRef, *, tokenizer: str, index_threshold: int, changed: bool
    ) -> None:
        """Build missing indexes and fold new rows into existing ones (ingestion only).

        Full text: an FTS index on ``text`` (``icu``, the default: ICU dictionary word
        segmentation for Chinese, stemming and stop words for English; ``ngram``:
        character 2-grams, better for Chinese alone, noisy for English, 5x larger).
        Vectors: IVF_HNSW_SQ (cosine) once the table has ``index_threshold`` rows.
        Missing indexes are built even when nothing ``changed`` (an earlier run may
        have stopped after its commit); ``optimize`` runs only after a change.
        """
        self._retrying(
            ref, lambda: self._maintain_once(ref, tokenizer, index_threshold, changed=changed)
        )

    def _maintain_once(
        self, ref: CollectionRef, tokenizer: str, index_threshold: int, *, changed: bool
    ) -> None:
        # another writer may be optimising or indexing the same table: a preempted
        # attempt starts over from the latest version, which may need less
        table = self.open(ref)
        if table is None:
            return
        indexed = {column for cfg in table.list_indices() for column in cfg.columns}
        if "text" not in indexed:
            table.create_index("text", config=fts_config(tokenizer))
        if "vector" not in indexed and table.count_rows() >= index_threshold:
            table.create_index("vector", config=HnswSq(distance_type="cosine"))
        elif changed:
            table.optimize()


def fts_config(tokenizer: str) -> FTS:
    if tokenizer == "ngram":
        return FTS(
            base_tokenizer="ngram",
            ngram_min_length=2,
            ngram_max_length=2,
            stem=False,
            remove_stop_words=False,
        )
    return FTS(base_tokenizer=tokenizer, stem=True, remove_stop_words=True)
