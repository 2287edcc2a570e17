"""Contextual chunks (CONTEXTUAL_CHUNKS) are keyword-indexed with the context they are embedded with:
a word of the document's title or of a section heading finds the chunks under it through BM25 alone
(`POST /v1/search` in keyword mode), while the content and snippets returned stay the chunk's text.
Documents go through the real ingestion path (signed source PUTs, the real worker)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg

from app.db.migrations import apply_migrations
from app.db.pool import init_connection
from app.retrieval.service import snippet
from tests.answering.helpers import Bot, create_bot, put_chatbot
from tests.conftest import make_settings
from tests.ingestion.helpers import document, prose, put_source, wait_settled
from tests.support.migrations import database_before

# Title and headings made of words the prose (tests/ingestion/helpers.WORDS) never uses.
HANDBOOK = (
    "# Zanzibar handbook\n\n"
    + prose(500, seed=1)
    + "\n\n## Quokka returns\n\n"
    + prose(500, seed=2)
    + "\n\n## Shipping\n\n"
    + prose(300, seed=3)
)


async def ingest(client: Any, db: asyncpg.Connection, bot: Bot, payload: dict, source: uuid.UUID) -> None:
    r = await put_source(client, bot.id, source, payload)
    assert r.status_code == 202, r.text
    row = await wait_settled(db, source, payload["version"])
    assert row["state"] == "ready", row["error"]


async def keyword_results(client: Any, bot: Bot, query: str) -> list[dict]:
    r = await client.post(
        "/v1/search", json={"query": query, "mode": "keyword", "top_k": 100}, headers=bot.sk_headers()
    )
    assert r.status_code == 200, r.text
    return list(r.json()["results"])


async def chunk_rows(db: asyncpg.Connection, source: uuid.UUID) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT id, content, context, metadata->>'heading' AS heading FROM chunks WHERE source_id = $1 ORDER BY ordinal",
        source,
    )


async def test_a_title_or_heading_word_finds_contextual_chunks_by_keyword_and_content_stays_the_text(
    app_factory, db_url, db
):
    client = await app_factory(make_settings(database_url=db_url, contextual_chunks=True))
    bot, source = await create_bot(client), uuid.uuid4()
    await ingest(client, db, bot, document(1, HANDBOOK.encode(), "handbook.md"), source)
    rows = await chunk_rows(db, source)
    assert len(rows) > 3
    assert {r["context"] for r in rows} == {
        "Zanzibar handbook",
        "Zanzibar handbook — Quokka returns",
        "Zanzibar handbook — Shipping",
    }
    for r in rows:
        assert "zanzibar" not in r["content"].lower() and "quokka" not in r["content"].lower()

    # the title is in every chunk's context; the heading only in its section's
    assert {h["chunk_id"] for h in await keyword_results(client, bot, "zanzibar")} == {r["id"] for r in rows}
    quokka = await keyword_results(client, bot, "quokka")
    assert {h["chunk_id"] for h in quokka} == {r["id"] for r in rows if r["heading"] == "Quokka returns"}
    # what a user is shown is the chunk's text, without the context it was indexed with
    text = {r["id"]: r["content"] for r in rows}
    for hit in quokka:
        assert hit["content"] == text[hit["chunk_id"]]
        assert hit["metadata"]["heading"] == "Quokka returns"
    r = await client.post("/v1/chat", json={"message": "Quokka returns"}, headers=bot.pk_headers())
    assert r.status_code == 200, r.text
    sources = r.json()["sources"]
    assert sources
    assert {s["snippet"] for s in sources} <= {snippet(content) for content in text.values()}

    # the postings are those of the indexed text: context, separator, chunk text
    mismatched = await db.fetchval(
        """
        SELECT count(*) FROM chunks c
        WHERE c.source_id = $1 AND c.tsv IS DISTINCT FROM chunk_tsvector(c.ts_config, c.context || E'\\n\\n' || c.content)
        """,
        source,
    )
    assert mismatched == 0
    postings = await db.fetch(
        "SELECT chunk_id, term FROM bm25_postings WHERE chatbot_id = $1 ORDER BY chunk_id, term", bot.id
    )
    lexemes = await db.fetch(
        "SELECT c.id AS chunk_id, u.lexeme AS term FROM chunks c CROSS JOIN LATERAL unnest(c.tsv) AS u"
        " WHERE c.chatbot_id = $1 ORDER BY 1, 2",
        bot.id,
    )
    assert [tuple(p) for p in postings] == [tuple(x) for x in lexemes]


async def test_without_contextual_chunks_a_heading_word_alone_finds_nothing(app_factory, db_url, db):
    client = await app_factory(make_settings(database_url=db_url, contextual_chunks=False))
    bot, source = await create_bot(client), uuid.uuid4()
    await ingest(client, db, bot, document(1, HANDBOOK.encode(), "handbook.md"), source)
    rows = await chunk_rows(db, source)
    assert rows and {r["context"] for r in rows} == {""}
    assert await keyword_results(client, bot, "quokka") == []
    assert await keyword_results(client, bot, "zanzibar") == []
    assert await keyword_results(client, bot, "warranty")  # the text itself is indexed


async def test_with_contextual_chunks_a_rename_moves_the_keyword_index_to_the_new_title(app_factory, db_url, db):
    """A .txt has no title of its own: the source's name is the title in every chunk's context."""
    client = await app_factory(make_settings(database_url=db_url, contextual_chunks=True))
    bot, source = await create_bot(client), uuid.uuid4()
    data = prose(600).encode()
    await ingest(client, db, bot, document(1, data, "guide.txt", name="Zanzibar guide"), source)
    before = await chunk_rows(db, source)
    assert len(before) > 1 and {r["context"] for r in before} == {"Zanzibar guide"}
    assert len(await keyword_results(client, bot, "zanzibar")) == len(before)
    assert await keyword_results(client, bot, "quokka") == []

    await ingest(client, db, bot, document(2, data, "guide.txt", name="Quokka policy"), source)
    after = await chunk_rows(db, source)
    assert {r["context"] for r in after} == {"Quokka policy"}
    assert [r["content"] for r in after] == [r["content"] for r in before]  # the text is the document's
    assert await keyword_results(client, bot, "zanzibar") == []
    hits = await keyword_results(client, bot, "quokka")
    assert {h["chunk_id"] for h in hits} == {r["id"] for r in after}
    assert all(h["name"] == "Quokka policy" and "Quokka" not in h["content"] for h in hits)


async def test_a_language_change_re_indexes_the_context_in_the_new_language(app_factory, db_url, db):
    """English prose under a French title: the French stemmer conflates "cheval" with the title's
    "chevaux", the English one does not; the re-index after a language change covers the context."""
    client = await app_factory(make_settings(database_url=db_url, contextual_chunks=True))
    bot, source = await create_bot(client, language="en"), uuid.uuid4()
    await ingest(client, db, bot, document(1, prose(300).encode(), "guide.txt", name="Les chevaux"), source)
    ids = {r["id"] for r in await chunk_rows(db, source)}
    assert await keyword_results(client, bot, "cheval") == []

    bot.payload = {**bot.payload, "language": "fr"}
    await put_chatbot(client, bot.id, bot.payload)
    deadline = time.monotonic() + 120  # the re-index may run after the PUT's answer
    while {h["chunk_id"] for h in await keyword_results(client, bot, "cheval")} != ids:
        assert time.monotonic() < deadline, "the chunks were not re-indexed in French with their context"
        await asyncio.sleep(0.1)
    assert [
        r["ts_config"] for r in await db.fetch("SELECT DISTINCT ts_config FROM chunks WHERE source_id = $1", source)
    ] == ["french"]


async def test_the_migration_keeps_existing_chunks_tsv_and_postings(pg_cluster, embedder, tmp_path):
    """A database from before 0310 with chunks in two languages: the rewrite of `chunks` (tsv is
    re-created) fires no trigger, and leaves every tsv, posting and document length as it was."""
    conn = await asyncpg.connect(await database_before(pg_cluster, "0310", tmp_path))
    try:
        await init_connection(conn)
        texts = ["The horses gallop across the meadow.", "Les chevaux galopent dans la prairie.", "Returns: 30 days."]
        vectors = await embedder.embed(texts, purpose="test")
        bot = uuid.uuid4()
        for i, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
            await conn.execute(
                "INSERT INTO chunks (chatbot_id, source_id, source_version, ordinal, content, embedding, ts_config)"
                " VALUES ($1, $2, 1, 0, $3, $4, $5)",
                bot,
                uuid.uuid4(),
                text,
                vector,
                "french" if i == 1 else "english",
            )

        async def snapshot() -> tuple[list, list, list]:
            return (
                [tuple(r) for r in await conn.fetch("SELECT id, tsv::text FROM chunks ORDER BY id")],
                [tuple(r) for r in await conn.fetch("SELECT * FROM bm25_postings ORDER BY chunk_id, term")],
                [tuple(r) for r in await conn.fetch("SELECT * FROM bm25_docs ORDER BY chunk_id")],
            )

        before = await snapshot()
        assert len(before[1]) > 6
        assert (await apply_migrations(conn))[:2] == ["0310_chunk_context", "0311_bm25_covering_postings"]
        assert await snapshot() == before  # 0311's index rebuild keeps every posting too
        assert await conn.fetchval("SELECT array_agg(DISTINCT context) FROM chunks") == [""]

        # and the triggers follow a context written afterwards
        first = before[0][0][0]
        await conn.execute("UPDATE chunks SET context = 'Quokka guide' WHERE id = $1", first)
        terms = {r["term"] for r in await conn.fetch("SELECT term FROM bm25_postings WHERE chunk_id = $1", first)}
        assert {"quokka", "guid", "hors", "gallop"} <= terms
        assert await conn.fetchval("SELECT doc_len FROM bm25_docs WHERE chunk_id = $1", first) == 6
    finally:
        await conn.close()
