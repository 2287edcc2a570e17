"""Real files made in the tests: PDF (fpdf2), DOCX (python-docx), and hostile ones."""

from __future__ import annotations

import io
import struct
import zlib

from tests.ingestion.helpers import prose


def pdf(pages: list[str], title: str | None = "Handbook", password: str | None = None) -> bytes:
    from fpdf import FPDF

    doc = FPDF()
    if title:
        doc.set_title(title)
    if password:
        doc.set_encryption(owner_password="owner-" + password, user_password=password)
    doc.set_font("helvetica", size=11)
    for text in pages:
        doc.add_page()
        doc.multi_cell(0, 6, text)
    return bytes(doc.output())


def docx(sections: dict[str, str], title: str = "Product manual", table: list[list[str]] | None = None) -> bytes:
    import docx as python_docx

    document = python_docx.Document()
    document.add_heading(title, level=0)
    for heading, body in sections.items():
        document.add_heading(heading, level=1)
        for paragraph in body.split("\n\n"):
            document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def html_page(title: str, body: str, links: list[str] = ()) -> bytes:
    anchors = "".join(f'<a href="{href}">link {i}</a> ' for i, href in enumerate(links))
    return (
        f"<!doctype html><html><head><title>{title}</title><style>body{{color:red}}</style>"
        f"<script>var secret = 'script-text-must-not-appear';</script></head><body>"
        f"<nav>navigation-text-must-not-appear</nav><header>header-chrome</header>"
        f"<main><h1>{title}</h1>{body}<p>{anchors}</p></main>"
        f"<footer>footer-text-must-not-appear</footer></body></html>"
    ).encode()


def zeros_flate(expanded_bytes: int) -> bytes:
    """A zlib stream of `expanded_bytes` zeros, built in milliseconds: after a full flush, deflate
    output for identical input blocks is identical, so one block's bytes are repeated."""
    block = b"\0" * (1024 * 1024)
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = raw.compress(block) + raw.flush(zlib.Z_FULL_FLUSH)
    repeat = raw.compress(block) + raw.flush(zlib.Z_FULL_FLUSH)
    assert repeat == raw.compress(block) + raw.flush(zlib.Z_FULL_FLUSH)
    end = raw.flush(zlib.Z_FINISH)
    count = expanded_bytes // len(block)
    adler = ((count * len(block)) % 65521) << 16 | 1  # adler32 of n zero bytes
    return b"\x78\xda" + first + repeat * (count - 1) + end + adler.to_bytes(4, "big")


def pdf_bomb(expanded_bytes: int = 4 * 1024**3) -> bytes:
    """A valid one-page PDF whose FlateDecode content stream inflates to `expanded_bytes` of zeros."""
    stream = zeros_flate(expanded_bytes)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def docx_zip_bomb(expanded_bytes: int = 2 * 1024**3 - 1024**2) -> bytes:
    """A .docx-shaped ZIP whose word/document.xml inflates to `expanded_bytes` zeros (written by hand:
    the deflate data comes from `zeros_flate`, so building a 2 GB bomb takes a moment)."""
    deflated = zeros_flate(expanded_bytes)[2:-4]  # raw deflate: drop zlib header and adler32
    crc = 0
    block = b"\0" * (1024 * 1024)
    for _ in range(expanded_bytes // len(block)):
        crc = zlib.crc32(block, crc)
    members = [
        (b"[Content_Types].xml", 0, b"<Types/>", zlib.crc32(b"<Types/>"), 8),
        (b"word/document.xml", 8, deflated, crc, (expanded_bytes // len(block)) * len(block)),
    ]
    out = bytearray()
    central = bytearray()
    for name, method, data, member_crc, size in members:
        size = len(data) if method == 0 else size
        header = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, member_crc, len(data), size, len(name), 0)
        central += (
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                0,
                method,
                0,
                0,
                member_crc,
                len(data),
                size,
                len(name),
                0,
                0,
                0,
                0,
                0,
                len(out),
            )
            + name
        )
        out += header + name + data
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(out), 0)
    return bytes(out + central + end)


def nested_html(depth: int = 100_000) -> bytes:
    return b"<html><body>" + b"<div>" * depth + b"deep" + b"</div>" * depth + b"</body></html>"


def long_text(words: int = 3000, seed: int = 7) -> bytes:
    return prose(words, seed).encode()
