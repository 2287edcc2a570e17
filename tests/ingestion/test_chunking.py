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


def test_contextual_chunks_carry_title_and_heading_apart_from_their_text(embedder):
    text = prose(1500, seed=3)
    pages = [PageText([Block(text, page=1, heading="Returns"), Block(TRICKY, page=2, heading="Doc")], "Doc")]
    plain = chunk_pages(pages, embedder.tokenizer, 128, 16)
    contextual = chunk_pages(pages, embedder.tokenizer, 128, 16, contextual=True)
    assert {c.context for c in plain} == {""} and all(c.embedded_text == c.text for c in plain)
    # the heading equal to the title is said once
    assert {c.context for c in contextual} == {"Doc — Returns", "Doc"}
    for c in contextual:
        assert c.embedded_text == f"{c.context}\n\n{c.text}"
        assert c.text in text or c.text in TRICKY  # snippets stay slices of the document
        assert len(embedder.tokenizer(c.embedded_text)["input_ids"]) <= 128  # the context fits the window
    # the context's tokens come out of the text's budget: more, smaller chunks
    assert len(contextual) > len(plain)


def test_a_long_title_is_cut_to_a_share_of_the_window(embedder):
    title = "Annual report of the " + "very " * 200 + "long committee"
    pages = [PageText([Block(prose(400, seed=4))], title)]
    for size in (256, 64, 32):
        chunks = chunk_pages(pages, embedder.tokenizer, size, 8, contextual=True)
        assert chunks and all(c.context.endswith("…") and c.context.startswith("Annual report") for c in chunks)
        context_tokens = len(embedder.tokenizer(chunks[0].context, add_special_tokens=False)["input_ids"])
        assert context_tokens <= min(48, size // 4) + 1  # + the ellipsis
        assert all(len(embedder.tokenizer(c.embedded_text)["input_ids"]) <= size for c in chunks)
