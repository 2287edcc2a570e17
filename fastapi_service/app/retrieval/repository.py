"""All retrieval SQL. Every statement, and every subquery in it, is filtered by the chatbot id.

A search is one statement (`ranked_chunks`): dense and BM25 candidates, their fusion, and the
content of the top_k winners only, so a search costs one round trip and the text of chunks that
lose never leaves the database. Large chatbots first run the HNSW query (`dense_approximate`) on
the same connection and pass its ids in, both in `large_chatbot_search` (planned for the chatbot).
Chatbots the API process holds a copy of (vectors and BM25 postings, app/retrieval/vectors.py)
pass in the dense candidates and BM25 top chunks found there, with the version of the chunk set
and the text-search configuration they were read at (`chunk_copy`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
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
BM25_STATS = """SELECT coalesce(max(docs), 0)::float8 AS n,
           coalesce(max(total_len)::numeric / nullif(max(docs), 0), 1)::float8 AS avgdl
    FROM bm25_stats WHERE chatbot_id = :chatbot"""
KEYWORD_CTES = f"""
q AS (
    SELECT DISTINCT u.lexeme AS term FROM unnest(chunk_tsvector(
        (SELECT ts_config FROM chatbots WHERE id = :chatbot), :query)) AS u
),
stats AS (
    {BM25_STATS}
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

# Candidates from the API's copy of the chatbot (app/retrieval/vectors.py), made at version
# :cache_version of its chunk set with text-search configuration :cache_ts_config: PostgreSQL
# recomputes their distances and keeps the best :dense_limit by the exact scan's order, so the
# result is the exact scan's. If the chunk set (migrations 0313, 0315) or the configuration has
# changed since, the copy is ignored and the exact scan runs instead: each branch sits under a
# one-time filter on `fresh`, and only one is executed. The candidates are
# looked up one by one by id: with `id = ANY(...)`, or a join, the generic plan read all the
# chatbot's rows (it cannot know how few the candidates are).
CHUNK_SET_VERSION = "coalesce((SELECT version FROM chunk_set_versions WHERE chatbot_id = :chatbot), 0)"
FRESH_CTE = f"""
fresh AS (
    SELECT {CHUNK_SET_VERSION} = :cache_version::bigint
           AND coalesce((SELECT ts_config FROM chatbots WHERE id = :chatbot) = :cache_ts_config::text, false) AS ok
)"""
DENSE_CACHED_CTE = """
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

# BM25 from the API's copy of the chatbot's postings (app/retrieval/vectors.py), made at the same
# version as its vectors: the top :keyword_limit chunks and their scores, as KEYWORD_CTES would
# compute them (the same arithmetic on the same postings and statistics; only the order in which
# a chunk's per-term scores are summed may differ, ~1e-16 of a score). Taken only if the copy is
# fresh; else KEYWORD_CTES runs, under the same one-time filter as the dense side.
KEYWORD_CACHED_CTES = (
    KEYWORD_CTES.replace("\nkeyword AS (", "\nkeyword_scanned AS (")
    + """,
keyword AS (
    SELECT g.chunk_id, g.score FROM unnest(:keyword_ids::bigint[], :keyword_scores::float8[]) AS g(chunk_id, score)
    WHERE (SELECT ok FROM fresh)
    UNION ALL
    SELECT chunk_id, score FROM keyword_scanned WHERE NOT (SELECT ok FROM fresh)
)"""
)

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

# With the copy's candidates the keyword rows are a parameter: looked up one by one by id, as the
# dense ones (a join's generic plan read all the chatbot's rows).
KEYWORD_CACHED_CANDIDATES = """
    SELECT c.id, 1 - c.distance AS cosine, k.score AS keyword FROM keyword k CROSS JOIN LATERAL (
        SELECT id, embedding <=> :vector AS distance FROM chunks
        WHERE id = k.chunk_id AND chatbot_id = :chatbot OFFSET 0
    ) AS c"""
HYBRID_CACHED_CANDIDATES = (
    """
    SELECT d.id, 1 - d.distance AS cosine, k.score AS keyword
    FROM dense d LEFT JOIN keyword k ON k.chunk_id = d.id
    UNION ALL"""
    + KEYWORD_CACHED_CANDIDATES
    + """
    WHERE k.chunk_id NOT IN (SELECT id FROM dense)"""
)

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
def ranked_sql(scoring: str, source: str) -> tuple[str, tuple[str, ...]]:
    """The search statement for one scoring ("dense", "keyword", "convex", "rrf") and one source of
    candidates: "exact" (PostgreSQL's scan and BM25), "given" (dense ids from HNSW) or "cached"
    (dense ids and BM25 top chunks from the API's copy, checked: the statement also returns
    `cache_fresh`)."""
    dense = scoring != "keyword"
    keyword = scoring != "dense"
    cached = source == "cached"
    ctes = [FRESH_CTE] if cached else []
    ctes += [DENSE_CTES[source]] if dense else []
    ctes += [KEYWORD_CACHED_CTES if cached else KEYWORD_CTES] if keyword else []
    if dense and keyword:
        candidates = HYBRID_CACHED_CANDIDATES if cached else HYBRID_CANDIDATES
    elif dense:
        candidates = DENSE_CANDIDATES
    else:
        candidates = KEYWORD_CACHED_CANDIDATES if cached else KEYWORD_CANDIDATES
    columns = "\n       (SELECT ok FROM fresh) AS cache_fresh," if cached else ""
    sql = RANKED_SQL.format(ctes=",".join(ctes), candidates=candidates, score=SCORES[scoring], columns=columns)
    return _numbered(sql)


@dataclass(frozen=True)
class CopyCandidates:
    """Candidates from the API's copy of a chatbot (app/retrieval/vectors.py), made at `version` of
    its chunk set with its `ts_config`: dense ids (dense scorings) and the BM25 top chunks with
    their scores (keyword scorings)."""

    version: int
    ts_config: str
    dense_ids: list[int] | None = None
    keyword_ids: list[int] | None = None
    keyword_scores: list[float] | None = None


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
    copy: CopyCandidates | None = None,
) -> list[asyncpg.Record]:
    """The top_k chunks by `scoring`, best first: id, cosine, keyword (BM25, 0 if none), score,
    content, metadata and source. Candidates come from the API's `copy` if given (checked: then each
    row also says `cache_fresh`), else dense ones are `dense_ids` if given (HNSW's), else an exact
    scan, and BM25 is PostgreSQL's."""
    source = "cached" if copy is not None else "exact" if dense_ids is None else "given"
    sql, names = ranked_sql(scoring, source)
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
    }
    if copy is not None:
        values |= {
            "cache_version": copy.version,
            "cache_ts_config": copy.ts_config,
            "dense_ids": copy.dense_ids,
            "keyword_ids": copy.keyword_ids,
            "keyword_scores": copy.keyword_scores,
        }
    return await conn.fetch(sql, *(values[name] for name in names))


QUERY_TERMS_SQL = """
SELECT coalesce(array_agg(DISTINCT u.lexeme), '{}') FROM unnest(chunk_tsvector($1, $2)) AS u
"""


async def query_terms(conn: Connection, ts_config: str, query: str) -> list[str]:
    """The query's distinct lexemes in text-search configuration `ts_config`: the terms the search
    statement looks up in the postings (KEYWORD_CTES' `q`)."""
    return list(await conn.fetchval(QUERY_TERMS_SQL, ts_config, query))


async def chunk_count(conn: Connection, chatbot_id: UUID) -> int:
    """The chatbot's number of chunks, from its BM25 statistics (migration 0314)."""
    return int(await conn.fetchval("SELECT coalesce(max(docs), 0) FROM bm25_stats WHERE chatbot_id = $1", chatbot_id))


@dataclass(frozen=True)
class ChunkCopyRows:
    """What the API's copy of a chatbot is made of, read in one snapshot: the version of its chunk
    set (migration 0313) and its text-search configuration; its chunks' ids (ascending), vectors
    [n, dimensions] and BM25 lengths; N and avgdl as KEYWORD_CTES computes them; its postings by
    term: the terms, how many postings each has, and their chunk ids and term frequencies, term
    after term in the order of `terms`."""

    version: int
    ts_config: str
    ids: np.ndarray
    vectors: np.ndarray
    doc_len: np.ndarray
    n: float
    avgdl: float
    terms: list[str]
    term_postings: np.ndarray
    posting_ids: np.ndarray
    posting_tf: np.ndarray


async def chunk_copy(conn: Connection, chatbot_id: UUID, dimensions: int) -> ChunkCopyRows:
    """The chatbot's chunks, vectors and postings for the API's copy (app/retrieval/vectors.py)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        version = await conn.fetchval(_numbered("SELECT " + CHUNK_SET_VERSION)[0], chatbot_id)
        ts_config = await conn.fetchval("SELECT ts_config FROM chatbots WHERE id = $1", chatbot_id)
        rows = await conn.fetch(
            "SELECT c.id, c.embedding, coalesce(d.doc_len, 0) AS doc_len"
            " FROM chunks c LEFT JOIN bm25_docs d ON d.chunk_id = c.id"
            " WHERE c.chatbot_id = $1 ORDER BY c.id",
            chatbot_id,
        )
        stats = await conn.fetchrow(_numbered(BM25_STATS)[0], chatbot_id)
        assert stats is not None  # an aggregate: always one row
        # the terms with their posting counts, and all the postings as two arrays, in one order
        # (the same collation, in one snapshot): a few values per term, not a row per posting
        terms = await conn.fetch(
            "SELECT term, count(*) AS postings FROM bm25_postings WHERE chatbot_id = $1 GROUP BY term ORDER BY term",
            chatbot_id,
        )
        postings = await conn.fetchrow(
            "SELECT coalesce(array_agg(chunk_id ORDER BY term, chunk_id), '{}') AS ids,"
            " coalesce(array_agg(tf ORDER BY term, chunk_id), '{}') AS tf"
            " FROM bm25_postings WHERE chatbot_id = $1",
            chatbot_id,
        )
        assert postings is not None  # an aggregate: always one row
    count = len(rows)
    vectors = np.stack([r["embedding"].to_numpy() for r in rows]) if rows else np.empty((0, dimensions), np.float32)
    return ChunkCopyRows(
        version=int(version),
        ts_config=ts_config or "",  # no chatbot row: a configuration no search matches
        ids=np.fromiter((r["id"] for r in rows), dtype=np.int64, count=count),
        vectors=vectors,
        doc_len=np.fromiter((r["doc_len"] for r in rows), dtype=np.float64, count=count),
        n=float(stats["n"]),
        avgdl=float(stats["avgdl"]),
        terms=[t["term"] for t in terms],
        term_postings=np.fromiter((t["postings"] for t in terms), dtype=np.int64, count=len(terms)),
        posting_ids=np.array(postings["ids"], dtype=np.int64),
        posting_tf=np.array(postings["tf"], dtype=np.int32),
    )


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
