"""One pass over a text finds the same candidates as one ``in`` test per hint."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from functions.filtering.hints import HintIndex
from functions.filtering.injection_rules import _COMPILED
from functions.filtering.pii import DETECTORS


def _by_in(hints: list[tuple[str, ...]], text: str) -> frozenset[int]:
    return frozenset(i for i, own in enumerate(hints) if not own or any(h in text for h in own))


_WORDS = st.text(alphabet="abc@密码 ", min_size=1, max_size=4)
_TABLES = st.lists(st.lists(_WORDS, max_size=3).map(tuple), max_size=6)


@settings(max_examples=300, deadline=None)
@given(_TABLES, st.lists(_WORDS, max_size=8), st.text(alphabet="abc@密码 x", max_size=12))
def test_candidates_are_the_items_an_in_test_would_let_run(
    table: list[tuple[str, ...]], pieces: list[str], noise: str
) -> None:
    """Hints nested in one another (``a`` in ``aa``), shared by items, repeated, empty."""
    text = "".join(pieces) + noise
    assert HintIndex(table).candidates(text) == _by_in(table, text)


_PII_HINTS = [d.hints for d in DETECTORS]
_RULE_HINTS = [hints for *_, hints in _COMPILED]
_REAL = sorted({h for own in _PII_HINTS + _RULE_HINTS for h in own})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([*_REAL, " ", "x", "。"]), max_size=10))
def test_the_real_tables_too(pieces: list[str]) -> None:
    text = "".join(pieces)
    for table in (_PII_HINTS, _RULE_HINTS):
        assert HintIndex(table).candidates(text) == _by_in(table, text)


def test_items_without_hints_always_run_and_an_empty_table_works() -> None:
    assert HintIndex([(), ("key",)]).candidates("nothing") == {0}
    assert HintIndex([(), ()]).candidates("anything") == {0, 1}
    assert HintIndex([]).candidates("anything") == frozenset()
