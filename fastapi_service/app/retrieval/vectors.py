"""In-process copies of chatbots' chunk vectors, for an exact dense search without PostgreSQL's scan.

PostgreSQL (pgvector 0.6 in pgserver) computes a cosine distance in ≈ 0.6 µs: 7 ms of a ~10,000-
chunk chatbot's search is its exact scan. The same scan over a copy of the vectors is one matrix-
vector product (≈ 0.5 ms of one core at 9,348 x 384, docs/benchmarks.md). A copy only proposes candidates; PostgreSQL has the
last word, in the search statement (repository.DENSE_CACHED_CTE):
- it checks the copy's version against `chunk_set_versions` (migration 0313), raised in the
  transaction of every change to the chatbot's chunks, and scans exactly when they differ;
- it recomputes the candidates' distances and keeps the best `limit` by its own order (distance,
  then id). The candidates are every chunk scoring within `TIE_MARGIN` of the limit-th best here,
  far above float32 rounding: the result is the exact scan's, ties included.
A stale or missing copy is (re)loaded in the background, one load at a time and each followed by
a pause, so loads take at most `LOAD_SHARE` of the process's time even when more chatbots are
searched than the budget holds; meanwhile a chatbot's searches are PostgreSQL's exact scan, as
without a copy. Copies are kept for chatbots of `min_chunks` chunks or more (smaller scans are
cheap in PostgreSQL), least recently used first out beyond `budget_bytes`
(RETRIEVAL_VECTOR_CACHE_MB per API process).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import numpy as np

from app.observability.metrics import VECTOR_CACHE_BYTES, VECTOR_CACHE_LOADS
from app.retrieval import repository

logger = logging.getLogger(__name__)

LOAD_SHARE = 0.05  # a load of 10,000 chunks takes ~50-100 ms, then ~1-2 s pass before the next
TIE_MARGIN = 1e-4  # cosine; float32 rounding of a 384-d dot product is ~1e-6


@dataclass(frozen=True)
class Matrix:
    """One chatbot's chunk vectors at one version of its chunk set: unit rows, with their ids."""

    version: int
    ids: np.ndarray  # int64 [n]
    vectors: np.ndarray  # float32 [n, dim]

    @property
    def nbytes(self) -> int:
        return int(self.ids.nbytes + self.vectors.nbytes)

    def candidates(self, query: np.ndarray, limit: int) -> list[int]:
        """The ids of every chunk whose cosine to `query` is within TIE_MARGIN of the limit-th best."""
        if limit >= len(self.ids):
            return [int(i) for i in self.ids]
        scores = self.vectors @ query
        kth = np.partition(scores, len(scores) - limit)[len(scores) - limit]
        return [int(i) for i in self.ids[scores >= kth - TIE_MARGIN]]


def matrix_of(version: int, ids: np.ndarray, vectors: np.ndarray) -> Matrix:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = (vectors / np.maximum(norms, np.finfo(np.float32).tiny)).astype(np.float32, copy=False)
    return Matrix(version, ids.astype(np.int64, copy=False), unit)


class VectorCache:
    def __init__(self, pool: asyncpg.Pool, budget_bytes: int, min_chunks: int, dimensions: int) -> None:
        self.pool = pool
        self.budget_bytes = budget_bytes
        self.min_chunks = min_chunks
        self.dimensions = dimensions
        self._matrices: OrderedDict[UUID, Matrix] = OrderedDict()
        self._bytes = 0
        self._load: asyncio.Task[None] | None = None  # the one load in flight
        self._next_load_at = 0.0  # monotonic: the pause after the last load ends

    def eligible(self, n: int) -> bool:
        return n >= self.min_chunks and n * (self.dimensions * 4 + 8) <= self.budget_bytes

    def matrix(self, chatbot_id: UUID, n: int) -> Matrix | None:
        """The chatbot's copy (of `n` chunks, as last counted), or None: then a load is started if
        the chatbot is eligible, and this search is PostgreSQL's."""
        matrix = self._matrices.get(chatbot_id)
        if matrix is not None:
            self._matrices.move_to_end(chatbot_id)
            return matrix
        if self.eligible(n):
            self._start_load(chatbot_id)
        return None

    def stale(self, chatbot_id: UUID, version: int) -> None:
        """The search statement found the chatbot's chunks changed since `version`: drop the copy."""
        matrix = self._matrices.get(chatbot_id)
        if matrix is not None and matrix.version == version:
            self._remove(chatbot_id)
        self._start_load(chatbot_id)

    def _start_load(self, chatbot_id: UUID) -> None:
        if self._load is not None or time.monotonic() < self._next_load_at:
            return
        self._load = asyncio.get_running_loop().create_task(self._load_copy(chatbot_id))
        self._load.add_done_callback(self._loaded)

    def _loaded(self, task: asyncio.Task[None]) -> None:
        if self._load is task:
            self._load = None

    async def _load_copy(self, chatbot_id: UUID) -> None:
        started = time.monotonic()
        try:
            async with self.pool.acquire() as conn:
                version, ids, vectors = await repository.chunk_vectors(conn, chatbot_id, self.dimensions)
            matrix = matrix_of(version, ids, vectors)
        except Exception:  # searches go on with PostgreSQL's scan; a later one retries
            VECTOR_CACHE_LOADS.labels("failed").inc()
            logger.exception("loading a chatbot's vectors failed", extra={"chatbot_id": str(chatbot_id)})
            return
        finally:
            ended = time.monotonic()
            self._next_load_at = ended + (ended - started) * (1 / LOAD_SHARE - 1)
        self._remove(chatbot_id)
        if not self.eligible(len(ids)):
            VECTOR_CACHE_LOADS.labels("skipped").inc()
            return
        self._matrices[chatbot_id] = matrix
        self._bytes += matrix.nbytes
        while self._bytes > self.budget_bytes:
            self._remove(next(iter(self._matrices)))
        VECTOR_CACHE_LOADS.labels("loaded").inc()
        VECTOR_CACHE_BYTES.set(self._bytes)

    def _remove(self, chatbot_id: UUID) -> None:
        matrix = self._matrices.pop(chatbot_id, None)
        if matrix is not None:
            self._bytes -= matrix.nbytes
            VECTOR_CACHE_BYTES.set(self._bytes)

    async def wait_loaded(self) -> None:
        """Until the load in flight, if any, has finished (tests)."""
        if self._load is not None:
            await asyncio.gather(self._load, return_exceptions=True)

    async def close(self) -> None:
        if self._load is not None:
            self._load.cancel()
            await asyncio.gather(self._load, return_exceptions=True)
        self._matrices.clear()
        self._bytes = 0
