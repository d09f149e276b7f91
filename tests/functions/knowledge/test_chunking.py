from __future__ import annotations

import itertools

import pytest

from functions.knowledge.chunking import chunk_document, split_sentences
from functions.knowledge.parsers import Block, ParsedDocument


def test_chinese_and_english_sentence_ends() -> None:
    text = "年假十五天。需提前申请！能顺延吗？可以；但要审批。He said “stop.” Then left. Ok"
    assert split_sentences(text) == [
        "年假十五天。",
        "需提前申请！",
        "能顺延吗？",
        "可以；",
        "但要审批。",
        "He said “stop.”",
        "Then left.",
        "Ok",
    ]


def test_short_paragraphs_pack_into_one_chunk() -> None:
    doc = ParsedDocument("t", (Block("One."), Block("Two."), Block("三。"), Block("四。")))
    [chunk] = chunk_document(doc, size=100, overlap=10)
    assert chunk.text == "One. Two. 三。四。"


def test_long_chinese_paragraph_splits_at_sentences_with_overlap() -> None:
    sentence = "员工每年享有十五天带薪年假，需提前两周申请。"  # 22 characters
    doc = ParsedDocument("t", (Block(sentence * 10, section="年假"),))
    chunks = chunk_document(doc, size=100, overlap=30)
    assert len(chunks) > 2
    assert all(len(c.text) <= 100 for c in chunks)
    assert all(c.text.startswith(sentence) and c.text.endswith("。") for c in chunks)
    # the last sentence of one chunk starts the next
    assert all(b.text.startswith(a.text[-22:]) for a, b in itertools.pairwise(chunks))
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert {c.location for c in chunks} == {"年假"}


def test_chunks_never_cross_sections_or_pages() -> None:
    blocks = (
        Block("a" * 30, "S1", 1),
        Block("b" * 30, "S1", 2),
        Block("c" * 30, "S2", 2),
    )
    chunks = chunk_document(ParsedDocument("t", blocks), size=500, overlap=0)
    assert [(c.section, c.page, c.location) for c in chunks] == [
        ("S1", 1, "p. 1, S1"),
        ("S1", 2, "p. 2, S1"),
        ("S2", 2, "p. 2, S2"),
    ]


def test_an_overlong_sentence_is_cut() -> None:
    doc = ParsedDocument("t", (Block("x" * 250),))
    assert [len(c.text) for c in chunk_document(doc, size=100, overlap=20)] == [100, 100, 50]


def test_bad_overlap() -> None:
    with pytest.raises(ValueError):
        chunk_document(ParsedDocument("t", ()), size=100, overlap=100)
