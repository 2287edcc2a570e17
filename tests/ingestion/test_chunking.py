"""Token-aware chunking with the model's tokenizer: limits, overlap, boundaries, determinism."""

import itertools

from app.extraction.extractors import Block, PageText
from app.ingestion.chunking import chunk_pages
from tests.ingestion.helpers import prose

TRICKY = (
    "Antidisestablishmentarianism internationalization Zürich naïve façade 東京都 emoji 🚀🚀🚀 "
    "https://example.com/a/very/long/url?with=query&and=params x=y+z*(w-1) 3.14159265358979 "
) * 60


def chunk(pages, embedder, size=256, overlap=32):
    return chunk_pages(pages, embedder.tokenizer, size, overlap)


def test_no_chunk_exceeds_the_token_limit_including_special_tokens(embedder):
    pages = [PageText([Block(prose(3000, seed=5)), Block(TRICKY, page=2)], "Doc")]
    for size in (256, 128, 64):
        chunks = chunk(pages, embedder, size=size, overlap=16)
        lengths = [len(embedder.tokenizer(c.text)["input_ids"]) for c in chunks]
        assert max(lengths) <= size
        assert sum(lengths) / len(lengths) > size * 0.6  # windows are filled, not tiny


def test_windows_overlap_and_end_on_sentence_boundaries(embedder):
    text = prose(2000, seed=9).replace("\n\n", " ")
    chunks = chunk([PageText([Block(text)], None)], embedder)
    assert len(chunks) > 5
    for left, right in itertools.pairwise(chunks):
        tail = left.text.split()[-3:]
        assert " ".join(tail) in right.text  # the next window repeats the end of the previous one
    assert sum(c.text.endswith(".") for c in chunks[:-1]) >= len(chunks[:-1]) * 0.8


def test_chunks_are_slices_of_the_original_text_with_citation_metadata(embedder):
    blocks = [
        Block("Intro paragraph.", page=1, heading="Overview"),
        Block(prose(500, seed=2), page=2, heading="Details"),
    ]
    chunks = chunk([PageText(blocks, "Guide", url="https://docs.example/guide")], embedder)
    assert chunks[0].text == "Intro paragraph."
    assert chunks[0].metadata == {
        "title": "Guide",
        "heading": "Overview",
        "page": 1,
        "url": "https://docs.example/guide",
    }
    assert {c.metadata["page"] for c in chunks[1:]} == {2}
    source = blocks[1].text
    assert all(c.text in source for c in chunks[1:])


def test_chunking_is_deterministic(embedder):
    pages = [PageText([Block(prose(1500, seed=3)), Block(TRICKY)], "T")]
    assert chunk(pages, embedder) == chunk(pages, embedder)


def test_empty_input_gives_no_chunks(embedder):
    assert chunk([], embedder) == []
