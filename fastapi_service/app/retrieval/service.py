"""Hybrid retrieval for one chatbot: BM25 and dense candidates, fused, hydrated.

Dense search is exact for chatbots up to `retrieval_exact_max_chunks` chunks (cheap, and never
short); larger chatbots use HNSW, with pgvector >= 0.8's iterative scan when available, and fall
back to the exact scan whenever the index returns fewer rows than exist — so a tenant filter never
yields short results. Fusion is a convex combination of max-normalised BM25 and min-max-normalised
cosine (Bruch et al., 2022), or reciprocal rank fusion.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

import asyncpg
import numpy as np

from app.config import Settings
from app.embedding.service import EmbeddingService
from app.observability.metrics import RETRIEVAL_SECONDS
from app.retrieval import repository

COUNT_CACHE_SECONDS = 10.0
QUERY_CACHE_SIZE = 2048
RRF_K = 60


class Mode(StrEnum):
    HYBRID = "hybrid"
    DENSE = "dense"
    KEYWORD = "keyword"


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    source_id: UUID
    content: str
    metadata: dict[str, Any]
    name: str
    url: str | None
    score: float
    cosine: float
    keyword: float


class Retriever:
    def __init__(self, pool: asyncpg.Pool, embedder: EmbeddingService, settings: Settings) -> None:
        self.pool = pool
        self.embedder = embedder
        self.settings = settings
        self._counts: dict[UUID, tuple[float, int]] = {}
        self._iterative: bool | None = None
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    async def embed_query(self, query: str) -> np.ndarray:
        """The query's vector; popular questions repeat, so recent ones are kept (LRU)."""
        vector = self._vectors.get(query)
        if vector is not None:
            self._vectors.move_to_end(query)
            return vector
        vector = await self.embedder.embed_one(query)
        self._vectors[query] = vector
        if len(self._vectors) > QUERY_CACHE_SIZE:
            self._vectors.popitem(last=False)
        return vector

    async def _iterative_scan(self, conn: asyncpg.Connection) -> bool:
        if self._iterative is None:
            self._iterative = await repository.pgvector_version(conn) >= (0, 8)
        return self._iterative

    async def _count(self, conn: asyncpg.Connection, chatbot_id: UUID) -> int:
        now = time.monotonic()
        cached = self._counts.get(chatbot_id)
        if cached and cached[0] > now:
            return cached[1]
        n = await repository.chunk_count(conn, chatbot_id)
        self._counts[chatbot_id] = (now + COUNT_CACHE_SECONDS, n)
        return n

    async def dense(self, chatbot_id: UUID, vector: np.ndarray, limit: int) -> list[tuple[int, float]]:
        async with self.pool.acquire() as conn:
            n = await self._count(conn, chatbot_id)
            if n <= self.settings.retrieval_exact_max_chunks:
                return await repository.dense_exact(conn, chatbot_id, vector, limit)
            iterative = await self._iterative_scan(conn)
            ef = max(self.settings.hnsw_ef_search, limit)
            hits = await repository.dense_approximate(conn, chatbot_id, vector, limit, ef, iterative)
            if len(hits) < min(limit, n):
                # The index ran out before the filter was satisfied (no iterative scan, or a very
                # small share of a large table): answer exactly rather than short.
                hits = await repository.dense_exact(conn, chatbot_id, vector, limit)
            return hits

    async def keyword(self, chatbot_id: UUID, query: str, limit: int) -> list[tuple[int, float]]:
        async with self.pool.acquire() as conn:
            return await repository.keyword_candidates(
                conn, chatbot_id, query, self.settings.bm25_k1, self.settings.bm25_b, limit
            )

    async def search(self, chatbot_id: UUID, query: str, top_k: int, mode: Mode = Mode.HYBRID) -> list[Hit]:
        started = time.perf_counter()
        depth = max(top_k, self.settings.retrieval_candidates)
        vector = await self.embed_query(query)
        dense: list[tuple[int, float]] = []
        keyword: list[tuple[int, float]] = []
        if mode == Mode.DENSE:
            dense = await self.dense(chatbot_id, vector, top_k)
        elif mode == Mode.KEYWORD:
            keyword = await self.keyword(chatbot_id, query, top_k)
        else:
            dense, keyword = await asyncio.gather(
                self.dense(chatbot_id, vector, depth), self.keyword(chatbot_id, query, depth)
            )
        ids = list(dict.fromkeys([i for i, _ in dense] + [i for i, _ in keyword]))
        if not ids:
            RETRIEVAL_SECONDS.observe(time.perf_counter() - started)
            return []
        async with self.pool.acquire() as conn:
            rows = {r["id"]: r for r in await repository.hydrate(conn, chatbot_id, ids, vector)}
        keyword_scores = dict(keyword)
        if mode == Mode.DENSE:
            scores = {i: float(rows[i]["cosine"]) for i in ids if i in rows}
        elif mode == Mode.KEYWORD:
            scores = {i: s for i, s in keyword if i in rows}
        else:
            cosines = {i: float(r["cosine"]) for i, r in rows.items()}
            scores = self.fuse(cosines, keyword_scores)
        ranked = sorted(scores, key=lambda i: (-scores[i], i))[:top_k]
        hits = [self._hit(rows[i], scores[i], keyword_scores.get(i, 0.0)) for i in ranked]
        RETRIEVAL_SECONDS.observe(time.perf_counter() - started)
        return hits

    def fuse(self, cosines: dict[int, float], keyword: dict[int, float]) -> dict[int, float]:
        if self.settings.retrieval_fusion == "rrf":
            dense_rank = {i: r for r, i in enumerate(sorted(cosines, key=lambda i: -cosines[i]), 1)}
            kw_rank = {i: r for r, i in enumerate(sorted(keyword, key=lambda i: -keyword[i]), 1)}
            return {
                i: 1 / (RRF_K + dense_rank[i]) + (1 / (RRF_K + kw_rank[i]) if i in kw_rank else 0.0) for i in cosines
            }
        weight = self.settings.retrieval_dense_weight
        low, high = min(cosines.values()), max(cosines.values())
        spread = (high - low) or 1.0
        top_keyword = max(keyword.values(), default=0.0) or 1.0
        return {
            i: weight * (cos - low) / spread + (1 - weight) * keyword.get(i, 0.0) / top_keyword
            for i, cos in cosines.items()
        }

    @staticmethod
    def _hit(row: asyncpg.Record, score: float, keyword: float) -> Hit:
        metadata = row["metadata"] or {}
        url = metadata.get("url") or row["source_url"]
        if url is not None and not str(url).startswith(("http://", "https://")):
            url = None
        name = row["source_name"] or metadata.get("title") or "Document"
        return Hit(
            chunk_id=row["id"],
            source_id=row["source_id"],
            content=row["content"],
            metadata=metadata,
            name=name,
            url=url,
            score=round(float(score), 6),
            cosine=float(row["cosine"]),
            keyword=keyword,
        )


def snippet(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"
