"""Real document files made in the tests: PDF (hand-written bytes) and DOCX (python-docx).

pypdf cannot lay out text, so :func:`make_pdf` writes a minimal PDF itself: one
Type0 font with Identity-H encoding and a ToUnicode CMap that maps every 2-byte
code to the same Unicode code point, so any BMP text (Chinese included) is written
as UTF-16BE hex strings and extracted back exactly. Glyphs are not embedded: the
file is for text extraction, not for display.
"""

from __future__ import annotations

import io

import docx

_TO_UNICODE = (
    b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
    b"/CMapName /Identity-UCS def /CMapType 2 def\n"
    b"1 begincodespacerange <0000> <FFFF> endcodespacerange\n"
    b"1 beginbfrange <0000> <FFFF> <0000> endbfrange\n"
    b"endcmap CMapName currentdict /CMap defineresource pop end end\n"
)


def _stream(body: bytes) -> bytes:
    return b"<< /Length %d >>\nstream\n" % len(body) + body + b"\nendstream"


def _page_content(paragraphs: list[str]) -> bytes:
    lines = [b"BT /F1 12 Tf 14 TL 72 760 Td"]
    for paragraph in paragraphs:
        lines.append(b"<" + paragraph.encode("utf-16-be").hex().encode() + b"> Tj T* T*")
    lines.append(b"ET")
    return b"\n".join(lines)


def make_pdf(pages: list[list[str]], title: str | None = None) -> bytes:
    """A PDF whose page ``i`` holds the paragraphs ``pages[i]`` (blank line between)."""
    n = len(pages)
    page_ids = [6 + 2 * i for i in range(n)]
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % p for p in page_ids), n),
        3: b"<< /Type /Font /Subtype /Type0 /BaseFont /Enclave /Encoding /Identity-H "
        b"/DescendantFonts [4 0 R] /ToUnicode 5 0 R >>",
        4: b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /Enclave "
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
        b"/DW 1000 >>",
        5: _stream(_TO_UNICODE),
    }
    for page_id, paragraphs in zip(page_ids, pages, strict=True):
        objects[page_id] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (page_id + 1)
        )
        objects[page_id + 1] = _stream(_page_content(paragraphs))
    info_id = max(objects) + 1
    if title:
        objects[info_id] = b"<< /Title <FEFF" + title.encode("utf-16-be").hex().encode() + b"> >>"
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = out.tell()
        out.write(b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n")
    xref = out.tell()
    size = max(objects) + 1
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % size)
    for number in range(1, size):
        out.write(b"%010d 00000 n \n" % offsets.get(number, 0))
    trailer = b"<< /Size %d /Root 1 0 R" % size + (b" /Info %d 0 R" % info_id if title else b"")
    out.write(b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def make_docx(
    title: str, sections: list[tuple[str, list[str]]], table: list[list[str]] | None = None
) -> bytes:
    """A DOCX with a Title paragraph, then a Heading 1 and paragraphs per section."""
    document = docx.Document()
    document.add_heading(title, level=0)
    for heading, paragraphs in sections:
        document.add_heading(heading, level=1)
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
