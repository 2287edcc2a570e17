"""Token-aware chunking with the embedding model's own tokenizer.

Each section (blocks sharing a page and heading) is tokenized once with character offsets; windows
of at most `chunk_tokens` tokens *including* the model's special tokens are cut from it, preferring
to end at a paragraph, then a sentence, then a word boundary, and consecutive windows overlap by
about `overlap_tokens`. Chunks are slices of the original text, so citations quote it exactly.
Deterministic: the same blocks and settings always give the same chunks.

Contextual chunks (`contextual=True`): each chunk is embedded with its document's title and its
section heading in front ("Title — Heading", at most CONTEXT_MAX_TOKENS tokens), so a passage deep
in a document still says what it is about. The context is kept apart from the text (`Chunk.context`,
stored in `chunks.context`, which the keyword index reads too): snippets and citations quote the
text alone. Its tokens come out of the section's budget, so the embedded input still fits the
model's window and nothing of the text is truncated away.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.extraction.extractors import PageText

SAFETY_TOKENS = 2  # a slice re-tokenized alone can split a word differently at its edges
# Memory bound: sections are tokenized in segments of at most this many characters (cut at a line
# or word boundary), a few at a time, so a 5-million-character document never has all its token
# offsets in memory at once. A chunk does not cross a segment edge.
SEGMENT_CHARS = 20_000
SEGMENTS_PER_CALL = 16
CONTEXT_MAX_TOKENS = 48  # of a 256-token window; a longer title and heading are cut
CONTEXT_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Chunk:
    text: str
    metadata: dict[str, Any]  # {title, heading, page, url}
    context: str = ""  # "Title — Heading" embedded in front of the text (contextual chunks)

    @property
    def embedded_text(self) -> str:
        """What the model encodes: the context, if any, then the text."""
        return f"{self.context}{CONTEXT_SEPARATOR}{self.text}" if self.context else self.text


def context_line(meta: dict[str, Any]) -> str:
    """The document title and the section heading, each once ("Guide — Returns")."""
    parts: list[str] = []
    for value in (meta.get("title"), meta.get("heading")):
        text = " ".join(str(value or "").split())
        if text and text.casefold() not in (p.casefold() for p in parts):
            parts.append(text)
    return " — ".join(parts)


def cut_context(line: str, offsets: list[tuple[int, int]], limit: int) -> str:
    """`line` cut to `limit` tokens at a token edge."""
    if len(offsets) <= limit:
        return line
    return line[: offsets[limit - 1][1]].rstrip() + "…"


def sections(page: PageText) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for block in page.blocks:
        meta = {"title": page.title, "heading": block.heading, "page": block.page, "url": page.url}
        if out and out[-1][1] == meta:
            out[-1] = (out[-1][0] + "\n\n" + block.text, meta)
        else:
            out.append((block.text, meta))
    return out


def chunk_pages(
    pages: list[PageText], tokenizer: Any, chunk_tokens: int, overlap_tokens: int, contextual: bool = False
) -> list[Chunk]:
    budget = chunk_tokens - tokenizer.num_special_tokens_to_add(pair=False) - SAFETY_TOKENS
    items = [(seg, meta) for page in pages for text, meta in sections(page) for seg in segments(text)]
    # at most a quarter of a small window goes to the context
    limit = min(CONTEXT_MAX_TOKENS, budget // 4)
    contexts = section_contexts([meta for _, meta in items], tokenizer, limit) if contextual else {}
    chunks: list[Chunk] = []
    for first in range(0, len(items), SEGMENTS_PER_CALL):
        group = items[first : first + SEGMENTS_PER_CALL]
        encoded = tokenizer(
            [text for text, _ in group], add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )
        pieces = []
        for (text, meta), offsets in zip(group, encoded["offset_mapping"], strict=True):
            context, context_tokens = contexts.get(context_line(meta), ("", 0))
            room = budget - context_tokens
            for piece in split_section(text, offsets, room, min(overlap_tokens, room // 2)):
                pieces.append(Chunk(piece, meta, context))
        del encoded
        chunks.extend(enforce_limit(pieces, tokenizer, chunk_tokens))
    return chunks


def section_contexts(metas: list[dict[str, Any]], tokenizer: Any, limit: int) -> dict[str, tuple[str, int]]:
    """Each distinct context line -> (the line cut to size, the tokens it takes with its separator)."""
    lines = sorted({line for line in map(context_line, metas) if line})
    if not lines:
        return {}
    encoded = tokenizer(
        [line + CONTEXT_SEPARATOR for line in lines],
        add_special_tokens=False,
        return_offsets_mapping=True,
        verbose=False,
    )
    out: dict[str, tuple[str, int]] = {}
    for line, offsets in zip(lines, encoded["offset_mapping"], strict=True):
        cut = cut_context(line, offsets, limit)
        out[line] = (cut, min(len(offsets), limit + 2))  # + the ellipsis, + a safety token
    return out


def segments(text: str, size: int = SEGMENT_CHARS) -> list[str]:
    """`text` in consecutive pieces of at most `size` characters, cut after a newline or a space."""
    out: list[str] = []
    start = 0
    while len(text) - start > size:
        end = start + size
        cut = text.rfind("\n", start + size // 2, end)
        if cut < 0:
            cut = text.rfind(" ", start + size // 2, end)
        cut = end if cut < 0 else cut + 1
        out.append(text[start:cut])
        start = cut
    out.append(text[start:])
    return out


def split_section(text: str, offsets: list[tuple[int, int]], budget: int, overlap: int) -> list[str]:
    n = len(offsets)
    if n == 0:
        return [text.strip()] if text.strip() else []
    pieces: list[str] = []
    start = 0
    while start < n:
        end = min(start + budget, n)
        if end < n:
            end = best_break(text, offsets, start, end)
        piece = text[offsets[start][0] : offsets[end - 1][1]].strip()
        if piece:
            pieces.append(piece)
        if end >= n:
            break
        next_start = max(end - overlap, start + 1)
        # Start the next window on a word boundary (not inside a word-piece sequence).
        while next_start < end and offsets[next_start][0] == offsets[next_start - 1][1]:
            next_start += 1
        start = next_start
    return pieces


def best_break(text: str, offsets: list[tuple[int, int]], start: int, end: int) -> int:
    """The token index to end a window at: paragraph > sentence > word boundary, in its last 40%."""
    floor = start + max(1, (end - start) * 3 // 5)
    sentence = word = None
    for t in range(end, floor, -1):
        gap = text[offsets[t - 1][1] : offsets[t][0]]
        if not gap:
            continue
        if "\n" in gap:
            return t
        if sentence is None and text[offsets[t - 1][1] - 1] in ".!?;:":
            sentence = t
        if word is None:
            word = t
    return sentence or word or end


def enforce_limit(chunks: list[Chunk], tokenizer: Any, chunk_tokens: int) -> list[Chunk]:
    """Re-check every chunk (its context included) with special tokens; halve the rare one that
    re-tokenizes too long."""
    if not chunks:
        return []
    lengths = [len(ids) for ids in tokenizer([c.embedded_text for c in chunks], verbose=False)["input_ids"]]
    out: list[Chunk] = []
    for chunk, length in zip(chunks, lengths, strict=True):
        if length <= chunk_tokens or len(chunk.text) < 2:
            out.append(chunk)
            continue
        cut = chunk.text.rfind(" ", 0, len(chunk.text) // 2 + 1)
        cut = cut if cut > 0 else len(chunk.text) // 2
        halves = [
            Chunk(chunk.text[:cut].strip(), chunk.metadata, chunk.context),
            Chunk(chunk.text[cut:].strip(), chunk.metadata, chunk.context),
        ]
        out.extend(enforce_limit([h for h in halves if h.text], tokenizer, chunk_tokens))
    return out
