"""Turn document bytes into text blocks `{text, page, heading}` — runs inside the sandbox process.

The real type is sniffed from the bytes (the file name and mimetype only choose between the
textual formats). Every failure is an `ExtractionError` whose message is shown to the tenant.
Imports of the parsers are local so the sandbox only loads what a document needs.
"""

from __future__ import annotations

import csv
import io
import math
import re
import zipfile
from dataclasses import asdict, dataclass, field
from typing import Any

from app.extraction import charsets


class ExtractionError(Exception):
    """A document cannot be ingested; the message is a human sentence for the tenant."""


@dataclass
class Block:
    text: str
    page: int | None = None
    heading: str | None = None


@dataclass
class Extracted:
    kind: str
    title: str | None = None
    blocks: list[Block] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # HTML only: hrefs, for the crawler

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PageText:
    """Extracted blocks of one document or one crawled page, with what citations need."""

    blocks: list[Block]
    title: str | None
    url: str | None = None


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_pages: int
    max_chars: int
    max_unzipped_bytes: int
    max_html_depth: int = 255  # libxml2 refuses deeper trees; we report it instead of losing text


BINARY_SIGNATURES: list[tuple[bytes, str]] = [
    (b"\xd0\xcf\x11\xe0", "a legacy Microsoft Office file (.doc/.xls/.ppt); save it as .docx or PDF"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x7fELF", "an executable program"),
    (b"MZ", "a Windows executable"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"{\\rtf", "an RTF document; save it as .docx or PDF"),
]
HTML_START = re.compile(rb"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)[\s>]", re.I | re.S)
XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]{0,200}>")
# Linear: no two adjacent quantifiers can share characters (the closing #s are stripped in code).
MARKDOWN_HEADING = re.compile(r"^(#{1,6})[ \t]+(\S.*)$")


def sniff(data: bytes, filename: str, mimetype: str) -> str:
    """Return one of pdf, docx, html, csv, markdown, txt — or raise with what the bytes are."""
    if not data:
        raise ExtractionError("the file is empty (0 bytes)")
    head = data[:1024]
    if b"%PDF-" in head:
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        try:
            names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
        except (zipfile.BadZipFile, ValueError) as exc:
            raise ExtractionError("the file looks like a ZIP/DOCX archive but is corrupt") from exc
        if "word/document.xml" in names:
            return "docx"
        raise ExtractionError("the file is a ZIP archive but not a Word document (.docx)")
    for signature, what in BINARY_SIGNATURES:
        if data.startswith(signature):
            raise ExtractionError(f"unsupported file type: the content is {what}")
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ExtractionError("unsupported file type: the content is binary, not PDF, DOCX or text")
    name = filename.lower()
    mime = mimetype.lower()
    if HTML_START.match(data[:4096]) or name.endswith((".html", ".htm")) or "html" in mime:
        return "html"
    if name.endswith(".csv") or mime in ("text/csv", "application/csv"):
        return "csv"
    if name.endswith((".md", ".markdown")) or "markdown" in mime:
        return "markdown"
    return "txt"


def decode_text(data: bytes, charset: str | None = None) -> str:
    return charsets.decode(data, charset)


def clean(text: str) -> str:
    # PostgreSQL text cannot hold NUL; other control characters only add noise.
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", " ", text)


class CharBudget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, text: str) -> str:
        self.used += len(text)
        if self.used > self.limit:
            raise ExtractionError(f"the document has more than {self.limit:,} characters of text (the limit)")
        return text


def extract(data: bytes, filename: str, mimetype: str, limits: Limits) -> Extracted:
    if len(data) > limits.max_bytes:
        raise ExtractionError(f"the file is {len(data):,} bytes; the limit is {limits.max_bytes:,}")
    media_type, charset = charsets.split_content_type(mimetype)
    kind = sniff(data, filename, media_type)
    budget = CharBudget(limits.max_chars)
    result = EXTRACTORS[kind](data, limits, budget, charset)
    # Metadata is cleaned like text: a NUL in a PDF title or a heading must not reach PostgreSQL.
    result.title = clean(result.title).strip() or None if result.title else None
    result.blocks = [
        Block(clean(b.text).strip(), b.page, clean(b.heading).strip() or None if b.heading else None)
        for b in result.blocks
    ]
    result.blocks = [b for b in result.blocks if b.text]
    if not result.blocks:
        if kind == "pdf":
            raise ExtractionError("the PDF has no extractable text (scanned images need OCR, which is not supported)")
        raise ExtractionError("the document contains no text")
    return result


def extract_pdf(data: bytes, limits: Limits, budget: CharBudget, charset: str | None = None) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except (DependencyError, NotImplementedError) as exc:
                raise ExtractionError(
                    "the PDF is encrypted; remove the password/encryption and upload it again"
                ) from exc
            if not opened:
                raise ExtractionError("the PDF is password-protected; remove the password and upload it again")
        pages = len(reader.pages)
        if pages > limits.max_pages:
            raise ExtractionError(f"the PDF has {pages} pages; the limit is {limits.max_pages}")
        title = None
        try:
            title = (reader.metadata.title if reader.metadata else None) or None
        except Exception:  # broken metadata is not a reason to refuse the text
            title = None
        blocks = []
        for number, page in enumerate(reader.pages, start=1):
            text = page.extract_text() or ""
            if not text.strip():
                # pypdf swallows its decompression limit inside extract_text; ask the raw stream so
                # a bomb is reported as one instead of as "no text".
                contents = page.get_contents()
                if contents is not None:
                    contents.get_data()
            blocks.append(Block(budget.take(text), page=number))
        blocks = drop_running_lines(blocks)
        return Extracted("pdf", str(title) if title else None, blocks)
    except ExtractionError:
        raise
    except FileNotDecryptedError as exc:
        raise ExtractionError("the PDF is password-protected; remove the password and upload it again") from exc
    except PdfReadError as exc:
        raise ExtractionError(f"the PDF is corrupt or unreadable ({exc})") from exc
    except Exception as exc:
        name = type(exc).__name__
        if name == "LimitReachedError":
            raise ExtractionError(f"the PDF expands to too much data (possible decompression bomb): {exc}") from exc
        raise ExtractionError(f"the PDF could not be read ({name}: {exc})"[:500]) from exc


RUNNING_EDGE_LINES = 2  # lines at the top and at the bottom of a page that may be a running header/footer
RUNNING_MIN_SHARE = 0.6  # ... if the same line (digits aside) is there on at least this share of pages
DIGITS = re.compile(r"\d+")


def drop_running_lines(pages: list[Block]) -> list[Block]:
    """Remove running headers and footers (title lines, "Page 3 of 12") from PDF pages.

    A line among the first or last `RUNNING_EDGE_LINES` of a page is running when the same line,
    with its numbers masked, is at that edge on at least `RUNNING_MIN_SHARE` of the pages (and on
    three pages or more); a document of fewer than three pages keeps every line.
    """
    if len(pages) < 3:
        return pages

    def key(line: str) -> str:
        return DIGITS.sub("#", " ".join(line.split()).lower())

    split = [[line for line in page.text.splitlines() if line.strip()] for page in pages]
    counts: dict[tuple[str, str], int] = {}
    for lines in split:
        top = {key(line) for line in lines[:RUNNING_EDGE_LINES]}
        bottom = {key(line) for line in lines[-RUNNING_EDGE_LINES:]}
        for edge, keys in (("top", top), ("bottom", bottom)):
            for k in keys:
                counts[(edge, k)] = counts.get((edge, k), 0) + 1
    needed = max(3, math.ceil(RUNNING_MIN_SHARE * len(pages)))
    running = {edge_key for edge_key, n in counts.items() if n >= needed}
    if not running:
        return pages
    out = []
    for page, lines in zip(pages, split, strict=True):
        start, end = 0, len(lines)
        while start < min(RUNNING_EDGE_LINES, end) and ("top", key(lines[start])) in running:
            start += 1
        while end > max(start, len(lines) - RUNNING_EDGE_LINES) and ("bottom", key(lines[end - 1])) in running:
            end -= 1
        out.append(Block("\n".join(lines[start:end]), page=page.page, heading=page.heading))
    return out


def check_zip(data: bytes, limits: Limits) -> None:
    """Refuse archives whose members would expand past the cap (zip bombs), before parsing."""
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except zipfile.BadZipFile as exc:
        raise ExtractionError("the DOCX file is corrupt (not a valid ZIP archive)") from exc
    if len(infos) > 10_000:
        raise ExtractionError(f"the DOCX archive has {len(infos)} entries; refusing a possible zip bomb")
    total = sum(i.file_size for i in infos)
    if total > limits.max_unzipped_bytes:
        raise ExtractionError(
            f"the DOCX expands to {total:,} bytes (limit {limits.max_unzipped_bytes:,}); refusing a possible zip bomb"
        )


def extract_docx(data: bytes, limits: Limits, budget: CharBudget, charset: str | None = None) -> Extracted:
    check_zip(data, limits)
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:
        raise ExtractionError(f"the DOCX file is corrupt or unreadable ({type(exc).__name__})") from exc
    title = (document.core_properties.title or "").strip() or None
    blocks: list[Block] = []
    heading: str | None = None
    for element in document.element.body.iterchildren():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = Paragraph(element, document)
            text = budget.take(paragraph.text)
            style = (paragraph.style.name if paragraph.style is not None else "") or ""
            if style == "Title" and text.strip():
                title = title or text.strip()
                heading = text.strip()
            elif style.startswith("Heading") and text.strip():
                heading = text.strip()
            else:
                blocks.append(Block(text, heading=heading))
        elif tag == "tbl":
            table = Table(element, document)
            rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in table.rows]
            blocks.append(Block(budget.take("\n".join(rows)), heading=heading))
    return Extracted("docx", title, merge_blocks(blocks))


def merge_blocks(blocks: list[Block]) -> list[Block]:
    """Join consecutive blocks of the same page and heading (paragraphs of one section)."""
    merged: list[Block] = []
    for block in blocks:
        if not block.text.strip():
            continue
        if merged and merged[-1].page == block.page and merged[-1].heading == block.heading:
            merged[-1].text += "\n\n" + block.text
        else:
            merged.append(Block(block.text, block.page, block.heading))
    return merged


DROPPED_TAGS = {"script", "style", "noscript", "nav", "header", "footer", "aside", "form", "svg", "template", "iframe"}
BLOCK_TAGS = {
    "p", "div", "section", "article", "main", "li", "ul", "ol", "table", "tr", "td", "th", "br", "pre",
    "blockquote", "dd", "dt", "dl", "figcaption", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
}  # fmt: skip
HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}


def extract_html(data: bytes, limits: Limits, budget: CharBudget, charset: str | None = None) -> Extracted:
    import lxml.html
    from lxml import etree

    parser = lxml.html.HTMLParser(recover=True, no_network=True, remove_comments=True, remove_pis=True)
    # Decoded here (header charset, BOM, meta, UTF-8, detection: charsets.py), not by libxml2, which
    # falls back to Latin-1 for a page without <meta charset>.
    text = XML_DECLARATION.sub("", charsets.decode(data, charset, html=True), count=1)
    try:
        root = lxml.html.document_fromstring(text, parser=parser)
    except (etree.ParserError, ValueError) as exc:
        raise ExtractionError(f"the HTML could not be parsed ({exc})") from exc
    if any("Excessive depth" in entry.message for entry in parser.error_log):
        raise ExtractionError(f"the HTML nests elements more than {limits.max_html_depth} levels deep; refusing it")
    # Elements from lxml.html's parser are HtmlElements (text_content, drop_tree); the checks
    # below say so to the type checker.
    title_el = root.find(".//title")
    title = " ".join(title_el.text_content().split()) if isinstance(title_el, lxml.html.HtmlElement) else None
    links = [href for el in root.iter("a") if (href := (el.get("href") or "").strip())][:5000]
    for el in list(root.iter(*DROPPED_TAGS)):
        if isinstance(el, lxml.html.HtmlElement):
            el.drop_tree()
    body = root.find(".//main")
    if body is None:
        body = root.find(".//article")
    if body is None:
        candidates = root.xpath(".//*[@role='main']")
        first = candidates[0] if isinstance(candidates, list) and candidates else None
        body = first if isinstance(first, lxml.html.HtmlElement) else root.find("body")
    if body is None:
        body = root

    blocks: list[Block] = []
    heading: str | None = None
    parts: list[str] = []
    heading_parts: list[str] | None = None

    def flush() -> None:
        text = "".join(parts)
        if text.strip():
            blocks.append(Block(budget.take(text), heading=heading))
        parts.clear()

    # iterwalk is iterative: no recursion, whatever the nesting.
    for event, el in etree.iterwalk(body, events=("start", "end")):
        tag = el.tag if isinstance(el.tag, str) else ""
        if event == "start":
            if tag in HEADINGS:
                flush()
                heading_parts = []
            elif tag in BLOCK_TAGS:
                parts.append("\n")
            if el.text:
                (heading_parts if heading_parts is not None else parts).append(el.text)
        else:
            if tag in HEADINGS and heading_parts is not None:
                heading = " ".join("".join(heading_parts).split()) or heading
                heading_parts = None
            elif tag in BLOCK_TAGS:
                parts.append("\n")
            if el.tail and el is not body:
                (heading_parts if heading_parts is not None else parts).append(el.tail)
    flush()
    for block in blocks:
        block.text = re.sub(r"[ \t\r\f\v]+", " ", block.text)
        block.text = re.sub(r"\s*\n\s*(\n\s*)+", "\n\n", block.text)
    return Extracted("html", title, blocks, links)


def heading_text(raw: str) -> str:
    """An ATX heading's text without its optional closing `#` sequence (CommonMark)."""
    text = raw.strip()
    without = text.rstrip("#")
    if without != text and (not without or without[-1] in " \t"):
        text = without.strip()
    return text


def extract_markdown(data: bytes, limits: Limits, budget: CharBudget, charset: str | None = None) -> Extracted:
    text = budget.take(decode_text(data, charset))
    blocks: list[Block] = []
    heading: str | None = None
    title: str | None = None
    lines: list[str] = []
    in_fence = False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        match = None if in_fence else MARKDOWN_HEADING.match(line)
        if match:
            blocks.append(Block("\n".join(lines), heading=heading))
            lines = []
            heading = heading_text(match.group(2))
            if match.group(1) == "#" and title is None:
                title = heading
        else:
            lines.append(line)
    blocks.append(Block("\n".join(lines), heading=heading))
    return Extracted("markdown", title, merge_blocks(blocks))


def extract_txt(data: bytes, limits: Limits, budget: CharBudget, charset: str | None = None) -> Extracted:
    return Extracted("txt", None, [Block(budget.take(decode_text(data, charset)))])


def extract_csv(data: bytes, limits: Limits, budget: CharBudget, charset: str | None = None) -> Extracted:
    text = decode_text(data, charset)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    csv.field_size_limit(limits.max_chars)
    try:
        rows = csv.reader(io.StringIO(text), dialect)
        header = next(rows, None)
        if header is None:
            raise ExtractionError("the CSV file has no rows")
        header = [h.strip() or f"column {i + 1}" for i, h in enumerate(header)]
        lines = []
        for row in rows:
            if not any(cell.strip() for cell in row):
                continue
            pairs = [
                f"{header[i] if i < len(header) else f'column {i + 1}'}: {cell.strip()}" for i, cell in enumerate(row)
            ]
            lines.append(budget.take("; ".join(p for p in pairs if not p.endswith(": "))))
    except csv.Error as exc:
        raise ExtractionError(f"the CSV file is malformed ({exc})") from exc
    if not lines:  # a single header-only line still has content
        lines = [budget.take(", ".join(header))]
    return Extracted("csv", None, [Block("\n".join(lines), heading=", ".join(header)[:200])])


EXTRACTORS = {
    "pdf": extract_pdf,
    "docx": extract_docx,
    "html": extract_html,
    "markdown": extract_markdown,
    "txt": extract_txt,
    "csv": extract_csv,
}
