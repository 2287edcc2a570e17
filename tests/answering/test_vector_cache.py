"""The API's copies of chatbots' vectors and BM25 postings (app/retrieval/vectors.py): results equal
PostgreSQL's exact scan and BM25, a change to the chunks or to the chatbot's language is seen by
the very next search, and the memory budget holds."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import REGISTRY

from app.retrieval import repository, vectors
from tests.answering.helpers import answering_settings as make_settings
from tests.answering.helpers import create_bot, insert_chunks

LIMITS = {"key_per_minute": 10_000, "ip_per_minute": 10_000}


@pytest.fixture(autouse=True)
def load_without_pauses(monkeypatch):
    monkeypatch.setattr(vectors, "LOAD_SHARE", 1.0)


async def copy_chunks(db, chatbot_id, vectors_, texts=None):
    source = uuid.uuid4()
    texts = texts or [f"passage {i} on subject {i % 37}" for i in range(len(vectors_))]
    records = [(chatbot_id, source, 1, i, texts[i], vectors_[i]) for i in range(len(vectors_))]
    columns = ["chatbot_id", "source_id", "source_version", "ordinal", "content", "embedding"]
    await db.copy_records_to_table("chunks", records=records, columns=columns)


def unit(rows):
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


async def exact_ids(db, chatbot_id, vector, limit):
    rows = await db.fetch(
        "SELECT id FROM chunks WHERE chatbot_id = $1 ORDER BY (embedding <=> $2) + 0, id LIMIT $3",
        chatbot_id,
        vector,
        limit,
    )
    return [r["id"] for r in rows]


async def search(client, bot, query, mode="dense", top_k=10):
    r = await client.post("/v1/search", json={"query": query, "mode": mode, "top_k": top_k}, headers=bot.sk_headers())
    assert r.status_code == 200, r.text
    return [hit["chunk_id"] for hit in r.json()["results"]]


async def cached_statement_runs(client, scoring):
    async with client.services.retriever.pool.acquire() as conn:
        return await conn.fetchval(
            "SELECT generic_plans + custom_plans FROM pg_prepared_statements WHERE statement = $1",
            repository.ranked_sql(scoring, "cached")[0],
        )


async def test_searches_through_the_copy_return_the_exact_scans_results_near_ties_included(
    app_factory, db_url, db, embedder
):
    """Around the query's 10th neighbour sit 60 chunks whose cosines differ by float32 rounding
    only, and 20 identical ones: the copy's candidates must still give PostgreSQL's exact order."""
    client = await app_factory(
        make_settings(database_url=db_url, retrieval_vector_cache_min_chunks=100, db_search_pool_max=1)
    )
    bot = await create_bot(client, rate_limits=LIMITS)
    rng = np.random.default_rng(11)
    queries = ["battery life of the skates", "how do refunds work", "opening hours"]
    query_vectors = [await client.services.retriever.embed_query(q) for q in queries]  # the engine's own
    rows = [rng.standard_normal(384) for _ in range(2400)]
    for q in query_vectors:  # per query: 5 clear winners, 60 near-ties, 20 identical
        tangent = unit(rng.standard_normal(384) - q * (rng.standard_normal(384) @ q))
        rows += [q * 0.9 + tangent * (0.1 + 0.01 * i) for i in range(5)]
        rows += [q * 0.8 + tangent * 0.3 + rng.standard_normal(384) * 1e-7 for _ in range(60)]
        rows += [q * 0.8 + tangent * 0.3] * 20
    await copy_chunks(db, bot.id, unit(rows))
    await db.execute("VACUUM ANALYZE chunks")

    await search(client, bot, queries[0])  # the first search starts the load
    await client.services.retriever.vectors.wait_loaded()
    assert client.services.retriever.vectors.matrix(bot.id, len(rows)) is not None
    for query, vector in zip(queries, query_vectors, strict=True):
        for top_k in (10, 30):
            assert await search(client, bot, query, top_k=top_k) == await exact_ids(db, bot.id, vector, top_k)
        assert len(await search(client, bot, query, mode="hybrid")) == 10
    assert await cached_statement_runs(client, "dense") == 6
    assert await cached_statement_runs(client, client.services.retriever.settings.retrieval_fusion) == 3


async def test_a_change_to_the_chunks_is_seen_by_the_next_search(app_factory, db_url, db, embedder):
    """Inserted and deleted chunks count from the next search on, before the copy is reloaded."""
    client = await app_factory(make_settings(database_url=db_url, retrieval_vector_cache_min_chunks=100))
    bot = await create_bot(client, rate_limits=LIMITS)
    await copy_chunks(db, bot.id, unit(np.random.default_rng(12).standard_normal((300, 384))))
    query = "where is the nearest store"
    cache = client.services.retriever.vectors
    await search(client, bot, query)
    await cache.wait_loaded()
    loaded = cache.matrix(bot.id, 300)
    assert loaded is not None

    [added] = await insert_chunks(db, embedder, bot.id, [query])  # the best possible match
    assert (await search(client, bot, query))[0] == added
    await cache.wait_loaded()  # the stale copy was dropped and a new one loaded
    reloaded = cache.matrix(bot.id, 301)
    assert reloaded is not None and reloaded.version > loaded.version and added in reloaded.ids
    assert (await search(client, bot, query))[0] == added

    await db.execute("DELETE FROM chunks WHERE id = $1", added)
    assert added not in await search(client, bot, query, mode="hybrid")
    vector = await embedder.embed_one(query)
    assert await search(client, bot, query) == await exact_ids(db, bot.id, vector, 10)


async def test_the_chunk_set_version_follows_every_change_to_a_chatbots_vectors(client, db, embedder):
    a, b = await create_bot(client), await create_bot(client)

    async def versions():
        rows = await db.fetch("SELECT chatbot_id, version FROM chunk_set_versions")
        found = {r["chatbot_id"]: r["version"] for r in rows}
        return found.get(a.id, 0), found.get(b.id, 0)

    assert await versions() == (0, 0)
    ids = await insert_chunks(db, embedder, a.id, ["one", "two"])  # two statements
    assert await versions() == (2, 0)
    await insert_chunks(db, embedder, b.id, ["three"])
    await db.execute("UPDATE chunks SET ts_config = 'simple'")  # a language change: postings (0315)
    assert await versions() == (3, 2)
    await db.execute("UPDATE chunks SET embedding = embedding WHERE id = $1", ids[0])
    assert await versions() == (4, 2)
    await db.execute("UPDATE chunks SET ts_config = 'simple' WHERE false")  # nothing updated: no bump
    assert await versions() == (4, 2)
    await db.execute("DELETE FROM chunks")  # both chatbots, one statement
    assert await versions() == (5, 3)
    await db.execute("DELETE FROM chunks")  # nothing deleted: an empty transition table, no row
    assert await versions() == (5, 3)


def literal(value):
    if isinstance(value, np.ndarray):
        return "'[" + ",".join(repr(float(x)) for x in value) + "]'::vector"
    if isinstance(value, list):
        return "ARRAY[" + ",".join(str(int(x)) for x in value) + "]::bigint[]"
    if isinstance(value, str | uuid.UUID):
        return "'" + str(value).replace("'", "''") + "'"
    return repr(value)


async def test_the_copy_is_checked_in_the_statement_and_its_candidates_read_by_id(client, db):
    """Under the generic plan searches run (the search pool's, app/db/pool.py), beside another
    chatbot: fresh, PostgreSQL reads only the given candidates, by id (the scan's branch is never
    executed); stale, it scans the chatbot, and says so."""
    bot, other = await create_bot(client), await create_bot(client)
    rng = np.random.default_rng(13)
    await copy_chunks(db, bot.id, unit(rng.standard_normal((2000, 384))))
    await copy_chunks(db, other.id, unit(rng.standard_normal((1000, 384))))
    await db.execute("VACUUM ANALYZE")
    version = await db.fetchval("SELECT version FROM chunk_set_versions WHERE chatbot_id = $1", bot.id)
    vector = unit(rng.standard_normal(384))
    sql, names = repository.ranked_sql("dense", "cached")
    values = {"chatbot": bot.id, "query": "", "vector": vector, "top_k": 10, "dense_limit": 10}
    values |= {"keyword_limit": 10, "k1": 0.9, "b": 0.4, "dense_weight": 0.5, "cache_ts_config": "english"}
    given = await exact_ids(db, bot.id, vector, 12)
    async with client.services.retriever.pool.acquire() as conn:
        assert await conn.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
        await conn.execute("PREPARE search AS " + sql)
        for cache_version, fresh in ((version, True), (version - 1, False)):
            args = values | {"dense_ids": given[2:], "cache_version": cache_version}
            execute = "EXECUTE search(" + ", ".join(literal(args[n]) for n in names) + ")"
            rows = await conn.fetch(execute)
            assert [r["cache_fresh"] for r in rows] == [fresh] * 10
            assert [r["id"] for r in rows] == (given[2:] if fresh else given[:10])
            plan = [r[0] for r in await conn.fetch("EXPLAIN (ANALYZE, COSTS OFF) " + execute)]
            assert any("chatbot_id = $" in line for line in plan)  # the generic plan
            gates = [i for i, line in enumerate(plan) if "One-Time Filter:" in line]
            assert len(gates) == 2, plan
            executed = {"NOT" in plan[i]: "never executed" not in plan[i + 1] for i in gates}
            assert executed == {False: fresh, True: not fresh}, plan  # {given branch, scan branch}
            chatbot_scans = [line for line in plan if "chunks_chatbot_idx" in line]
            assert all("never executed" in line for line in chatbot_scans) == fresh, plan
        await conn.execute("DEALLOCATE search")


async def test_copies_stay_within_the_budget_least_recently_used_out(app_factory, db_url, db):
    """Budget for one chatbot of 1,000 chunks: searching a second evicts the first; a chatbot too
    large for the budget is never loaded, and its searches are PostgreSQL's."""
    settings = make_settings(
        database_url=db_url, retrieval_vector_cache_min_chunks=500, retrieval_vector_cache_mb=2
    )  # 2 MiB: 1,000 x (384 x 4 + 8) bytes fit once, 1,400 do not
    client = await app_factory(settings)
    rng = np.random.default_rng(14)
    first, second, large, small = [await create_bot(client, rate_limits=LIMITS) for _ in range(4)]
    for bot, count in ((first, 1000), (second, 1000), (large, 1400), (small, 400)):
        await copy_chunks(db, bot.id, unit(rng.standard_normal((count, 384))))
    cache = client.services.retriever.vectors
    for bot in (first, second, large, small):
        await search(client, bot, "anything")
        await cache.wait_loaded()
    assert cache.matrix(second.id, 1000) is not None
    assert cache.matrix(large.id, 1400) is None and cache.matrix(small.id, 400) is None
    await cache.wait_loaded()  # nothing was started for them
    assert cache.matrix(large.id, 1400) is None and cache.matrix(small.id, 400) is None
    assert cache.matrix(first.id, 1000) is None  # evicted by the second; this starts its load again
    await cache.wait_loaded()
    assert cache.matrix(first.id, 1000) is not None
    assert cache.matrix(second.id, 1000) is None


def synthetic_matrix(n, dim=384, seed=7):
    """A copy of `n` random unit vectors (ids 1..n), without postings."""
    vectors_ = unit(np.random.default_rng(seed).standard_normal((n, dim)))
    empty = np.zeros(0, dtype=np.int64)
    rows = repository.ChunkCopyRows(
        1, "english", np.arange(1, n + 1, dtype=np.int64), vectors_, np.ones(n), float(n), 1.0, [], empty, empty, empty
    )
    return vectors.matrix_of(rows), vectors_


def scan_samples():
    return [REGISTRY.get_sample_value(f"retrieval_vector_scan_queries_{s}") or 0.0 for s in ("count", "sum")]


async def test_concurrent_searches_of_a_copy_share_one_product_and_each_gets_its_own_candidates():
    import asyncio

    matrix, vectors_ = synthetic_matrix(3000)
    cache = vectors.VectorCache(None, budget_bytes=1 << 30, min_chunks=1, dimensions=384)
    queries = unit(np.random.default_rng(8).standard_normal((12, 384)))
    queries[3] = vectors_[41]  # one query is a chunk's own vector
    scans, searches = scan_samples()

    tasks = [asyncio.create_task(cache.candidates(matrix, q, 50)) for q in queries]
    await asyncio.sleep(0)  # every search is waiting for the same scan
    tasks[5].cancel()  # a search given up before the scan runs takes no part in it
    done = await asyncio.gather(*tasks, return_exceptions=True)

    assert isinstance(done[5], asyncio.CancelledError)
    assert scan_samples() == [scans + 1, searches + 11]
    exact = vectors_.astype(np.float64) @ queries.astype(np.float64).T
    for i, found in enumerate(done):
        if i == 5:
            continue
        assert found == matrix.candidates(queries[i], 50)
        assert set(np.argsort(-exact[:, i], kind="stable")[:50] + 1) <= set(found)  # the exact top 50
        assert len(found) < 60
    assert 42 in done[3]
    # a later search is a scan of its own, and a limit beyond the copy scans nothing
    assert await cache.candidates(matrix, queries[0], 50) == done[0]
    assert await cache.candidates(matrix, queries[0], 3000) == list(range(1, 3001))
    assert scan_samples() == [scans + 2, searches + 12]


async def test_the_api_runs_numpys_blas_on_one_thread(client):
    """The copies' products are small; OpenBLAS's idle threads would spin after each (app/main.py)."""
    from threadpoolctl import threadpool_info

    blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert blas and all(pool["num_threads"] == 1 for pool in blas)


async def test_loads_run_one_at_a_time_and_pause_after_each(app_factory, db_url, db, monkeypatch):
    """More chatbots searched than copies loaded: one load, then a pause proportional to its
    length (LOAD_SHARE), during which other chatbots' searches start none and are PostgreSQL's."""
    monkeypatch.setattr(vectors, "LOAD_SHARE", 1e-6)  # a pause of a million times the load
    client = await app_factory(make_settings(database_url=db_url, retrieval_vector_cache_min_chunks=100))
    rng = np.random.default_rng(15)
    bots = [await create_bot(client, rate_limits=LIMITS) for _ in range(3)]
    for bot in bots:
        await copy_chunks(db, bot.id, unit(rng.standard_normal((200, 384))))
    cache = client.services.retriever.vectors
    for bot in bots:
        await search(client, bot, "anything")
    await cache.wait_loaded()
    for bot in bots[1:]:
        vector = await client.services.retriever.embed_query("anything")
        assert await search(client, bot, "anything") == await exact_ids(db, bot.id, vector, 10)
    await cache.wait_loaded()
    assert [cache.matrix(bot.id, 200) is not None for bot in bots] == [True, False, False]


def paragraphs() -> list[str]:
    """Real prose: the paragraphs of this repository's documentation."""
    docs = Path(__file__).resolve().parents[2] / "docs"
    found = [" ".join(p.split()) for f in sorted(docs.glob("*.md")) for p in f.read_text().split("\n\n")]
    return [p for p in found if len(p.split()) >= 8]


async def loaded_copy(client, bot, count):
    cache = client.services.retriever.vectors
    await search(client, bot, "anything")  # starts the load
    await cache.wait_loaded()
    matrix = cache.matrix(bot.id, count)
    assert matrix is not None
    return matrix


def assert_same_ranking(rows, reference):
    """The same chunks in the same order with the same scores, to the last bits of a score: chunks
    whose scores agree that closely (exact duplicates among them) may be ordered either way, as they
    are by two plans of one statement that add a chunk's per-term scores in different orders."""
    assert len(rows) == len(reference)
    pairs = list(zip(rows, reference, strict=True))
    close = [a["score"] == pytest.approx(b["score"], rel=1e-12, abs=1e-15) for a, b in pairs]
    assert all(close), [(a["id"], a["score"], b["id"], b["score"]) for a, b in pairs]
    for a, b in zip(rows, reference, strict=True):
        assert a["keyword"] == pytest.approx(b["keyword"], rel=1e-12, abs=0) or a["id"] != b["id"]
    start = 0
    while start < len(rows):  # runs of near-equal scores: the same chunks, unless cut by the limit
        end = start + 1
        while end < len(rows) and reference[end]["score"] == pytest.approx(reference[start]["score"], rel=1e-12):
            end += 1
        if end < len(rows):
            assert {r["id"] for r in rows[start:end]} == {r["id"] for r in reference[start:end]}
        start = end


async def test_bm25_through_the_copy_is_postgresqls_own(app_factory, db_url, db):
    """Keyword, convex and RRF searches with the copy's BM25 top chunks return what PostgreSQL's
    own BM25 returns: the same chunks in the same order with the same scores, over real prose and
    queries of common and rare words; then with exact duplicates added (assert_same_ranking; not
    RRF, whose reciprocal ranks make the order of equal BM25 scores a score)."""
    client = await app_factory(make_settings(database_url=db_url, retrieval_vector_cache_min_chunks=100))
    bot = await create_bot(client, rate_limits=LIMITS)
    texts = paragraphs()
    assert len(texts) >= 250
    rng = np.random.default_rng(16)
    await copy_chunks(db, bot.id, unit(rng.standard_normal((len(texts), 384))), texts)
    await db.execute("VACUUM ANALYZE")
    retriever, settings = client.services.retriever, client.services.retriever.settings
    words = sorted({w for t in texts for w in t.split() if w.isalpha()})
    queries = [texts[i][:120] for i in range(0, 250, 6)] + [" ".join(rng.choice(words, 4)) for _ in range(20)]
    queries += ["the", "zyxwvut qwerty", "signed webhooks"]  # a stop word; unknown words; a common term

    def near(a, b):
        return a == pytest.approx(b, rel=1e-12)

    async def compare(matrix, scorings):
        compared, cut = dict.fromkeys(scorings, 0), dict.fromkeys(scorings, 0)
        async with retriever.pool.acquire() as conn:
            for query in queries:
                vector = unit(rng.standard_normal(384))
                terms = await retriever.query_terms(conn, matrix.ts_config, query)
                for scoring in scorings:
                    depth = 10 if scoring == "keyword" else 50
                    args = {"scoring": scoring, "query": query, "vector": vector, "top_k": 10, "depth": depth}
                    args |= {"k1": settings.bm25_k1, "b": settings.bm25_b, "dense_weight": 0.5}
                    ids, scores = matrix.keyword(terms, depth + 1, settings.bm25_k1, settings.bm25_b)
                    if scoring != "keyword" and len(scores) > depth and near(scores[depth - 1], scores[depth]):
                        cut[scoring] += 1  # which of two near-equal chunks is the last candidate is
                        continue  # a coin toss on both sides, and fusion normalises over the candidates
                    if scoring == "rrf" and any(near(x, y) for x, y in itertools.pairwise(scores[:depth])):
                        cut[scoring] += 1  # the order of two near-equal candidates is a coin toss too, and
                        continue  # reciprocal ranks make it a score
                    ids, scores = ids[:depth], scores[:depth]
                    dense = None if scoring == "keyword" else matrix.candidates(vector, depth)
                    copy = repository.CopyCandidates(matrix.version, matrix.ts_config, dense, ids, scores)
                    through_copy = await repository.ranked_chunks(conn, bot.id, copy=copy, **args)
                    own = await repository.ranked_chunks(conn, bot.id, **args)
                    assert [r["cache_fresh"] for r in through_copy] == [True] * len(through_copy)
                    assert_same_ranking(through_copy, own)
                    compared[scoring] += bool(own)
        # in keyword mode every query finds chunks but the stop word and the unknown words; fused
        # scorings skip the queries whose BM25 candidates end between near-equal chunks, and RRF
        # those with two near-equal candidates anywhere (a short query of common words matches
        # many chunks of one length with one occurrence each: 18 of these 65 queries, by which
        # paragraphs the docs hold); at least half of the queries are compared in every scoring
        assert all(cut[s] <= len(queries) // 2 for s in scorings), cut
        assert compared == {s: len(queries) - 2 if s == "keyword" else len(queries) - cut[s] for s in scorings}

    await compare(await loaded_copy(client, bot, len(texts)), ("keyword", "convex", "rrf"))
    await copy_chunks(db, bot.id, unit(rng.standard_normal((40, 384))), texts[:40])  # identical chunks
    await compare(await loaded_copy(client, bot, len(texts) + 40), ("keyword", "convex"))


async def test_a_fresh_copys_bm25_reads_no_postings_and_a_stale_ones_is_postgresqls(client, db):
    """Under the search pool's generic plan: with the copy fresh, the statement never reads the
    postings; with the chatbot's configuration changed since the copy (or its chunk set), it runs
    its own BM25, and says the copy was stale."""
    bot = await create_bot(client)
    texts = paragraphs()[:250]
    rng = np.random.default_rng(17)
    await copy_chunks(db, bot.id, unit(rng.standard_normal((len(texts), 384))), texts)
    await db.execute("VACUUM ANALYZE")
    version = await db.fetchval("SELECT version FROM chunk_set_versions WHERE chatbot_id = $1", bot.id)
    query = "the search statement reads the postings"
    sql, names = repository.ranked_sql("convex", "cached")
    async with client.services.retriever.pool.acquire() as conn:
        own = await repository.ranked_chunks(
            conn, bot.id, scoring="keyword", query=query, vector=unit(rng.standard_normal(384)),
            top_k=20, depth=20, k1=0.9, b=0.4, dense_weight=0.5,
        )  # fmt: skip
        keyword_ids, keyword_scores = [r["id"] for r in own], [float(r["keyword"]) for r in own]
        assert len(keyword_ids) == 20
        values = {"chatbot": bot.id, "query": query, "vector": unit(rng.standard_normal(384)), "top_k": 10}
        values |= {"dense_limit": 10, "keyword_limit": 20, "k1": 0.9, "b": 0.4, "dense_weight": 0.5}
        values |= {"dense_ids": await exact_ids(db, bot.id, values["vector"], 10), "keyword_ids": keyword_ids}
        await conn.execute("PREPARE search AS " + sql)
        for cache_version, ts_config, fresh in (
            (version, "english", True),
            (version, "french", False),
            (version - 1, "english", False),
        ):
            args = values | {"cache_version": cache_version, "cache_ts_config": ts_config}
            scores = "ARRAY[" + ",".join(repr(x) for x in keyword_scores) + "]::float8[]"
            execute = "EXECUTE search(" + ", ".join(
                scores if n == "keyword_scores" else literal(args[n]) for n in names
            ) + ")"  # fmt: skip
            rows = await conn.fetch(execute)
            assert [r["cache_fresh"] for r in rows] == [fresh] * 10
            plan = [r[0] for r in await conn.fetch("EXPLAIN (ANALYZE, COSTS OFF) " + execute)]
            assert any("chatbot_id = $" in line for line in plan)  # the generic plan
            postings = [line for line in plan if "bm25_postings" in line]
            assert postings and all("never executed" in line for line in postings) == fresh, plan
        await conn.execute("DEALLOCATE search")


async def test_a_language_change_is_seen_by_the_next_search_through_the_copy(app_factory, db_url, db):
    """A copy made in English: the re-index in French (the configuration and the chunks, in one
    transaction, as the reindex_chatbot job does) makes it stale at once; the next search is
    PostgreSQL's French BM25, and the reloaded copy's too."""
    client = await app_factory(make_settings(database_url=db_url, retrieval_vector_cache_min_chunks=100))
    bot = await create_bot(client, rate_limits=LIMITS)
    texts = [f"Le carnet numéro {i} reste au bureau." for i in range(200)]
    texts[137] = "Les chevaux du centre équestre galopent dans la prairie."
    await copy_chunks(db, bot.id, unit(np.random.default_rng(18).standard_normal((200, 384))), texts)
    before = await loaded_copy(client, bot, 200)
    assert before.ts_config == "english"
    assert await search(client, bot, "cheval", mode="keyword") == []  # English stems "chevaux" apart
    async with db.transaction():
        await db.execute("UPDATE chatbots SET ts_config = 'french' WHERE id = $1", bot.id)
        await db.execute("UPDATE chunks SET ts_config = 'french' WHERE chatbot_id = $1", bot.id)
    [chevaux] = await db.fetch("SELECT id FROM chunks WHERE chatbot_id = $1 AND content LIKE 'Les chevaux%'", bot.id)
    assert await search(client, bot, "cheval", mode="keyword") == [chevaux["id"]]
    cache = client.services.retriever.vectors
    await cache.wait_loaded()  # the stale copy was dropped and a new one loaded
    after = cache.matrix(bot.id, 200)
    assert after is not None and after.ts_config == "french" and after.version > before.version
    assert await search(client, bot, "cheval", mode="keyword") == [chevaux["id"]]
    assert chevaux["id"] in await search(client, bot, "cheval", mode="hybrid")


def skipped_loads() -> float:
    return REGISTRY.get_sample_value("retrieval_vector_cache_loads_total", {"outcome": "skipped"}) or 0.0


async def test_a_copy_whose_postings_overflow_the_budget_is_not_loaded_again(app_factory, db_url, db):
    """Budget 1 MiB: 600 chunks' vectors fit (0.9 MiB), not with their postings. The one load
    finds out, and searches do not start another (each would cost a load for nothing)."""
    settings = make_settings(database_url=db_url, retrieval_vector_cache_min_chunks=100, retrieval_vector_cache_mb=1)
    client = await app_factory(settings)
    bot = await create_bot(client, rate_limits=LIMITS)
    prose = paragraphs()
    texts = [" ".join(prose[i % len(prose)] for i in range(j, j + 4)) for j in range(600)]  # long chunks
    await copy_chunks(db, bot.id, unit(np.random.default_rng(19).standard_normal((600, 384))), texts)
    cache = client.services.retriever.vectors
    assert cache.eligible(bot.id, 600)  # by its vectors
    loads = skipped_loads()
    await search(client, bot, "anything")
    await cache.wait_loaded()
    assert skipped_loads() == loads + 1
    assert not cache.eligible(bot.id, 600) and cache.matrix(bot.id, 600) is None
    vector = await client.services.retriever.embed_query("anything")
    assert await search(client, bot, "anything") == await exact_ids(db, bot.id, vector, 10)
    await cache.wait_loaded()
    assert skipped_loads() == loads + 1


async def test_a_keyword_search_that_matches_nothing_keeps_the_copy(app_factory, db_url, db):
    """No rows say nothing of the copy's freshness: a question of unknown words must not drop a
    fresh copy (each drop costs a load, and typos are common)."""
    client = await app_factory(make_settings(database_url=db_url, retrieval_vector_cache_min_chunks=100))
    bot = await create_bot(client, rate_limits=LIMITS)
    texts = paragraphs()[:200]
    await copy_chunks(db, bot.id, unit(np.random.default_rng(20).standard_normal((200, 384))), texts)
    matrix = await loaded_copy(client, bot, 200)
    loads = REGISTRY.get_sample_value("retrieval_vector_cache_loads_total", {"outcome": "loaded"})
    for _ in range(3):
        assert await search(client, bot, "zyxwvut qwertyuiop", mode="keyword") == []
    cache = client.services.retriever.vectors
    await cache.wait_loaded()
    assert cache.matrix(bot.id, 200) is matrix
    assert REGISTRY.get_sample_value("retrieval_vector_cache_loads_total", {"outcome": "loaded"}) == loads
