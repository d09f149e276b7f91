"""The injection detector's generated training items are the same every time.

``just train-injection`` must reproduce the weights shipped in ``functions/filtering/data``;
the combinatorial items of :mod:`infra.training.injection.augment` are one of its inputs,
so they must be a function of the seed alone, and keep what the training relies on:
attacks of every family in both languages beside benign look-alikes, each text once,
all in the training split.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from infra.training.injection.augment import augmented
from infra.training.injection.data import BATCHES, HANDWRITTEN

ROOT = Path(__file__).resolve().parents[2]


def test_the_generated_items_are_a_function_of_the_seed() -> None:
    first, again, other = augmented(1), augmented(1), augmented(2)
    assert first == again
    assert first != other


def test_attacks_and_look_alikes_of_every_family_in_both_languages() -> None:
    items = augmented()
    assert all(i["split"] == "train" and i["label"] in (0, 1) for i in items)
    texts = [str(i["text"]) for i in items]
    assert all(text and text == text.strip() for text in texts)
    assert len(set(texts)) == len(texts)  # a text is one item, labelled once
    kinds = Counter((i["family"], i["lang"], i["label"]) for i in items)
    for family in ("override", "roleplay"):
        assert kinds[(family, "zh", 1)] and kinds[(family, "en", 1)]
    for family in ("prefix", "extraction", "indirect", "template"):
        assert kinds[(family, "zh", 1)]
    for family in ("hard-negative", "document", "prose", "benign"):
        assert kinds[(family, "zh", 0)] and kinds[(family, "en", 0)]


def _texts(path: Path) -> set[str]:
    lines = path.read_text("utf-8").splitlines()
    return {str(json.loads(line)["text"]).strip() for line in lines if line.strip()}


@pytest.mark.parametrize(
    "held_out",
    [
        "injection_zh_heldout.jsonl",
        "injection_lookalike_heldout.jsonl",
        "injection_ordinary_chat.jsonl",
    ],
)
def test_no_hand_kept_held_out_text_is_in_the_training_data(held_out: str) -> None:
    """A held-out figure counts only texts no model was fitted or calibrated on: the
    generated items and every hand-written file (their train, calibration and tune
    splits alike). ("hi" and "继续" were in both, and were dropped from the chat set.)"""
    training = {str(i["text"]).strip() for i in augmented()}
    for path in (ROOT / "infra/training/injection").glob("handwritten*.jsonl"):
        training |= _texts(path)
    assert not _texts(ROOT / "tests/functions/filtering" / held_out) & training


def test_the_hand_written_batches_keep_each_group_in_one_split() -> None:
    """The look-alike batches carry their own split: a text and its other-language twin
    (one group) fall in the same one, so the tune split reports texts no twin of which was
    fitted on; and each language x label has tune items to report."""
    for batch, path in BATCHES.items():
        items = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]
        assert {i["split"] for i in items} == {"train", "cal", "tune"}, batch
        assert all(str(i["source"]).startswith(HANDWRITTEN) for i in items), batch
        splits: dict[str, set[str]] = {}
        for i in items:
            splits.setdefault(str(i["group"]), set()).add(str(i["split"]))
        assert all(len(s) == 1 for s in splits.values()), batch
        tune = Counter((i["lang"], i["label"]) for i in items if i["split"] == "tune")
        assert len(tune) == 4 and min(tune.values()) >= 15, batch
