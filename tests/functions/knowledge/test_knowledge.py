"""The knowledge base end to end on real files, the real model and a real LanceDB."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from functions.errors import PermissionDeniedError
from functions.knowledge import (
    CollectionNotFoundError,
    CollectionRef,
    IngestProgress,
    KnowledgeBase,
    citations,
    context_message,
)
from tests.functions.knowledge.conftest import Caller
from tests.functions.knowledge.corpus import DOCS
from tests.functions.knowledge.files import make_docx, make_pdf

MEMBER = Caller()


def write_library(root: Path) -> Path:
    """Six real files, Chinese and English, one per format (docx twice)."""
    (root / "lib").mkdir()
    (root / "lib/leave-policy.md").write_text(DOCS["en/leave-policy.md"], encoding="utf-8")
    (root / "lib/数据安全.txt").write_text(DOCS["zh/数据安全.txt"], encoding="utf-8")
    (root / "lib/espresso.html").write_text(DOCS["en/espresso-machine.html"], encoding="utf-8")
    (root / "lib/大熊猫.pdf").write_bytes(
        make_pdf(
            [
                ["大熊猫的食物百分之九十九是竹子，成年大熊猫每天要吃十二到三十八公斤竹子。"],
                ["野生大熊猫主要生活在中国四川、陕西和甘肃的山区，数量为一千八百六十四只。"],
            ],
            title="大熊猫简介",
        )
    )
    (root / "lib/greenhouse.docx").write_bytes(
        make_docx(
            "Greenhouse tomatoes",
            [
                ("Pollination", ["Shake the trusses at midday: indoors there are no bees."]),
                ("Problems", ["Blossom end rot is caused by a lack of calcium."]),
            ],
        )
    )
    (root / "lib/绿茶.docx").write_bytes(
        make_docx("绿茶冲泡", [("冲泡", ["冲泡龙井时水温以八十摄氏度为宜，第一泡浸泡一分钟。"])])
    )
    (root / "lib/photo.png").write_bytes(b"\x89PNG")
    (root / "lib/broken.pdf").write_bytes(b"%PDF-1.4 not really")
    return root / "lib"


@pytest.fixture
def library(tmp_path: Path) -> Path:
    return write_library(tmp_path)


@pytest.mark.parametrize(
    ("question", "source", "location"),
    [
        ("How many days of paid holiday do staff get?", "lib/leave-policy.md", "Annual leave"),
        ("可以用微信传机密数据吗？", "lib/数据安全.txt", ""),
        ("How often should I descale the espresso machine?", "lib/espresso.html", "Descaling"),
        ("大熊猫每天吃多少竹子？", "lib/大熊猫.pdf", "p. 1"),
        ("野生大熊猫有多少只？", "lib/大熊猫.pdf", "p. 2"),
        ("What causes blossom end rot?", "lib/greenhouse.docx", "Problems"),
        ("泡龙井用多少度的水？", "lib/绿茶.docx", "冲泡"),
    ],
)
def test_answers_cite_the_right_document(
    kb: KnowledgeBase, library: Path, question: str, source: str, location: str
) -> None:
    kb.ingest([library], "docs")
    top = kb.retrieve(question, ["docs"], MEMBER, top_k=3)[0]
    assert (top.source, top.location, top.collection) == (source, location, "default/docs")
    assert 0 < top.score <= 1 and top.similarity is not None


def test_summary_counts_skips_and_failures(kb: KnowledgeBase, library: Path) -> None:
    events: list[IngestProgress] = []
    summary = kb.ingest([library, "missing/dir"], "docs", progress=events.append)
    assert (summary.files, summary.added, summary.unchanged) == (7, 6, 0)
    assert summary.skipped == ("lib/photo.png",)
    reasons = {f.source: f.reason for f in summary.failed}
    assert set(reasons) == {"lib/broken.pdf", "missing/dir"} and all(reasons.values())
    assert summary.chunks == sum(d.chunks for d in kb.list_documents("docs")) > 6
    assert summary.chunks_per_s > 0
    phases = [e.phase for e in events]
    assert phases[0] == "read" and phases[-1] == "commit"
    assert events[-1].done == events[-1].total == 1
    assert [e.done for e in events if e.phase == "embed"][-1] == summary.chunks


def test_reingesting_unchanged_files_does_nothing(kb: KnowledgeBase, library: Path) -> None:
    first = kb.ingest([library], "docs")
    table = kb.store.require(CollectionRef("default", "docs"))
    version = table.version
    again = kb.ingest([library.parent / "lib"], "docs")  # same files, spelt differently
    assert (again.unchanged, again.added, again.replaced, again.chunks) == (6, 0, 0, 0)
    assert again.version is None and table.version == version
    assert table.count_rows() == first.chunks


def test_a_changed_file_replaces_its_chunks(kb: KnowledgeBase, library: Path) -> None:
    kb.ingest([library], "docs")
    before = {d.source: d for d in kb.list_documents("docs")}
    (library / "leave-policy.md").write_text("# Leave\n\nEveryone gets 40 days of leave.\n")
    summary = kb.ingest([library], "docs")
    assert (summary.replaced, summary.unchanged, summary.chunks) == (1, 5, 1)
    after = {d.source: d for d in kb.list_documents("docs")}
    assert after["lib/leave-policy.md"].chunks == 1 < before["lib/leave-policy.md"].chunks
    assert {s: d for s, d in after.items() if s != "lib/leave-policy.md"} == {
        s: d for s, d in before.items() if s != "lib/leave-policy.md"
    }
    texts = [p.text for p in kb.retrieve("How much leave?", ["docs"], MEMBER, top_k=50)]
    assert not any("25 days" in t for t in texts) and any("40 days" in t for t in texts)


def test_delete_a_document(kb: KnowledgeBase, library: Path) -> None:
    kb.ingest([library], "docs")
    assert kb.delete_document("docs", "lib/espresso.html") == 3
    assert "lib/espresso.html" not in {d.source for d in kb.list_documents("docs")}
    passages = kb.retrieve("descale the espresso machine", ["docs"], MEMBER, top_k=50)
    assert all(p.source != "lib/espresso.html" for p in passages)
    assert kb.delete_document("docs", "lib/espresso.html") == 0
    assert kb.collections() == ["docs"]
    kb.drop_collection("docs")
    assert kb.collections() == []


def test_unknown_collection_is_404(kb: KnowledgeBase) -> None:
    with pytest.raises(CollectionNotFoundError):
        kb.retrieve("anything", ["nothing-here"], MEMBER)


def test_upload_needs_a_write_role(kb: KnowledgeBase) -> None:
    data = make_pdf([["Parking is free for staff on weekends."]])
    with pytest.raises(PermissionDeniedError):
        kb.ingest_upload(MEMBER, "parking.pdf", data, "docs")
    admin = Caller(role="admin")
    summary = kb.ingest_upload(admin, "C:\\Users\\me\\parking.pdf", data, "docs")
    assert summary.added == 1
    [top] = kb.retrieve("Is parking free at weekends?", ["docs"], MEMBER, top_k=1)
    assert (top.source, top.location) == ("upload/parking.pdf", "p. 1")


def test_prompt_context_and_citations(kb: KnowledgeBase, library: Path) -> None:
    kb.ingest([library], "docs")
    passages = kb.retrieve("大熊猫每天吃多少竹子？", ["docs"], MEMBER, top_k=3)
    message = context_message(passages)
    assert message["role"] == "system"
    assert "[1] 大熊猫简介 (lib/大熊猫.pdf, p. 1)\n大熊猫的食物" in message["content"]
    cited = citations(passages)
    assert [c["index"] for c in cited] == [1, 2, 3]
    assert cited[0] == {
        "index": 1,
        "source": "lib/大熊猫.pdf",
        "title": "大熊猫简介",
        "location": "p. 1",
        "score": round(passages[0].score, 6),
    }
    short = context_message(passages, max_chars=len(message["content"]) - 1)["content"]
    assert "[3]" not in short and len(citations(passages, max_chars=len(short))) == 2


def test_queries_are_plain_text_not_syntax(kb: KnowledgeBase, library: Path) -> None:
    kb.ingest([library], "docs")
    for query in ['what\'s "leave" (policy)? AND OR -x *', "leave:days", "+++", '"', "NOT"]:
        assert kb.retrieve(query, ["docs"], MEMBER, top_k=2)


def test_a_big_collection_gets_a_vector_index_at_ingest(
    make_kb: Callable[..., KnowledgeBase], library: Path
) -> None:
    kb = make_kb(index_threshold=10)
    kb.ingest([library], "docs")
    table = kb.store.require(CollectionRef("default", "docs"))
    assert {i.index_type for i in table.list_indices()} == {"FTS", "IvfHnswSq"}
    [top] = kb.retrieve("What causes blossom end rot?", ["docs"], MEMBER, top_k=1)
    assert top.source == "lib/greenhouse.docx"


def test_retrieval_works_while_the_text_index_is_missing(
    kb: KnowledgeBase, library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kb.store, "maintain", lambda *args, **kwargs: None)  # died after commit
    kb.ingest([library], "docs")
    [top] = kb.retrieve("What causes blossom end rot?", ["docs"], MEMBER, top_k=1)
    assert top.source == "lib/greenhouse.docx"
    monkeypatch.undo()
    kb.ingest([library], "docs")  # nothing changed, but the next ingest repairs the index
    table = kb.store.require(CollectionRef("default", "docs"))
    assert {i.index_type for i in table.list_indices()} == {"FTS"}
