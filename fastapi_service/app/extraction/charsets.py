"""Bytes -> text for documents and crawled pages: the declared charset first, then evidence.

Order: the `charset=` of the Content-Type (header of a crawled page, or the document's mimetype),
then a byte-order mark, then (HTML) a `<meta charset>` / `http-equiv` declaration, then strict
UTF-8, then Windows-1252 if charset-normalizer finds it plausible, else charset-normalizer's best
guess (Windows-1252 with replacement characters when it has none). Strict
UTF-8 goes before detection because valid UTF-8 is very unlikely to be anything else, and
detection on short texts is unreliable. The BOM and meta parsing are BeautifulSoup's.
"""

from __future__ import annotations

import codecs
from email.message import Message

import charset_normalizer
from bs4.dammit import EncodingDetector


def split_content_type(value: str) -> tuple[str, str | None]:
    """`"text/html; charset=UTF-8"` -> ("text/html", "utf-8"); unknown charsets become None."""
    if not value:
        return "", None
    message = Message()
    message["content-type"] = value
    media_type = message.get_content_type() if "/" in value.split(";")[0] else value.split(";")[0].strip().lower()
    charset = message.get_param("charset")
    return media_type, known_encoding(charset if isinstance(charset, str) else None)


def known_encoding(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name.strip().strip("\"'")).name
    except LookupError:
        return None


def decode(data: bytes, declared: str | None = None, *, html: bool = False) -> str:
    body, bom_encoding = EncodingDetector.strip_byte_order_mark(data)
    header = known_encoding(declared)
    if header is not None:
        if bom_encoding is not None and known_encoding(bom_encoding) == header:
            return body.decode(header, errors="replace")
        return data.decode(header, errors="replace")
    if bom_encoding is not None and known_encoding(bom_encoding) is not None:
        return body.decode(bom_encoding, errors="replace")
    if html:
        meta = known_encoding(EncodingDetector.find_declared_encoding(data[:4096], is_html=True))
        if meta is not None:
            return data.decode(meta, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    matches = charset_normalizer.from_bytes(data[:1_000_000])
    plausible = [m.encoding for m in matches if known_encoding(m.encoding) is not None]
    # Windows-1252 is the web's default for undeclared legacy text (WHATWG); when it reads the bytes
    # as plausibly as anything else it wins, else detection decides (Cyrillic, Greek, CJK...).
    if plausible and "cp1252" not in plausible:
        return data.decode(plausible[0], errors="replace")
    return data.decode("cp1252", errors="replace")
