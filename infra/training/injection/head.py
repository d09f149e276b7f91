"""Fit stage 2: the e5 head, the band that escalates to it, and the combination.

Called by :mod:`.train` once stage 1 is fitted and calibrated. All on e5 vectors
of what :func:`functions.filtering.semantic.stage2_input` picks, cached on disk
(:mod:`.vectors`):

1. the head: a logistic regression on the 384 e5 dimensions, fitted on the
   training split (each cell language x label weighing the same) plus the
   hand-written ordinary questions (``handwritten_ordinary.jsonl``);
2. the band the combination is fitted on: its low end is the stage-1 score above
   which :data:`ESCALATE` of the calibration split's benign texts lie (wide, for
   data); the band that ships is narrower, :data:`BAND`, chosen by :mod:`.band` so
   that few benign messages pay for an embedding;
3. the combination: a logistic regression on (stage-1 logit, head logit) over the
   calibration split's texts in that wide band, its intercept moved so that 0.5 holds the
   false-positive rate at the target in each language, on the look-alikes and on
   the ordinary questions, counted over *all* benign texts of each pool.
"""

from __future__ import annotations

import random

import numpy as np
from sklearn.linear_model import LogisticRegression

from functions.filtering.classifier import InjectionModel
from functions.filtering.injection import (
    STRONG_RULES,
    StageOne,
    combine_semantic,
    escalates,
    stage_one,
)
from functions.filtering.semantic import SemanticHead, stage2_input
from infra.training.injection.corpora import Item
from infra.training.injection.vectors import DiskVectors

HARD = 0.02  # stage-1 score from which a training text counts as hard
EASY = 300  # easy training texts sampled for the head
PER_CELL = 300  # hard ones, per language x label
SEED = 20261203
ESCALATE = 0.25  # share of benign calibration texts in the band the combination is fitted on
# The shipped band (stage-1 scores that escalate), chosen by infra/training/injection/band.py
# on the tuning pools (band_tables.txt, section 2): 3.2% (en) and 4.1% (zh) of the
# calibration split's benign texts, 4% / 0% of its ordinary questions and 1% of unseen
# reviews escalate. Its top was 0.9 until stage 1 was retrained with the second batch of
# look-alikes, which put benign texts just above it (on the tuning pools an ordinary
# question at 0.93 and a calibration text at 0.975, both cleared by stage 2; the issue's
# trains question at 0.9255). Above 0.99 stage 2 escalated a few more benign texts there
# (one English document in 60) and cleared none; no band lost an attack there (on
# documents.py's 720 calibration documents, not among those pools, a top above 0.9 lost
# one or two English attacked documents of 120: documents_tables.txt). Its low end:
# [0.15, 0.2) changed no verdict, and 0.1 gained one Chinese document for 3.6 points more
# Chinese escalation. Rerun for the stage 1 of the third batch of look-alikes (d6d42b0;
# band_tables.txt, tuning pools): 2.5% (en) and 3.5% (zh) of the calibration split's benign
# texts escalate, and no other band wins by more than one item: a low of 0.1 caught one
# more English calibration attack for one more false positive there and one more on the
# calibration look-alikes; 0.2 lost one or two English calibration attacks, a Chinese one
# of the third batch's tune split and an English calibration document for one or two
# Chinese false positives fewer; a top of 0.9 caught one more English document for one
# more false positive on the calibration split and one on its look-alikes; 0.95 gave the
# same verdicts as 0.99. Kept.
BAND = (0.15, 0.99)
TARGET_FPR = 0.015
POOL_FPR = {"look-alike": 0.03, "ordinary": 0.0}
LOOK_ALIKES = {"benign", "hard-negative", "v1-en", "document", "ordinary"}
# hand-written hard negatives: always in the head's training texts
HARD_FAMILIES = {"hard-negative", "hard_negative", "v1-en", "ordinary"}


def firsts(model: InjectionModel, items: list[Item]) -> list[StageOne]:
    """Stage 1 as the head was fitted on it: long texts read whole, in windows (reading
    them by segments came later, tuned on its own: :mod:`.documents`)."""
    return [stage_one(str(it["text"]), model=model, segmented=False) for it in items]


def vectors_of(store: DiskVectors, model: InjectionModel, items: list[Item]) -> np.ndarray:
    """The head is fitted on 512-character windows (no byte budget); the gateway embeds
    :data:`~functions.filtering.semantic.EMBED_BYTES` (measured by ``band.py``)."""
    return store.embed([stage2_input(str(it["text"]), model) for it in items], progress=True)


def balanced_weights(items: list[Item]) -> np.ndarray:
    """Each cell language x label weighs the same in total."""
    y = np.array([int(str(it["label"])) for it in items])
    zh = np.array([it["lang"] == "zh" for it in items])
    w = np.ones(len(items))
    for label in (0, 1):
        for lang in (False, True):
            cell = (y == label) & (zh == lang)
            if cell.any():
                w[cell] = len(items) / 4 / cell.sum()
    return w


def fit_head(x: np.ndarray, items: list[Item], c: float) -> tuple[np.ndarray, float]:
    y = np.array([int(str(it["label"])) for it in items])
    clf = LogisticRegression(C=c, max_iter=3000, random_state=0)
    clf.fit(x, y, sample_weight=balanced_weights(items))
    return clf.coef_[0].astype(np.float16), float(clf.intercept_[0])


def band_low(cal: list[Item], first: list[StageOne]) -> float:
    benign = np.array([f.score.score for f, it in zip(first, cal, strict=True) if not it["label"]])
    return float(np.quantile(benign, 1 - ESCALATE))


def pools(cal: list[Item]) -> dict[str, np.ndarray]:
    return {
        "en": np.array([it["lang"] == "en" for it in cal]),
        "zh": np.array([it["lang"] == "zh" for it in cal]),
        "look-alike": np.array([it["family"] in LOOK_ALIKES for it in cal]),
        "ordinary": np.array([it["family"] == "ordinary" for it in cal]),
    }


def threshold(z: np.ndarray, up: np.ndarray, y: np.ndarray, pool: np.ndarray, fpr: float) -> float:
    """The lowest logit threshold under which at most ``fpr`` of the pool's benign texts
    (escalated or not: those not escalated are below 0.5 already) score at or above it."""
    negatives = z[up & (y == 0) & pool]
    allowed = int(fpr * int(((y == 0) & pool).sum()))
    if len(negatives) <= allowed:
        return -np.inf
    return float(np.sort(negatives)[::-1][allowed]) + 1e-6


def combine(
    cal: list[Item], first: list[StageOne], head_z: np.ndarray, up: np.ndarray
) -> tuple[float, float, float]:
    y = np.array([int(str(it["label"])) for it in cal])
    feats = np.column_stack([[f.logit for f in first], head_z])
    lr = LogisticRegression(C=10.0, max_iter=2000)
    lr.fit(
        feats[up],
        y[up],
        sample_weight=balanced_weights([it for it, u in zip(cal, up, strict=True) if u]),
    )
    a, b = (float(v) for v in lr.coef_[0])
    z = feats @ lr.coef_[0] + lr.intercept_[0]
    t = max(
        threshold(z, up, y, pool, POOL_FPR.get(name, TARGET_FPR))
        for name, pool in pools(cal).items()
    )
    t = max(t, 0.0)  # never lower than the fitted boundary
    print(f"combination: a={a:.3f} b={b:.3f}, intercept moved by {-t:.3f}")
    return a, b, float(lr.intercept_[0]) - t


def head_training(train: list[Item], model: InjectionModel) -> list[Item]:
    """The training texts the head sees (natural ones: it reads one window anyway): every
    hand-written hard negative, up to :data:`PER_CELL` per language x label of those
    stage 1 is not sure are benign (score at least :data:`HARD`), and :data:`EASY` of
    the rest, all seeded. Embedding all ~9,000 would take about an hour on two cores."""
    rng = random.Random(SEED)
    forced: list[Item] = []
    cells: dict[tuple[int, str], list[Item]] = {}
    easy: list[Item] = []
    for it, first in zip(train, firsts(model, train), strict=True):
        if it["source"] == "synthetic":
            continue
        if it["family"] in HARD_FAMILIES:
            forced.append(it)
        elif first.score.score >= HARD:
            cells.setdefault((int(str(it["label"])), str(it["lang"])), []).append(it)
        else:
            easy.append(it)
    picked = [*forced, *rng.sample(easy, min(EASY, len(easy)))]
    for _, part in sorted(cells.items()):
        picked += rng.sample(part, min(PER_CELL, len(part)))
    return picked


def fit_second_stage(
    train: list[Item], cal: list[Item], model: InjectionModel, store: DiskVectors
) -> SemanticHead:
    """The head, its band and the combination (see the module docstring)."""
    embedded = head_training(train, model)
    print(f"head: {len(embedded)} of {len(train)} training texts")
    x = vectors_of(store, model, embedded)
    cal_first = firsts(model, cal)
    low = band_low(cal, cal_first)
    up = np.array([f.rules.score < STRONG_RULES and f.score.score >= low for f in cal_first])
    y = np.array([int(str(it["label"])) for it in cal])
    shares = f"{up[y == 0].mean():.3f} of benign, {up[y == 1].mean():.3f} of attacks"
    print(f"band low {low:.4f}: {shares} escalate")
    x_cal = vectors_of(store, model, cal)
    best: tuple[float, SemanticHead] | None = None
    for c in (0.5, 2.0, 8.0):
        weights, bias = fit_head(x, embedded, c)
        head_z = x_cal @ weights.astype(np.float32) + bias
        combination = combine(cal, cal_first, head_z, up)
        head = SemanticHead(weights, bias, BAND, combination)
        scores = np.array(
            [
                head.probability(f.logit, hz) if u else f.score.score
                for f, hz, u in zip(cal_first, head_z, up, strict=True)
            ]
        )
        tpr = float((scores[y == 1] >= 0.5).mean())
        fpr = float((scores[y == 0] >= 0.5).mean())
        print(f"C={c}: cal TPR {tpr:.3f} FPR {fpr:.3f}")
        if best is None or tpr > best[0]:
            best = (tpr, head)
    assert best is not None
    return best[1]


def two_stage(
    items: list[Item], model: InjectionModel, head: SemanticHead, store: DiskVectors
) -> tuple[np.ndarray, np.ndarray]:
    """The final scores of ``items`` as the gateway computes them, and which escalated."""
    first = firsts(model, items)
    up = np.array([escalates(f, head, str(it["text"])) for f, it in zip(first, items, strict=True)])
    scores = np.array([f.score.score for f in first])
    picked = [it for it, u in zip(items, up, strict=True) if u]
    if picked:
        head_z = vectors_of(store, model, picked) @ head.weights.astype(np.float32) + head.bias
        lifted = [
            combine_semantic(f, float(z), head).score
            for f, z in zip([f for f, u in zip(first, up, strict=True) if u], head_z, strict=True)
        ]
        scores[up] = lifted
    return scores, up
