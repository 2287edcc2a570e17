"""All retrieval SQL. Every statement, and every subquery in it, is filtered by the chatbot id.

A search is one statement (`ranked_chunks`): dense and BM25 candidates, their fusion, and the
content of the top_k winners only, so a search costs one round trip and the text of chunks that
lose never leaves the database. Large chatbots first run the HNSW query (`dense_approximate`) on
the same connection and pass its ids in, both in `large_chatbot_search` (planned for the chatbot).
Chatbots whose vectors the API process holds (app/retrieval/vectors.py) pass in the candidates
found there, with the version of the chunk set they were read at (`chunk_vectors`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import Any
from uuid import UUID

import asyncpg
import numpy as np

from app.db.pool import Connection

# The query is parsed with the chatbot's own text-search configuration (its language, see
# app/languages.py), read in the same statement as the postings, so a search never mixes the
# configuration of one side of a language change with the postings of the other.
# Okapi BM25 with Lucene's non-negative idf: ln(1 + (N - df + 0.5) / (df + 0.5)).
# Document frequencies are counted from the chatbot's own postings, N and avgdl read from its row
# of bm25_stats (migration 0314; the same numeric division avg() did over bm25_docs), so scores
# depend only on the chatbot's corpus (tenants never influence each other's ranking). Document
# frequencies are grouped by the query's terms (q, a few rows), not the postings' terms: grouped
# by those, PostgreSQL estimated thousands of df rows and, for a chatbot holding most postings,
# joined them to a sequential scan of all the postings (a 50,000-chunk chatbot's search: 200-300 ms
# instead of ~15).
KEYWORD_CTES = """
q AS (
    SELECT DISTINCT u.lexeme AS term FROM unnest(chunk_tsvector(
        (SELECT ts_config FROM chatbots WHERE id = :chatbot), :query)) AS u
),
stats AS (
    SELECT coalesce(max(docs), 0)::float8 AS n,
           coalesce(max(total_len)::numeric / nullif(max(docs), 0), 1)::float8 AS avgdl
    FROM bm25_stats WHERE chatbot_id = :chatbot
),
df AS (
    SELECT q.term, count(*)::float8 AS df
    FROM q JOIN bm25_postings p ON p.term = q.term AND p.chatbot_id = :chatbot
    GROUP BY q.term
),
weights AS (
    SELECT df.term, ln(1 + (stats.n - df.df + 0.5) / (df.df + 0.5)) AS idf, stats.avgdl
    FROM df CROSS JOIN stats
),
keyword AS (
    SELECT p.chunk_id,
           sum(w.idf * p.tf * (:k1::float8 + 1)
               / (p.tf + :k1::float8 * (1 - :b::float8 + :b::float8 * p.doc_len / w.avgdl))) AS score
    FROM bm25_postings p JOIN weights w ON p.term = w.term
    WHERE p.chatbot_id = :chatbot
    GROUP BY p.chunk_id
    ORDER BY score DESC, p.chunk_id
    LIMIT :keyword_limit
)"""

# `+ 0` makes the sort key an expression the HNSW index cannot serve: an exact scan of the
# chatbot's rows (via the chatbot_id index), never a post-filtered approximate one. The distance
# is computed once per row (OFFSET 0 keeps the subquery from being flattened into the sort key)
# and carried to the fusion, rather than recomputed there for the dense candidates.
DENSE_EXACT_CTE = """
dense AS (
    SELECT id, distance FROM (
        SELECT id, embedding <=> :vector AS distance FROM chunks WHERE chatbot_id = :chatbot OFFSET 0
    ) AS scanned
    ORDER BY distance + 0, id LIMIT :dense_limit
)"""
DENSE_GIVEN_CTE = """
dense AS (
    SELECT id, embedding <=> :vector AS distance FROM chunks
    WHERE chatbot_id = :chatbot AND id = ANY(:dense_ids::bigint[])
)"""

# Candidates from the API's copy of the chatbot's vectors (app/retrieval/vectors.py), made at
# version :cache_version of its chunk set: PostgreSQL recomputes their distances and keeps the
# best :dense_limit by the exact scan's order, so the result is the exact scan's. If the chunk set
# has changed since (migration 0313), the copy is ignored and the exact scan runs instead: each
# branch sits under a one-time filter on `fresh`, and only one is executed. The candidates are
# looked up one by one by id: with `id = ANY(...)`, or a join, the generic plan read all the
# chatbot's rows (it cannot know how few the candidates are).
CHUNK_SET_VERSION = "coalesce((SELECT version FROM chunk_set_versions WHERE chatbot_id = :chatbot), 0)"
DENSE_CACHED_CTE = f"""
fresh AS (
    SELECT {CHUNK_SET_VERSION} = :cache_version::bigint AS ok
),
dense AS (
    (SELECT c.id, c.distance FROM unnest(:dense_ids::bigint[]) AS g(id) CROSS JOIN LATERAL (
        SELECT id, embedding <=> :vector AS distance FROM chunks
        WHERE id = g.id AND chatbot_id = :chatbot OFFSET 0
    ) AS c
    WHERE (SELECT ok FROM fresh)
    ORDER BY c.distance, c.id LIMIT :dense_limit)
    UNION ALL
    (SELECT id, distance FROM (
        SELECT id, embedding <=> :vector AS distance FROM chunks WHERE chatbot_id = :chatbot OFFSET 0
    ) AS scanned
    WHERE NOT (SELECT ok FROM fresh)
    ORDER BY distance + 0, id LIMIT :dense_limit)
)"""
DENSE_CTES = {"exact": DENSE_EXACT_CTE, "given": DENSE_GIVEN_CTE, "cached": DENSE_CACHED_CTE}

# Every candidate with its cosine and BM25 score (NULL if it is not a keyword candidate).
DENSE_CANDIDATES = "SELECT id, 1 - distance AS cosine, NULL::float8 AS keyword FROM dense"
KEYWORD_CANDIDATES = """
    SELECT c.id, 1 - (c.embedding <=> :vector) AS cosine, k.score AS keyword
    FROM keyword k JOIN chunks c ON c.id = k.chunk_id AND c.chatbot_id = :chatbot"""
HYBRID_CANDIDATES = """
    SELECT d.id, 1 - d.distance AS cosine, k.score AS keyword
    FROM dense d LEFT JOIN keyword k ON k.chunk_id = d.id
    UNION ALL
    SELECT c.id, 1 - (c.embedding <=> :vector) AS cosine, k.score AS keyword
    FROM keyword k JOIN chunks c ON c.id = k.chunk_id AND c.chatbot_id = :chatbot
    WHERE k.chunk_id NOT IN (SELECT id FROM dense)"""

# Fusion of the candidates' scores; the same arithmetic, in the same order, as the Python it
# replaced, so rankings did not move. Convex: min-max-normalised cosine and max-normalised BM25
# (Bruch et al., 2022). RRF: reciprocal ranks, k = 60, ties broken by chunk id.
SCORES = {
    "dense": "cosine",
    "keyword": "keyword",
    "convex": """
        :dense_weight::float8 * (cosine - min(cosine) OVER ())
            / coalesce(nullif(max(cosine) OVER () - min(cosine) OVER (), 0), 1)
        + (1 - :dense_weight::float8) * coalesce(keyword, 0)
            / coalesce(nullif(max(keyword) OVER (), 0), 1)""",
    "rrf": """
        1::float8 / (60 + row_number() OVER (ORDER BY cosine DESC, id))
        + CASE WHEN keyword IS NULL THEN 0
               ELSE 1::float8 / (60 + row_number() OVER (PARTITION BY keyword IS NULL ORDER BY keyword DESC, id))
          END""",
}

RANKED_SQL = """
WITH {ctes},
candidates AS ({candidates}
),
top AS (
    SELECT id, cosine, keyword, {score} AS score FROM candidates
    ORDER BY score DESC, id
    LIMIT :top_k
)
SELECT t.id, t.cosine, coalesce(t.keyword, 0) AS keyword, t.score,{columns}
       c.source_id, c.ordinal, c.content, c.metadata,
       s.name AS source_name, s.kind AS source_kind, s.spec ->> 'url' AS source_url
FROM top t
JOIN chunks c ON c.id = t.id AND c.chatbot_id = :chatbot
LEFT JOIN sources s ON s.id = c.source_id AND s.chatbot_id = c.chatbot_id
ORDER BY t.score DESC, t.id
"""


def _numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """`:name` placeholders to `$n`, and the parameter names in `$n` order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    return re.sub(r"(?<![:\w]):([a-z_][a-z0-9_]*)", number, sql), tuple(names)


@cache
def ranked_sql(scoring: str, dense_source: str) -> tuple[str, tuple[str, ...]]:
    """The search statement for one scoring ("dense", "keyword", "convex", "rrf") and one source of
    dense candidates (DENSE_CTES: "exact", "given" by HNSW, "cached" by the API's copy, whose
    statement also returns `cache_fresh`)."""
    dense = scoring != "keyword"
    keyword = scoring != "dense"
    ctes = [DENSE_CTES[dense_source]] if dense else []
    ctes += [KEYWORD_CTES] if keyword else []
    candidates = HYBRID_CANDIDATES if dense and keyword else DENSE_CANDIDATES if dense else KEYWORD_CANDIDATES
    columns = "\n       (SELECT ok FROM fresh) AS cache_fresh," if dense and dense_source == "cached" else ""
    sql = RANKED_SQL.format(ctes=",".join(ctes), candidates=candidates, score=SCORES[scoring], columns=columns)
    return _numbered(sql)


async def ranked_chunks(
    conn: Connection,
    chatbot_id: UUID,
    *,
    scoring: str,
    query: str,
    vector: np.ndarray,
    top_k: int,
    depth: int,
    k1: float,
    b: float,
    dense_weight: float,
    dense_ids: list[int] | None = None,
    cache_version: int | None = None,
) -> list[asyncpg.Record]:
    """The top_k chunks by `scoring`, best first: id, cosine, keyword (BM25, 0 if none), score,
    content, metadata and source. Dense candidates are `dense_ids` if given (HNSW's, or with
    `cache_version` the API copy's, checked: then each row also says `cache_fresh`), else an exact
    scan."""
    dense_source = "exact" if dense_ids is None else "given" if cache_version is None else "cached"
    sql, names = ranked_sql(scoring, dense_source)
    values: dict[str, Any] = {
        "chatbot": chatbot_id,
        "query": query,
        "vector": vector,
        "top_k": top_k,
        "dense_limit": depth,
        "keyword_limit": depth,
        "k1": k1,
        "b": b,
        "dense_weight": dense_weight,
        "dense_ids": dense_ids,
        "cache_version": cache_version,
    }
    return await conn.fetch(sql, *(values[name] for name in names))


async def chunk_count(conn: Connection, chatbot_id: UUID) -> int:
    """The chatbot's number of chunks, from its BM25 statistics (migration 0314)."""
    return int(await conn.fetchval("SELECT coalesce(max(docs), 0) FROM bm25_stats WHERE chatbot_id = $1", chatbot_id))


async def chunk_vectors(conn: Connection, chatbot_id: UUID, dimensions: int) -> tuple[int, np.ndarray, np.ndarray]:
    """The version of the chatbot's chunk set (migration 0313) and its chunks' ids and vectors
    [n, dimensions], read in one snapshot."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        version = await conn.fetchval(_numbered("SELECT " + CHUNK_SET_VERSION)[0], chatbot_id)
        rows = await conn.fetch("SELECT id, embedding FROM chunks WHERE chatbot_id = $1", chatbot_id)
    ids = np.fromiter((r["id"] for r in rows), dtype=np.int64, count=len(rows))
    vectors = np.stack([r["embedding"].to_numpy() for r in rows]) if rows else np.empty((0, dimensions), np.float32)
    return int(version), ids, vectors


DENSE_APPROXIMATE_SQL = """
SELECT id, embedding <=> $2 AS distance FROM chunks
WHERE chatbot_id = $1 ORDER BY embedding <=> $2 LIMIT $3
"""


@asynccontextmanager
async def large_chatbot_search(conn: Connection, ef_search: int, iterative: bool) -> AsyncIterator[None]:
    """A transaction for a large chatbot's search (HNSW, then the search statement): HNSW settings,
    and statements planned for the chatbot (custom plans, also on the search pool's connections):
    its own large share of the tables is what makes HNSW, and the scans that suit it, the plan;
    planning is small next to such a search. With pgvector >= 0.8 the HNSW scan continues until
    its `limit` rows pass the chatbot filter."""
    settings = [f"SET LOCAL hnsw.ef_search = {int(ef_search)}", "SET LOCAL plan_cache_mode = force_custom_plan"]
    if iterative:
        settings.append("SET LOCAL hnsw.iterative_scan = relaxed_order")
    async with conn.transaction():
        await conn.execute("; ".join(settings))  # one round trip
        yield


async def dense_approximate(
    conn: Connection, chatbot_id: UUID, vector: np.ndarray, limit: int
) -> list[tuple[int, float]]:
    """HNSW search, inside `large_chatbot_search`."""
    rows = await conn.fetch(DENSE_APPROXIMATE_SQL, chatbot_id, vector, limit)
    hits = [(r["id"], 1.0 - float(r["distance"])) for r in rows]
    hits.sort(key=lambda hit: -hit[1])  # relaxed_order may return rows slightly out of order
    return hits


async def pgvector_version(conn: Connection) -> tuple[int, ...]:
    text = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    return tuple(int(p) for p in (text or "0").split(".") if p.isdigit())
