"""Turn a file's bytes into titled blocks of text that remember their section and page.

One parser per format, chosen by the file name's suffix:

    .txt                plain text; paragraphs split on blank lines
    .md .markdown       ATX (``#``) and setext headings become sections; fences kept whole
    .html .htm          beautifulsoup4: headings become sections, p/li/pre/td… blocks
    .pdf                pypdf: one page number per block
    .docx               python-docx: "Heading n"/"Title" styles become sections; tables too

A parser raises :class:`ParseError` for a file it cannot read; the ingestion job
records the reason and carries on with the next file.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Block:
    """A paragraph-like piece of text; ``section`` is the heading path ("A > B")."""

    text: str
    section: str = ""
    page: int | None = None


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    title: str
    blocks: tuple[Block, ...]


class ParseError(ValueError):
    """The file could not be read as its suffix claims."""


class UnsupportedFormatError(ParseError):
    """No parser for this suffix."""


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ParseError("text is neither UTF-8 nor GB18030")


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


class _Sections:
    """The current heading path while walking a document."""

    def __init__(self) -> None:
        self._path: list[tuple[int, str]] = []

    def enter(self, level: int, heading: str) -> None:
        self._path = [(lv, h) for lv, h in self._path if lv < level] + [(level, heading)]

    @property
    def current(self) -> str:
        return " > ".join(h for _, h in self._path)


def parse_text(data: bytes, stem: str) -> ParsedDocument:
    return ParsedDocument(stem, tuple(Block(p) for p in _paragraphs(_decode(data))))


_ATX = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_SETEXT = re.compile(r"^(=+|-+)\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def parse_markdown(data: bytes, stem: str) -> ParsedDocument:
    sections, blocks, title = _Sections(), list[Block](), ""
    buffer: list[str] = []
    in_fence = False

    def flush() -> None:
        blocks.extend(Block(p, sections.current) for p in _paragraphs("\n".join(buffer)))
        buffer.clear()

    for line in _decode(data).splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _ATX.match(line)
        setext = not in_fence and _SETEXT.match(line) and buffer and buffer[-1].strip()
        if heading or setext:
            level = len(heading.group(1)) if heading else (1 if line.lstrip()[0] == "=" else 2)
            text = heading.group(2) if heading else buffer.pop().strip()
            flush()
            sections.enter(level, text)
            title = title or (text if level == 1 else "")
        else:
            buffer.append(line)
    flush()
    return ParsedDocument(title or stem, tuple(blocks))


_HTML_BLOCKS = {"p", "li", "pre", "blockquote", "td", "th", "dt", "dd", "figcaption", "caption"}
_HTML_HEADINGS = {f"h{n}" for n in range(1, 7)}


def parse_html(data: bytes, stem: str) -> ParsedDocument:
    from bs4 import BeautifulSoup, Tag  # on the first HTML upload: off the gateway's start

    soup = BeautifulSoup(data, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "nav"]):
        tag.decompose()
    root = soup.body or soup
    sections, blocks = _Sections(), list[Block]()
    h1 = ""
    for tag in root.find_all(_HTML_BLOCKS | _HTML_HEADINGS):
        if not isinstance(tag, Tag) or tag.find_parent(_HTML_BLOCKS):
            continue  # nested in a block already taken whole
        text = " ".join(tag.get_text(" ", strip=True).split())
        if not text:
            continue
        if tag.name in _HTML_HEADINGS:
            sections.enter(int(tag.name[1]), text)
            h1 = h1 or (text if tag.name == "h1" else "")
        else:
            blocks.append(Block(text, sections.current))
    if not blocks:  # text outside block tags: fall back to the page's lines
        blocks = [Block(p) for p in _paragraphs(root.get_text("\n"))]
    head = soup.title.get_text(strip=True) if soup.title else ""
    return ParsedDocument(head or h1 or stem, tuple(blocks))


_CJK_END = re.compile(r"[\u3000-\u9fff\uff00-\uffef]$")


def _join_lines(paragraph: str) -> str:
    """PDF text breaks every line; join them without spaces between CJK characters."""
    out = ""
    for line in (ln.strip() for ln in paragraph.splitlines()):
        if not line:
            continue
        glue = "" if not out or _CJK_END.search(out) else " "
        out += glue + line
    return out


def parse_pdf(data: bytes, stem: str) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ParseError("PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except (PyPdfError, ValueError, KeyError) as exc:
        raise ParseError(f"unreadable PDF: {exc}") from exc
    blocks = [
        Block(text, page=number)
        for number, page_text in enumerate(pages, start=1)
        for text in (_join_lines(p) for p in _paragraphs(page_text))
        if text
    ]
    return ParsedDocument(str(meta_title).strip() or stem, tuple(blocks))


def _docx_items(data: bytes) -> Iterator[tuple[str, str]]:
    """(style name, text) for each paragraph and table row, in document order."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, SyntaxError) as exc:
        raise ParseError(f"unreadable DOCX: {exc}") from exc
    if document.core_properties.title:
        yield "Title", document.core_properties.title
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            for row in item.rows:
                cells = dict.fromkeys(c.text.strip() for c in row.cells if c.text.strip())
                yield "", " | ".join(cells)
        else:
            yield (item.style.name if item.style else "") or "", item.text


def parse_docx(data: bytes, stem: str) -> ParsedDocument:
    sections, blocks, title = _Sections(), list[Block](), ""
    for style, raw in _docx_items(data):
        text = raw.strip()
        if not text:
            continue
        level = re.fullmatch(r"Heading (\d)", style)
        if style == "Title":
            title = title or text
        elif level:
            sections.enter(int(level.group(1)), text)
            title = title or (text if level.group(1) == "1" else "")
        else:
            blocks.append(Block(text, sections.current))
    return ParsedDocument(title or stem, tuple(blocks))


Parser = Callable[[bytes, str], ParsedDocument]
PARSERS: Mapping[str, Parser] = MappingProxyType(
    {
        ".txt": parse_text,
        ".md": parse_markdown,
        ".markdown": parse_markdown,
        ".html": parse_html,
        ".htm": parse_html,
        ".pdf": parse_pdf,
        ".docx": parse_docx,
    }
)


def supported(name: str) -> bool:
    return PurePath(name).suffix.lower() in PARSERS


def parse(name: str, data: bytes) -> ParsedDocument:
    """Parse ``data`` by the suffix of ``name``; raise :class:`ParseError` if it can't."""
    path = PurePath(name)
    parser = PARSERS.get(path.suffix.lower())
    if parser is None:
        raise UnsupportedFormatError(f"unsupported file type {path.suffix or '(none)'!r}")
    document = parser(data, path.stem)
    return ParsedDocument(
        document.title, tuple(_untitled(b, document.title) for b in document.blocks)
    )


def _untitled(block: Block, title: str) -> Block:
    """Drop the title from the head of a section path: it is cited separately."""
    if block.section == title:
        return Block(block.text, "", block.page)
    if block.section.startswith(title + " > "):
        return Block(block.text, block.section[len(title) + 3 :], block.page)
    return block
