"""Retrieval: real BM25 (checked against a reference implementation), trigger-maintained index,
hybrid ranking, and full top_k for a small share of a large table (HNSW path + exact fallback)."""

import asyncio
import math
import uuid
from collections import Counter

import asyncpg
import numpy as np
import pytest

from app.db.migrations import apply_migrations
from app.db.pool import init_connection
from app.retrieval import repository
from tests.answering.helpers import HANDBOOK, create_bot, insert_chunks
from tests.answering.helpers import answering_settings as make_settings
from tests.support.migrations import database_before

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A fox hunts at night; foxes are quick and clever hunters.",
    "Dogs are loyal. The dog sleeps all day long, lazy dog.",
    "Quantum computers use qubits to compute.",
    "Brown bears and brown foxes live in the forest near the river, far from dogs and cats and towns.",
]


async def reference_bm25(db, corpus, query, k1, b):
    """BM25 straight from the definition, over Postgres' own lexemes."""
    docs = []
    for text in corpus:
        rows = await db.fetch("SELECT lexeme, positions FROM unnest(to_tsvector('english', $1))", text)
        docs.append({r["lexeme"]: len(r["positions"]) for r in rows})
    terms = {r["l"] for r in await db.fetch("SELECT lexeme AS l FROM unnest(to_tsvector('english', $1))", query)}
    n = len(docs)
    lengths = [sum(d.values()) for d in docs]
    avgdl = sum(lengths) / n
    df = Counter(t for d in docs for t in d if t in terms)
    scores = []
    for doc, length in zip(docs, lengths, strict=True):
        s = 0.0
        for t in terms:
            tf = doc.get(t, 0)
            if tf:
                idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
                s += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avgdl))
        scores.append(s)
    return scores


@pytest.mark.parametrize("query", ["quick fox", "lazy dogs", "brown fox dog", "qubits"])
async def test_keyword_scores_are_bm25(client, db, embedder, query):
    bot = await create_bot(client)
    other = await create_bot(client)
    ids = await insert_chunks(db, embedder, bot.id, CORPUS)
    await insert_chunks(db, embedder, other.id, CORPUS * 3 + ["fox " * 20])  # must not change bot's idf
    expected = await reference_bm25(db, CORPUS, query, 0.9, 0.4)
    r = await client.post("/v1/search", json={"query": query, "mode": "keyword", "top_k": 10}, headers=bot.sk_headers())
    got = {hit["chunk_id"]: hit["score"] for hit in r.json()["results"]}
    want = {cid: s for cid, s in zip(ids, expected, strict=True) if s > 0}
    assert got.keys() == want.keys()
    for cid, score in want.items():
        assert got[cid] == pytest.approx(score, rel=1e-4)
    ranked = [hit["chunk_id"] for hit in r.json()["results"]]
    assert ranked == sorted(want, key=lambda c: -want[c])


async def test_keyword_search_reads_postings_from_the_index_alone(client, db, embedder):
    """Migration 0311: a term's postings (tf and chunk length included) come from an index-only
    scan of bm25_postings' primary key once the table is vacuumed, not one heap visit each."""
    bot = await create_bot(client)
    await insert_chunks(db, embedder, bot.id, CORPUS * 40)
    await db.execute("VACUUM ANALYZE bm25_postings")
    sql, names = repository.ranked_sql("keyword", "exact")
    query = "quick brown fox"
    values = {"chatbot": bot.id, "query": query, "vector": embedder.encode([query])[0], "top_k": 10}
    values |= {"keyword_limit": 10, "k1": 0.9, "b": 0.4}
    async with db.transaction():
        await db.execute("SET LOCAL enable_seqscan = off")  # a 200-chunk table would be scanned whole
        plan = "\n".join(r[0] for r in await db.fetch("EXPLAIN " + sql, *(values[n] for n in names)))
    scans = [line.strip() for line in plan.splitlines() if "on bm25_postings" in line]
    assert scans and all(line.startswith("->  Index Only Scan") for line in scans), plan


async def test_a_large_chatbots_keyword_search_reads_only_the_query_terms_postings(client, db):
    """The document frequencies are grouped by the query's terms (at most a few), not by the
    postings' terms: grouped by the latter, PostgreSQL estimated thousands of df rows for a chatbot
    holding most of the postings and planned a sequential scan of all of them (a 50,000-chunk
    chatbot's search took 200-300 ms instead of 15; bench/search_statement.py)."""
    bot, other = await create_bot(client), await create_bot(client)
    rng = np.random.default_rng(5)
    vocabulary = [f"term{i}" for i in range(300)]
    vector = np.zeros(384, dtype=np.float32)
    vector[0] = 1
    records = [
        (chatbot, uuid.uuid4(), 1, i, " ".join(rng.choice(vocabulary, 30)), vector)
        for chatbot, count in ((bot.id, 2000), (other.id, 50))
        for i in range(count)
    ]
    columns = ["chatbot_id", "source_id", "source_version", "ordinal", "content", "embedding"]
    await db.copy_records_to_table("chunks", records=records, columns=columns)
    await db.execute("VACUUM ANALYZE")
    query = " ".join(vocabulary[:6])
    for scoring in ("keyword", "convex", "rrf"):
        sql, names = repository.ranked_sql(scoring, "exact")
        values = {"chatbot": bot.id, "query": query, "vector": vector, "top_k": 10, "dense_limit": 10}
        values |= {"keyword_limit": 10, "k1": 0.9, "b": 0.4, "dense_weight": 0.5}
        plan = "\n".join(r[0] for r in await db.fetch("EXPLAIN " + sql, *(values[n] for n in names)))
        scans = [line.strip() for line in plan.splitlines() if "on bm25_postings" in line]
        assert scans and all(line.startswith("->  Index Only Scan") for line in scans), plan


async def test_searches_run_generic_plans_that_reach_a_small_chatbot_through_the_indexes(client, db):
    """Searches take their connections from a pool that runs generic plans (app/db/pool.py): one
    plan per search statement, whatever the chatbot. Beside a chatbot holding nearly every row, that
    plan must still reach a small chatbot's rows through the indexes rather than scan the tables
    (migration 0312: without it PostgreSQL estimated half of each table per chatbot here)."""
    services = client.services
    async with services.retriever.pool.acquire() as conn:
        assert await conn.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
    async with services.pool.acquire() as conn:  # every other statement: PostgreSQL's own choice
        assert await conn.fetchval("SHOW plan_cache_mode") == "auto"
    big, small = await create_bot(client), await create_bot(client)
    rng = np.random.default_rng(6)
    vocabulary = [f"term{i}" for i in range(300)]
    vectors = rng.standard_normal((2050, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    records = [
        (big.id if i < 2000 else small.id, uuid.uuid4(), 1, i, " ".join(rng.choice(vocabulary, 30)), vectors[i])
        for i in range(2050)
    ]
    columns = ["chatbot_id", "source_id", "source_version", "ordinal", "content", "embedding"]
    await db.execute("DROP INDEX chunks_embedding_hnsw_idx")  # bulk load, then build it once
    await db.copy_records_to_table("chunks", records=records, columns=columns)
    await db.execute("CREATE INDEX chunks_embedding_hnsw_idx ON chunks USING hnsw (embedding vector_cosine_ops)")
    sources = [(r[1], r[0], 1, "document", f"doc {i}", "ready", 1) for i, r in enumerate(records)]
    await db.copy_records_to_table(
        "sources",
        records=sources,
        columns=["id", "chatbot_id", "version", "kind", "name", "state", "indexed_version"],
    )
    await db.execute("VACUUM ANALYZE")
    statements = {
        (scoring, source): repository.ranked_sql(scoring, source)
        for scoring in ("dense", "keyword", "convex", "rrf")
        for source in ("exact", "cached")  # the API's copy of the vectors (app/retrieval/vectors.py)
    }
    plans = {}
    # EXPLAIN (GENERIC_PLAN) of the statement text itself: bound values (the extended protocol)
    # would make PostgreSQL plan for them, which is not the plan searches run.
    await db.execute(
        "CREATE FUNCTION pg_temp.generic_plan(statement text) RETURNS SETOF text LANGUAGE plpgsql"
        " AS $$ BEGIN RETURN QUERY EXECUTE 'EXPLAIN (GENERIC_PLAN) ' || statement; END $$"
    )
    for name, (sql, _) in statements.items():
        plans[name] = "\n".join(r[0] for r in await db.fetch("SELECT pg_temp.generic_plan($1)", sql))
    for name, plan in plans.items():
        assert "chatbot_id = $" in plan, plan  # generic: the chatbot is a parameter, not one chatbot
        scans = [line.strip() for line in plan.splitlines() if "Seq Scan on" in line]
        # two rows each: read whole
        tiny = (" on chatbots ", " on chunk_set_versions ", " on bm25_stats ")
        assert all(any(table in line for table in tiny) for line in scans), (name, plan)
        assert "bm25_docs" not in plan, (name, plan)  # N and avgdl come from bm25_stats (0314)


async def test_large_chatbots_searches_are_planned_for_them_and_small_ones_share_the_generic_plan(
    app_factory, db_url, db
):
    """On the search pool (one connection here, so its statement counts are every search's), a
    small chatbot's searches run the generic plans; a large chatbot's (above
    RETRIEVAL_EXACT_MAX_CHUNKS: HNSW) are planned for it, keyword-only searches too: its own large
    share of the tables is what makes HNSW, and the scans that suit it, the plan."""
    settings = make_settings(database_url=db_url, retrieval_exact_max_chunks=500, db_search_pool_max=1)
    client = await app_factory(settings)
    limits = {"key_per_minute": 10_000, "ip_per_minute": 10_000}
    big, small = await create_bot(client, rate_limits=limits), await create_bot(client, rate_limits=limits)
    await db.execute("DROP INDEX chunks_embedding_hnsw_idx")
    await bulk_random_chunks(db, big.id, 2000, np.random.default_rng(7))
    await bulk_random_chunks(db, small.id, 50, np.random.default_rng(8))
    await db.execute("CREATE INDEX chunks_embedding_hnsw_idx ON chunks USING hnsw (embedding vector_cosine_ops)")
    await db.execute("VACUUM ANALYZE")
    searches = {(bot, mode): 0 for bot in (big, small) for mode in ("hybrid", "keyword", "dense")}
    for (bot, mode), _ in searches.items():
        for query in ("synthetic passage", "topic 5"):
            r = await client.post("/v1/search", json={"query": query, "mode": mode}, headers=bot.sk_headers())
            assert r.status_code == 200 and r.json()["results"], r.text
    pool = client.services.retriever.pool
    async with pool.acquire() as conn:
        plans = {
            row["statement"]: (row["generic_plans"], row["custom_plans"])
            for row in await conn.fetch("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
        }
    fusion = settings.retrieval_fusion
    # small: the exact statements, generic plans only
    assert plans[repository.ranked_sql(fusion, "exact")[0]] == (2, 0)
    assert plans[repository.ranked_sql("dense", "exact")[0]] == (2, 0)
    # keyword: the same statement for both, generic for the small chatbot, custom for the large one
    assert plans[repository.ranked_sql("keyword", "exact")[0]] == (2, 2)
    # large: HNSW, then the statement given its ids, custom plans only
    assert plans[repository.DENSE_APPROXIMATE_SQL] == (0, 4)
    assert plans[repository.ranked_sql(fusion, "given")[0]] == (0, 2)
    assert plans[repository.ranked_sql("dense", "given")[0]] == (0, 2)


async def test_index_follows_deletes_and_updates(client, db, embedder):
    bot = await create_bot(client)
    ids = await insert_chunks(db, embedder, bot.id, CORPUS)
    postings = await db.fetchval("SELECT count(*) FROM bm25_postings WHERE chatbot_id = $1", bot.id)
    assert postings > 20
    await db.execute("UPDATE chunks SET content = 'zebras graze on the savanna' WHERE id = $1", ids[3])
    r = await client.post("/v1/search", json={"query": "zebra", "mode": "keyword"}, headers=bot.sk_headers())
    assert [h["chunk_id"] for h in r.json()["results"]] == [ids[3]]
    r = await client.post("/v1/search", json={"query": "qubits", "mode": "keyword"}, headers=bot.sk_headers())
    assert r.json()["results"] == []
    await db.execute("DELETE FROM chunks WHERE chatbot_id = $1", bot.id)
    assert await db.fetchval("SELECT count(*) FROM bm25_postings WHERE chatbot_id = $1", bot.id) == 0
    assert await db.fetchval("SELECT count(*) FROM bm25_docs WHERE chatbot_id = $1", bot.id) == 0


async def bm25_stats(db) -> dict:
    rows = await db.fetch("SELECT chatbot_id, docs, total_len FROM bm25_stats")
    return {r["chatbot_id"]: (r["docs"], r["total_len"]) for r in rows}


async def bm25_recount(db) -> dict:
    rows = await db.fetch("SELECT chatbot_id, count(*) AS n, sum(doc_len) AS len FROM bm25_docs GROUP BY chatbot_id")
    return {r["chatbot_id"]: (r["n"], r["len"]) for r in rows}


async def test_bm25_statistics_follow_every_change_to_the_chunks(client, db, embedder):
    """Migration 0314: N and the total chunk length of each chatbot, kept by triggers, equal a
    recount of bm25_docs after inserts, content updates (a re-index), deletes, and direct updates of
    bm25_docs; a chatbot without chunks has no row."""
    bot, other = await create_bot(client), await create_bot(client)
    ids = await insert_chunks(db, embedder, bot.id, CORPUS)
    await insert_chunks(db, embedder, other.id, CORPUS[:2])
    stats = await bm25_stats(db)
    assert stats == await bm25_recount(db)
    assert stats[bot.id][0] == 5 and stats[other.id][0] == 2
    await db.execute("UPDATE chunks SET content = 'zebras graze' WHERE id = $1", ids[0])
    assert await bm25_stats(db) == await bm25_recount(db)
    await db.execute("UPDATE bm25_docs SET doc_len = doc_len + 3 WHERE chunk_id = ANY($1::bigint[])", ids[:2])
    assert await bm25_stats(db) == await bm25_recount(db)
    await db.execute("DELETE FROM chunks WHERE id = ANY($1::bigint[])", ids[1:3])
    assert (await bm25_stats(db))[bot.id][0] == 3
    assert await bm25_stats(db) == await bm25_recount(db)
    await db.execute("DELETE FROM chunks WHERE chatbot_id = $1", bot.id)
    assert bot.id not in await bm25_stats(db)
    assert await bm25_stats(db) == await bm25_recount(db)


async def test_bm25_statistics_of_concurrent_writers_add_up(client, db, db_url, embedder):
    """Two transactions writing the same chatbot's chunks at once: the second waits for the first
    (it would anyway, for the chunk set's version, 0313) and both counts are kept."""
    bot = await create_bot(client)
    vectors = await embedder.embed(CORPUS, purpose="test")
    first, second = await asyncpg.connect(db_url), await asyncpg.connect(db_url)
    try:
        for conn in (first, second):
            await init_connection(conn)

        async def write(conn, texts, hold: asyncio.Event | None) -> None:
            async with conn.transaction():
                for text, vector in zip(texts, vectors, strict=False):
                    await conn.execute(
                        "INSERT INTO chunks (chatbot_id, source_id, source_version, ordinal, content, embedding)"
                        " VALUES ($1, $2, 1, 0, $3, $4)",
                        bot.id,
                        uuid.uuid4(),
                        text,
                        vector,
                    )
                if hold is not None:
                    await hold.wait()

        release = asyncio.Event()
        holding = asyncio.create_task(write(first, CORPUS[:3], release))
        deadline = asyncio.get_running_loop().time() + 30
        while (
            await db.fetchval(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                " WHERE c.relname = 'bm25_stats' AND l.mode = 'RowExclusiveLock'"
            )
            == 0
        ):
            assert asyncio.get_running_loop().time() < deadline, "the first writer never wrote its statistics"
            await asyncio.sleep(0.01)
        waiting = asyncio.create_task(write(second, CORPUS[3:], None))
        while (
            await db.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            == 0
        ):
            assert asyncio.get_running_loop().time() < deadline, "the second writer did not wait for the first"
            await asyncio.sleep(0.01)
        assert not waiting.done()
        release.set()
        await asyncio.gather(holding, waiting)
    finally:
        await first.close()
        await second.close()
    assert (await bm25_stats(db))[bot.id][0] == 5
    assert await bm25_stats(db) == await bm25_recount(db)


async def test_the_bm25_statistics_migration_counts_existing_chunks(pg_cluster, embedder, tmp_path):
    """A database from before 0314 with chunks in two chatbots: the migration's backfill gives
    each the recount of its bm25_docs, and searches' scores are the same as before."""
    conn = await asyncpg.connect(await database_before(pg_cluster, "0314", tmp_path))
    try:
        await init_connection(conn)
        bots = [uuid.uuid4(), uuid.uuid4()]
        vectors = await embedder.embed(CORPUS, purpose="test")
        for i, (text, vector) in enumerate(zip(CORPUS, vectors, strict=True)):
            await conn.execute(
                "INSERT INTO chunks (chatbot_id, source_id, source_version, ordinal, content, embedding)"
                " VALUES ($1, $2, 1, 0, $3, $4)",
                bots[i % 2],
                uuid.uuid4(),
                text,
                vector,
            )
        avgdl = "SELECT avg(doc_len)::float8 FROM bm25_docs WHERE chatbot_id = $1"
        before = [await conn.fetchval(avgdl, bot) for bot in bots]
        assert (await apply_migrations(conn))[0] == "0314_bm25_stats"
        assert await bm25_stats(conn) == await bm25_recount(conn)
        assert set(await bm25_stats(conn)) == set(bots)
        stats_avgdl = "SELECT (total_len::numeric / docs)::float8 FROM bm25_stats WHERE chatbot_id = $1"
        assert [await conn.fetchval(stats_avgdl, bot) for bot in bots] == before  # bit for bit
    finally:
        await conn.close()


async def test_hybrid_finds_both_exact_terms_and_paraphrases(client, db, embedder):
    bot = await create_bot(client)
    await insert_chunks(db, embedder, bot.id, [*HANDBOOK, "Error code E-4711 means the skate battery is overheating."])
    r = await client.post("/v1/search", json={"query": "E-4711", "top_k": 3}, headers=bot.sk_headers())
    assert "E-4711" in r.json()["results"][0]["content"]
    r = await client.post("/v1/search", json={"query": "can I get my money back", "top_k": 3}, headers=bot.sk_headers())
    assert r.json()["results"][0]["content"].startswith("Returns:")
    r = await client.post(
        "/v1/search", json={"query": "how fast do the rocket skates go", "top_k": 3}, headers=bot.sk_headers()
    )
    assert "40 km/h" in r.json()["results"][0]["content"]


async def bulk_random_chunks(db, chatbot_id, count, rng):
    vectors = rng.standard_normal((count, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    source = uuid.uuid4()
    records = [
        (chatbot_id, source, 1, i, f"synthetic passage {i} about topic {i % 97}", vectors[i]) for i in range(count)
    ]
    await db.copy_records_to_table(
        "chunks",
        records=records,
        columns=["chatbot_id", "source_id", "source_version", "ordinal", "content", "embedding"],
    )


async def test_a_chatbot_with_one_percent_of_the_chunks_gets_full_exact_top_k(app_factory, db_url, db):
    # Force the approximate path for everything above 50 chunks, as for large chatbots in production.
    client = await app_factory(make_settings(database_url=db_url, retrieval_exact_max_chunks=20, hnsw_ef_search=40))
    rng = np.random.default_rng(3)
    big = await create_bot(client)
    small = await create_bot(client, rate_limits={"key_per_minute": 10_000, "ip_per_minute": 10_000})
    # Bulk load as a restore would: without the index, then build it once (much faster than 5,000
    # single-row HNSW inserts on 2 cores).
    await db.execute("DROP INDEX chunks_embedding_hnsw_idx")
    await bulk_random_chunks(db, big.id, 4_950, rng)
    await bulk_random_chunks(db, small.id, 50, rng)
    await db.execute("CREATE INDEX chunks_embedding_hnsw_idx ON chunks USING hnsw (embedding vector_cosine_ops)")
    await db.execute("ANALYZE chunks")
    retriever = client.services.retriever
    calls = []
    original = repository.dense_approximate

    async def spy(*args, **kwargs):
        hits = await original(*args, **kwargs)
        calls.append(len(hits))
        return hits

    repository.dense_approximate = spy
    try:
        embedder = retriever.embedder
        for query in ["topic 5", "synthetic passage", "anything at all", "refunds", "battery life"]:
            r = await client.post(
                "/v1/search", json={"query": query, "top_k": 10, "mode": "dense"}, headers=small.sk_headers()
            )
            got = [h["chunk_id"] for h in r.json()["results"]]
            vector = await embedder.embed_one(query)
            exact = await db.fetch(
                "SELECT id FROM chunks WHERE chatbot_id = $1 ORDER BY (embedding <=> $2) + 0, id LIMIT 10",
                small.id,
                vector,
            )
            assert got == [row["id"] for row in exact]
            r = await client.post("/v1/search", json={"query": query, "top_k": 10}, headers=small.sk_headers())
            assert len(r.json()["results"]) == 10
    finally:
        repository.dense_approximate = original
    assert calls, "the approximate (HNSW) path was not exercised"


async def test_query_vectors_are_cached_by_the_question_as_the_model_sees_it(embedder):
    """Case and runs of spaces change nothing for the uncased model, so they share a cached vector;
    other words do not."""
    from app.retrieval.service import Retriever

    retriever = Retriever(None, embedder, make_settings())  # embedding only: no pool needed
    first = await retriever.embed_query("How do I return a product?")
    same = await retriever.embed_query("  how do I   RETURN a product? ")
    assert same is first  # from the cache: the model did not run again
    fresh = await embedder.embed_one("  how do I   RETURN a product? ")
    assert np.allclose(fresh, first, atol=1e-6)  # and the model agrees the texts are one
    other = await retriever.embed_query("How do I return a parcel?")
    assert other is not first and not np.allclose(other, first, atol=1e-3)


async def test_search_connections_go_back_to_their_pool_without_a_reset_and_keep_no_setting(
    app_factory, db_url, db, embedder
):
    """A search changes no session state: its settings are SET LOCAL, inside a transaction. So the
    search pool returns a connection without asyncpg's reset statement (advisory unlocks, CLOSE
    ALL, UNLISTEN, RESET ALL: a round trip per search), and no setting outlives its search, for a
    large chatbot's search (HNSW settings) as for a small one's."""
    client = await app_factory(
        make_settings(database_url=db_url, db_search_pool_max=1, db_pool_min=1, retrieval_exact_max_chunks=3)
    )
    large, small = await create_bot(client), await create_bot(client)
    await insert_chunks(db, embedder, large.id, CORPUS)
    await insert_chunks(db, embedder, small.id, CORPUS[:2])
    pool = client.services.retriever.pool
    statements: list[str] = []

    def log(query) -> None:
        statements.append(query.query)

    settings = "SELECT current_setting('hnsw.ef_search', true), current_setting('plan_cache_mode')"
    async with pool.acquire() as conn:  # the pool's one connection
        conn.add_query_logger(log)
    try:
        for bot in (large, small, large):
            r = await client.post("/v1/search", json={"query": "quick fox", "top_k": 3}, headers=bot.sk_headers())
            assert r.status_code == 200 and r.json()["results"], r.text
        assert any("hnsw.ef_search" in sql for sql in statements)  # the large chatbot's search ran HNSW
        assert not [sql for sql in statements if "RESET ALL" in sql or "UNLISTEN" in sql]
        async with pool.acquire() as conn:  # pgvector's default, not the search's 100; generic plans
            assert tuple(await conn.fetchrow(settings)) == ("40", "force_generic_plan")
            transaction = conn.transaction()  # left open: the release still rolls it back
            await transaction.start()
            await conn.execute("SET LOCAL hnsw.ef_search = 77")
        async with pool.acquire() as conn:
            assert tuple(await conn.fetchrow(settings)) == ("40", "force_generic_plan")
            assert not conn.is_in_transaction()
    finally:
        async with pool.acquire() as conn:
            conn.remove_query_logger(log)
