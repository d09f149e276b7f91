from __future__ import annotations

import pytest

from functions.knowledge.parsers import ParseError, UnsupportedFormatError, parse, supported
from tests.functions.knowledge.files import make_docx, make_pdf


def test_markdown_headings_become_sections_and_title() -> None:
    text = "# Handbook\n\nIntro.\n\n## Leave\n### Annual\n\n25 days.\n\n```\n# not a heading\n```\n"
    doc = parse("docs/handbook.md", text.encode())
    assert doc.title == "Handbook"
    assert [(b.section, b.text) for b in doc.blocks] == [
        ("", "Intro."),
        ("Leave > Annual", "25 days."),
        ("Leave > Annual", "```\n# not a heading\n```"),
    ]


def test_markdown_setext_headings() -> None:
    doc = parse("a.md", "员工手册\n====\n\n年假\n----\n十五天。\n".encode())
    assert doc.title == "员工手册"
    assert doc.blocks[0].section == "年假"


def test_html_headings_paragraphs_and_no_scripts() -> None:
    html = (
        "<html><head><title>T</title><script>var x = 1;</script></head><body>"
        "<h1>Guide</h1><p>Hello <b>world</b>.</p><ul><li><p>Nested item</p></li></ul>"
        "<h2>Part</h2><table><tr><td>cell</td></tr></table></body></html>"
    )
    doc = parse("g.html", html.encode())
    assert doc.title == "T"
    assert [(b.section, b.text) for b in doc.blocks] == [
        ("Guide", "Hello world ."),
        ("Guide", "Nested item"),
        ("Guide > Part", "cell"),
    ]


def test_pdf_pages_and_chinese_text() -> None:
    data = make_pdf([["员工每年享有十五天带薪年假。"], ["Second page in English."]], title="手册")
    doc = parse("h.pdf", data)
    assert doc.title == "手册"
    assert [(b.page, b.text) for b in doc.blocks] == [
        (1, "员工每年享有十五天带薪年假。"),
        (2, "Second page in English."),
    ]


def test_docx_heading_styles_and_tables() -> None:
    data = make_docx(
        "员工手册", [("年假", ["每年十五天。"])], table=[["级别", "天数"], ["经理", "20"]]
    )
    doc = parse("h.docx", data)
    assert doc.title == "员工手册"
    assert [(b.section, b.text) for b in doc.blocks] == [
        ("年假", "每年十五天。"),
        ("年假", "级别 | 天数"),
        ("年假", "经理 | 20"),
    ]


def test_text_in_gb18030_and_title_from_file_name() -> None:
    doc = parse("notes/会议纪要.txt", "第一段。\n\n第二段。".encode("gb18030"))
    assert doc.title == "会议纪要"
    assert [b.text for b in doc.blocks] == ["第一段。", "第二段。"]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("broken.pdf", b"%PDF-1.4 garbage"),
        ("broken.docx", b"not a zip"),
        ("b.txt", b"\xff\xfe\xfa"),
    ],
)
def test_unreadable_files_raise_parse_error(name: str, data: bytes) -> None:
    with pytest.raises(ParseError):
        parse(name, data)


def test_unsupported_suffix() -> None:
    assert not supported("image.png") and supported("A.PDF")
    with pytest.raises(UnsupportedFormatError):
        parse("image.png", b"\x89PNG")
