"""Normalisation against evasion, and the exact map back to the original text."""

from __future__ import annotations

import pytest

from functions.filtering.normalise import normalise


def test_ascii_is_lowered_with_an_identity_map() -> None:
    norm = normalise("Call ME")
    assert norm.text == "call me"
    assert norm.origin is None
    assert norm.span(5, 7) == (5, 7)


def test_full_width_digits_and_letters_read_as_ascii() -> None:
    norm = normalise("手机１３８１２３４５６７８，ＡＢＣ")
    assert norm.text == "手机13812345678,abc"
    assert norm.span(2, 13) == (2, 13)


@pytest.mark.parametrize("invisible", ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"])
def test_invisible_characters_are_removed_and_spans_cover_them(invisible: str) -> None:
    text = f"tel 138{invisible}1234{invisible}5678 end"
    norm = normalise(text)
    assert norm.text == "tel 13812345678 end"
    start = norm.text.index("138")
    o_start, o_end = norm.span(start, start + 11)
    assert text[o_start:o_end] == f"138{invisible}1234{invisible}5678"


def test_combining_marks_and_variation_selectors_are_removed() -> None:
    assert normalise("ig\u0308nore\ufe0f").text == "ignore"


def test_dashes_read_as_hyphen_and_ideographic_space_as_space() -> None:
    assert normalise("138\u20141234\u20135678\u3000x").text == "138-1234-5678 x"


def test_expansions_map_every_character_back_to_its_source() -> None:
    text = "①ﬁx"  # NFKC: "1", "fi", "x"
    norm = normalise(text)
    assert norm.text == "1fix"
    assert norm.span(1, 3) == (1, 2)  # "fi" comes from the ligature alone
    assert norm.span(0, 4) == (0, 3)


def test_normalisation_is_per_character_so_chunks_concatenate() -> None:
    text = "ＡＢ\u200bc，绝密ﬁle"
    whole = normalise(text).text
    for cut in range(len(text) + 1):
        assert normalise(text[:cut]).text + normalise(text[cut:]).text == whole


def test_index_finds_the_first_normalised_character_at_or_after() -> None:
    norm = normalise("a\u200bＢc")
    assert norm.text == "abc"
    assert norm.index(1) == 1  # the removed character's slot is the next kept one
    assert norm.index(2) == 1
    assert norm.index(3) == 2
