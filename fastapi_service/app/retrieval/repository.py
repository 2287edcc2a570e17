"""All retrieval SQL. Every statement is filtered by the caller's chatbot id."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import numpy as np

# Okapi BM25 with Lucene's non-negative idf: ln(1 + (N - df + 0.5) / (df + 0.5)).
# Document frequencies are counted from the chatbot's own postings, so scores depend only on the
# chatbot's corpus (tenants never influence each other's ranking).
KEYWORD_SQL = """
WITH q AS (
    SELECT DISTINCT u.lexeme AS term FROM unnest(to_tsvector('english', $2)) AS u
),
stats AS (
    SELECT count(*)::float8 AS n, coalesce(avg(doc_len), 1)::float8 AS avgdl
    FROM bm25_docs WHERE chatbot_id = $1
),
df AS (
    SELECT p.term, count(*)::float8 AS df
    FROM bm25_postings p JOIN q ON p.term = q.term
    WHERE p.chatbot_id = $1
    GROUP BY p.term
),
weights AS (
    SELECT df.term, ln(1 + (stats.n - df.df + 0.5) / (df.df + 0.5)) AS idf, stats.avgdl
    FROM df CROSS JOIN stats
)
SELECT p.chunk_id,
       sum(w.idf * p.tf * ($3::float8 + 1) / (p.tf + $3::float8 * (1 - $4::float8 + $4::float8 * p.doc_len / w.avgdl))) AS score
FROM bm25_postings p JOIN weights w ON p.term = w.term
WHERE p.chatbot_id = $1
GROUP BY p.chunk_id
ORDER BY score DESC, p.chunk_id
LIMIT $5
"""


async def keyword_candidates(
    conn: asyncpg.Connection, chatbot_id: UUID, query: str, k1: float, b: float, limit: int
) -> list[tuple[int, float]]:
    rows = await conn.fetch(KEYWORD_SQL, chatbot_id, query, k1, b, limit)
    return [(r["chunk_id"], float(r["score"])) for r in rows]


async def chunk_count(conn: asyncpg.Connection, chatbot_id: UUID) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM bm25_docs WHERE chatbot_id = $1", chatbot_id))


async def dense_exact(
    conn: asyncpg.Connection, chatbot_id: UUID, vector: np.ndarray, limit: int
) -> list[tuple[int, float]]:
    # `+ 0` makes the sort key an expression the HNSW index cannot serve: an exact scan of the
    # chatbot's rows (via the chatbot_id index), never a post-filtered approximate one.
    rows = await conn.fetch(
        """
        SELECT id, embedding <=> $2 AS distance FROM chunks
        WHERE chatbot_id = $1 ORDER BY (embedding <=> $2) + 0, id LIMIT $3
        """,
        chatbot_id,
        vector,
        limit,
    )
    return [(r["id"], 1.0 - float(r["distance"])) for r in rows]


async def dense_approximate(
    conn: asyncpg.Connection, chatbot_id: UUID, vector: np.ndarray, limit: int, ef_search: int, iterative: bool
) -> list[tuple[int, float]]:
    """HNSW search; with pgvector >= 0.8 the scan continues until `limit` rows pass the filter."""
    async with conn.transaction():
        await conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
        if iterative:
            await conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        rows = await conn.fetch(
            """
            SELECT id, embedding <=> $2 AS distance FROM chunks
            WHERE chatbot_id = $1 ORDER BY embedding <=> $2 LIMIT $3
            """,
            chatbot_id,
            vector,
            limit,
        )
    hits = [(r["id"], 1.0 - float(r["distance"])) for r in rows]
    hits.sort(key=lambda hit: -hit[1])  # relaxed_order may return rows slightly out of order
    return hits


async def hydrate(
    conn: asyncpg.Connection, chatbot_id: UUID, ids: list[int], vector: np.ndarray
) -> list[asyncpg.Record]:
    """Content, source and exact cosine similarity of the candidate chunks (of this chatbot only)."""
    return await conn.fetch(
        """
        SELECT c.id, c.source_id, c.content, c.metadata, 1 - (c.embedding <=> $3) AS cosine,
               s.name AS source_name, s.kind AS source_kind, s.spec ->> 'url' AS source_url
        FROM chunks c LEFT JOIN sources s ON s.id = c.source_id AND s.chatbot_id = c.chatbot_id
        WHERE c.chatbot_id = $1 AND c.id = ANY($2::bigint[])
        """,
        chatbot_id,
        ids,
        vector,
    )


async def pgvector_version(conn: asyncpg.Connection) -> tuple[int, ...]:
    text = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    return tuple(int(p) for p in (text or "0").split(".") if p.isdigit())
