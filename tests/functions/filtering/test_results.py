"""Overlap resolution: most severe action, then longer span, then priority, then position."""

from __future__ import annotations

import random

import pytest

from functions.filtering.classify import Level
from functions.filtering.policy import EntityAction
from functions.filtering.results import Hit, resolve

_SEVERITY = {"block": 0, "mask": 1, "flag": 2, "allow": 3}
ACTIONS: tuple[EntityAction, ...] = ("block", "mask", "flag", "allow")


def hit(type_: str, start: int, end: int, action: EntityAction = "mask") -> Hit:
    return Hit(type_, start, end, action, "pii", type_.lower(), Level.INTERNAL)


def reference(hits: list[Hit], priority: dict[str, int] | None = None) -> list[Hit]:
    """The original quadratic algorithm, kept as the definition of the semantics."""
    if len(hits) < 2:
        return hits
    ranks = priority or {}
    ordered = sorted(
        hits,
        key=lambda h: (_SEVERITY[h.action], h.start - h.end, ranks.get(h.type, 99), h.start),
    )
    kept: list[Hit] = []
    for candidate in ordered:
        if all(candidate.end <= k.start or k.end <= candidate.start for k in kept):
            kept.append(candidate)
    return sorted(kept, key=lambda h: h.start)


def test_a_block_is_never_hidden_inside_a_longer_flag() -> None:
    flag, block = hit("TERM", 0, 20, "flag"), hit("SECRET", 5, 9, "block")
    assert resolve([flag, block]) == [block]


def test_at_equal_severity_the_longer_span_wins() -> None:
    short, long = hit("PHONE", 3, 14), hit("EMAIL", 0, 30)
    assert resolve([short, long]) == [long]


def test_at_equal_length_the_priority_decides_then_the_position() -> None:
    email, phone = hit("EMAIL", 0, 11), hit("PHONE", 0, 11)
    assert resolve([phone, email], {"EMAIL": 1, "PHONE": 5}) == [email]
    first, second = hit("TERM", 0, 4), hit("TERM", 2, 6)
    assert resolve([second, first]) == [first]


def test_touching_spans_are_both_kept_in_text_order() -> None:
    a, b, c = hit("IPV4", 0, 7), hit("IPV4", 7, 14), hit("IPV4", 20, 27)
    assert resolve([c, a, b]) == [a, b, c]


def test_fewer_than_two_hits_are_returned_as_they_are() -> None:
    assert resolve([]) == []
    one = [hit("IPV4", 3, 9)]
    assert resolve(one) is one


@pytest.mark.parametrize("seed", range(5))
def test_resolve_agrees_with_the_quadratic_reference_on_random_hits(seed: int) -> None:
    rng = random.Random(seed)
    priority = {"SECRET": 0, "EMAIL": 1, "PHONE": 5}
    for _ in range(2_000):
        length = rng.randint(1, 40)
        hits = []
        for _ in range(rng.randint(0, 14)):
            start = rng.randint(0, length)
            end = start + rng.choice((0, 1, 2, 3, 5, 8, rng.randint(0, length)))
            type_ = rng.choice(("SECRET", "EMAIL", "PHONE", "TERM"))
            hits.append(hit(type_, start, end, rng.choice(ACTIONS)))
        assert resolve(hits, priority) == reference(hits, priority), hits


def test_resolve_handles_many_hits_as_the_reference_does() -> None:
    hits = [hit("IPV4", 8 * i, 8 * i + 7) for i in range(3_000)]
    hits += [hit("TERM", 8 * i + 2, 8 * i + 12, "flag") for i in range(0, 3_000, 3)]
    assert resolve(hits) == reference(hits)
