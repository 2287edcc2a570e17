"""Hybrid retrieval for one chatbot: BM25 and dense candidates, fused, hydrated.

Dense search is exact for chatbots up to `retrieval_exact_max_chunks` chunks (cheap, and never
short; from `retrieval_vector_cache_min_chunks` its candidates, and the BM25 top chunks, come from
the process's copy of the chatbot's vectors and postings, checked by PostgreSQL:
app/retrieval/vectors.py); larger chatbots use HNSW,
with pgvector >= 0.8's iterative scan when available, and fall back to the exact scan whenever
the index returns fewer rows than exist — so a tenant filter never yields short results. Fusion is a convex combination of max-normalised BM25 and min-max-normalised
cosine (Bruch et al., 2022), or reciprocal rank fusion; it runs in the search statement itself
(see repository.py), so one search is one pool acquire and, for most chatbots, one round trip,
on the search pool's connections: generic plans (app/db/pool.py), except for large chatbots.
"""

from __future__ import annotations

import functools
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Generic, TypeVar
from uuid import UUID

import asyncpg
import numpy as np

from app.config import Settings
from app.db.pool import Connection
from app.embedding.service import EmbeddingService
from app.observability.metrics import RETRIEVAL_SECONDS
from app.retrieval import repository
from app.retrieval.vectors import VectorCache

COUNT_CACHE_SECONDS = 10.0
QUERY_CACHE_SIZE = 2048
UNCASED_PROBE = "Where Is The Nearest Store"


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
    ordinal: int = 0  # the chunk's position in its source


K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """The `size` most recently used values by key (LRU): popular questions repeat."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._values: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._values.get(key)
        if value is not None:
            self._values.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._values[key] = value
        if len(self._values) > self.size:
            self._values.popitem(last=False)


class Retriever:
    def __init__(self, pool: asyncpg.Pool, embedder: EmbeddingService, settings: Settings) -> None:
        self.pool = pool
        self.embedder = embedder
        self.settings = settings
        self._counts: dict[UUID, tuple[float, int]] = {}
        self._iterative: bool | None = None
        self._vectors: Recent[str, np.ndarray] = Recent(QUERY_CACHE_SIZE)
        self._terms: Recent[tuple[str, str], list[str]] = Recent(QUERY_CACHE_SIZE)
        self._uncased: bool | None = None  # whether the model ignores case (asked of its tokenizer once)
        self.vectors = VectorCache(
            pool,
            settings.retrieval_vector_cache_mb * 2**20,
            settings.retrieval_vector_cache_min_chunks,
            settings.embedding_dim,
        )

    async def close(self) -> None:
        await self.vectors.close()

    def _cache_key(self, query: str) -> str:
        """The question as the model sees it: runs of whitespace are one space to its tokenizer,
        and case is nothing to an uncased model (all-MiniLM-L6-v2 lower-cases), so "How do I
        return?" and "how do i  return?" share one vector."""
        if self._uncased is None:
            tokenize = self.embedder.tokenizer
            self._uncased = tokenize(UNCASED_PROBE)["input_ids"] == tokenize(UNCASED_PROBE.lower())["input_ids"]
        key = " ".join(query.split())
        return key.lower() if self._uncased else key

    async def embed_query(self, query: str) -> np.ndarray:
        """The query's vector; popular questions repeat, so recent ones are kept (LRU, keyed by
        the normalised question)."""
        key = self._cache_key(query)
        vector = self._vectors.get(key)
        if vector is None:
            vector = await self.embedder.embed_one(query)
            self._vectors.put(key, vector)
        return vector

    async def query_terms(self, conn: Connection, ts_config: str, query: str) -> list[str]:
        """The query's lexemes in `ts_config`, parsed by PostgreSQL; recent ones are kept (LRU,
        keyed by the configuration and the question with runs of whitespace as one space: to the
        text-search parser any whitespace only separates tokens)."""
        key = (ts_config, " ".join(query.split()))
        terms = self._terms.get(key)
        if terms is None:
            terms = await repository.query_terms(conn, ts_config, query)
            self._terms.put(key, terms)
        return terms

    async def _iterative_scan(self, conn: Connection) -> bool:
        if self._iterative is None:
            self._iterative = await repository.pgvector_version(conn) >= (0, 8)
        return self._iterative

    async def _count(self, conn: Connection, chatbot_id: UUID) -> int:
        now = time.monotonic()
        cached = self._counts.get(chatbot_id)
        if cached and cached[0] > now:
            return cached[1]
        n = await repository.chunk_count(conn, chatbot_id)
        self._counts[chatbot_id] = (now + COUNT_CACHE_SECONDS, n)
        return n

    async def _approximate_ids(
        self, conn: Connection, chatbot_id: UUID, vector: np.ndarray, limit: int, n: int
    ) -> list[int] | None:
        """HNSW candidates, or None when the index ran out before the filter was satisfied (no
        iterative scan, or a very small share of a large table): then the search is exact rather
        than short."""
        hits = await repository.dense_approximate(conn, chatbot_id, vector, limit)
        if len(hits) < min(limit, n):
            return None
        return [chunk_id for chunk_id, _ in hits]

    async def search(self, chatbot_id: UUID, query: str, top_k: int, mode: Mode = Mode.HYBRID) -> list[Hit]:
        started = time.perf_counter()
        vector = await self.embed_query(query)
        if mode == Mode.HYBRID:
            scoring, depth = self.settings.retrieval_fusion, max(top_k, self.settings.retrieval_candidates)
        else:
            scoring, depth = mode.value, top_k
        ranked = functools.partial(
            repository.ranked_chunks,
            scoring=scoring,
            query=query,
            vector=vector,
            top_k=top_k,
            depth=depth,
            k1=self.settings.bm25_k1,
            b=self.settings.bm25_b,
            dense_weight=self.settings.retrieval_dense_weight,
        )
        async with self.pool.acquire() as conn:
            n = await self._count(conn, chatbot_id)
            if n > self.settings.retrieval_exact_max_chunks:  # planned for the chatbot
                ef = max(self.settings.hnsw_ef_search, depth)
                async with repository.large_chatbot_search(conn, ef, await self._iterative_scan(conn)):
                    dense_ids = None
                    if mode != Mode.KEYWORD:
                        dense_ids = await self._approximate_ids(conn, chatbot_id, vector, depth, n)
                    rows = await ranked(conn, chatbot_id, dense_ids=dense_ids)
            else:  # the search pool's generic plans (app/db/pool.py)
                matrix = self.vectors.matrix(chatbot_id, n)
                if matrix is None:
                    rows = await ranked(conn, chatbot_id)
                else:  # candidates from this process's copy of the chatbot, checked in the statement
                    copy = repository.CopyCandidates(matrix.version, matrix.ts_config)
                    if mode != Mode.KEYWORD:
                        copy = replace(copy, dense_ids=await self.vectors.candidates(matrix, vector, depth))
                    if mode != Mode.DENSE:
                        terms = await self.query_terms(conn, matrix.ts_config, query)
                        ids, scores = matrix.keyword(terms, depth, self.settings.bm25_k1, self.settings.bm25_b)
                        copy = replace(copy, keyword_ids=ids, keyword_scores=scores)
                    rows = await ranked(conn, chatbot_id, copy=copy)
                    # no rows: a dense search of a chatbot left without chunks (stale), or a keyword
                    # search that matched nothing (says nothing of the copy)
                    if (not rows[0]["cache_fresh"]) if rows else mode != Mode.KEYWORD:
                        self.vectors.stale(chatbot_id, matrix.version)
        hits = [self._hit(row) for row in rows]
        RETRIEVAL_SECONDS.observe(time.perf_counter() - started)
        return hits

    @staticmethod
    def _hit(row: asyncpg.Record) -> Hit:
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
            score=round(float(row["score"]), 6),
            cosine=float(row["cosine"]),
            keyword=float(row["keyword"]),
            ordinal=int(row["ordinal"]),
        )


def snippet(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"
