"""Lexicon files: the format, the loader, and Aho-Corasick matching on normalised text."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.filtering.classify import Level
from functions.filtering.lexicon import Lexicon, load_lexicon, parse_lexicon
from functions.filtering.normalise import normalise

SAMPLE = (
    "# comment\n\n绝密\tblock\tclassified\tsecret\nSecret\tflag\tclassified\n"
    "re:工号\\d{5}\tmask\temployee_id\n"
)


def test_parse_reads_terms_rules_and_defaults() -> None:
    entries = parse_lexicon(SAMPLE, "t")
    assert [(e.pattern, e.action, e.level, e.is_regex) for e in entries] == [
        ("绝密", "block", Level.SECRET, False),
        ("secret", "flag", Level.INTERNAL, False),  # terms are normalised; level defaults
        ("工号\\d{5}", "mask", Level.INTERNAL, True),
    ]
    assert entries[2].type == "EMPLOYEE_ID"
    assert entries[0].where == "t:3"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("term\tblock", "expected term"),
        ("term\tdelete\tx", "action must be"),
        ("term\tblock\tx\ttop", "unknown level"),
        ("x\tblock\tx", "at least two"),
        ("re:(\tblock\tx", "bad regex"),
    ],
)
def test_bad_lines_are_refused_with_their_line_number(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_lexicon(f"# header\n{line}", "f.txt")
    assert "f.txt:2" in str(info.value)


def test_builtin_samples_and_files_load(tmp_path: Path) -> None:
    assert len(load_lexicon("builtin:zh")) >= 10
    assert len(load_lexicon("builtin:en")) >= 10
    path = tmp_path / "tenant.txt"
    path.write_text(SAMPLE, encoding="utf-8")
    assert len(load_lexicon(str(path))) == 3


def test_matches_survive_evasion_and_map_to_original_offsets() -> None:
    lexicon = Lexicon(parse_lexicon(SAMPLE))
    text = "这是绝\u200b密文件，ＳＥＣＲＥＴ!"
    hits = lexicon.find(normalise(text))
    assert [(h.type, text[h.start : h.end]) for h in hits] == [
        ("CLASSIFIED", "绝\u200b密"),
        ("CLASSIFIED", "ＳＥＣＲＥＴ"),
    ]


def test_ascii_terms_respect_word_boundaries_cjk_terms_do_not_need_them() -> None:
    lexicon = Lexicon(parse_lexicon(SAMPLE))
    assert lexicon.find(normalise("the secretary and secrets")) == []
    assert len(lexicon.find(normalise("top-secret, a secret."))) == 2
    assert len(lexicon.find(normalise("绝密绝密"))) == 2


def test_nested_terms_are_all_reported_and_later_files_win() -> None:
    entries = parse_lexicon("内部\tflag\tinternal\n内部资料\tflag\tinternal\n")
    assert len(Lexicon(entries).find(normalise("内部资料"))) == 2
    override = parse_lexicon("绝密\tflag\tclassified\n")
    lexicon = Lexicon([*parse_lexicon(SAMPLE), *override])
    assert [h.action for h in lexicon.find(normalise("绝密"))] == ["flag"]


def test_regex_rules_run_on_normalised_text() -> None:
    lexicon = Lexicon(parse_lexicon(SAMPLE))
    text = "工号１２３４５"
    hits = lexicon.find(normalise(text))
    assert [(h.type, h.action, text[h.start : h.end]) for h in hits] == [
        ("EMPLOYEE_ID", "mask", text)
    ]


def test_an_empty_lexicon_finds_nothing() -> None:
    lexicon = Lexicon([])
    assert len(lexicon) == 0
    assert lexicon.find(normalise("绝密")) == []
