"""In-process copies of chatbots' chunk vectors and BM25 postings, for an exact dense search and
BM25 without PostgreSQL's scans.

PostgreSQL (pgvector 0.6 in pgserver) computes a cosine distance in ≈ 0.6 µs: 7 ms of a ~10,000-
chunk chatbot's search was its exact scan, and ≈ 3 ms its BM25 (the postings of the query's
terms, read twice: their document frequencies, then their scores, grouped by chunk). The same scan
over a copy of the vectors is one matrix-vector product (≈ 0.5 ms of one core at 9,348 x 384), the
same BM25 over a copy of the postings a few array operations (docs/benchmarks.md). The vectors are
stored by column, and the concurrent searches of one copy share one product (VectorCache.candidates):
the matrix is read from memory once for all of them, which is what the product costs. The copy is
checked by the search statement (repository.FRESH_CTE) against `chunk_set_versions` (migrations
0313 and 0315), raised in the transaction of every change to the chatbot's chunks and postings, and
against the chatbot's text-search configuration; when either differs, PostgreSQL's scans run
instead. With a fresh copy:
- dense: PostgreSQL recomputes the candidates' distances and keeps the best `limit` by its own
  order (distance, then id). The candidates are every chunk scoring within `TIE_MARGIN` of the
  limit-th best here, far above float32 rounding: the result is the exact scan's, ties included.
- BM25: the copy's top `limit` chunks and scores are taken as they are. They are the statement's
  own (repository.KEYWORD_CTES): the same postings and statistics at the same version, the same
  float8 arithmetic in the same order per posting, the query's terms parsed by PostgreSQL with the
  copy's configuration (repository.query_terms). Only the order in which a chunk's per-term
  scores are added may differ, by the last bit of a score.
A stale or missing copy is (re)loaded in the background, one load at a time and each followed by
a pause, so loads take at most `LOAD_SHARE` of the process's time even when more chatbots are
searched than the budget holds; meanwhile a chatbot's searches are PostgreSQL's exact scan and
BM25, as without a copy. Copies are kept for chatbots of `min_chunks` chunks or more (smaller
scans are cheap in PostgreSQL), least recently used first out beyond `budget_bytes`
(RETRIEVAL_VECTOR_CACHE_MB per API process); a chatbot whose last copy did not fit is not loaded
again until its chunk count, at that copy's bytes per chunk, fits.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import numpy as np

from app.observability.metrics import VECTOR_CACHE_BYTES, VECTOR_CACHE_LOADS, VECTOR_SCAN_QUERIES
from app.retrieval import repository

logger = logging.getLogger(__name__)

LOAD_SHARE = 0.05  # a load of 10,000 chunks takes ~50-100 ms, then ~1-2 s pass before the next
TIE_MARGIN = 1e-4  # cosine; float32 rounding of a 384-d dot product is ~1e-6


@dataclass(frozen=True)
class Postings:
    """One chatbot's BM25 postings: for each term, the slice `terms[term]` of `rows` (the chunk's
    row in Matrix.ids, ascending) and `tf`; the chunks' lengths by row; N and avgdl."""

    terms: dict[str, tuple[int, int]]
    rows: np.ndarray  # int32 [postings]
    tf: np.ndarray  # int32 [postings]
    doc_len: np.ndarray  # float64 [chunks]
    n: float
    avgdl: float

    @property
    def nbytes(self) -> int:
        # the dict's table and its keys: a term is a short str (~50-60 bytes) and a tuple (~56)
        keys = sum(sys.getsizeof(term) for term in self.terms) + 120 * len(self.terms)
        return int(self.rows.nbytes + self.tf.nbytes + self.doc_len.nbytes + sys.getsizeof(self.terms) + keys)

    def scores(self, terms: list[str], k1: float, b: float) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the chunks holding any of `terms` (distinct) and their BM25 scores, with the
        search statement's arithmetic (repository.KEYWORD_CTES), operation by operation, over all
        the terms' postings at once; a chunk's per-term scores are added in the order of `terms`."""
        spans = [span for span in map(self.terms.get, terms) if span is not None]
        if not spans:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        df = np.array([end - start for start, end in spans], dtype=np.float64)
        idf = np.array([math.log(x) for x in (1 + (self.n - df + 0.5) / (df + 0.5)).tolist()])  # libm's, as ln
        rows = np.concatenate([self.rows[start:end] for start, end in spans])
        tf = np.concatenate([self.tf[start:end] for start, end in spans]).astype(np.float64)
        dl = self.doc_len[rows]
        weights = np.repeat(idf, df.astype(np.int64)) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / self.avgdl))
        totals = np.bincount(rows, weights=weights, minlength=len(self.doc_len))  # in input order
        held = np.zeros(len(self.doc_len), dtype=bool)  # the chunks with a posting (a bool scan is quick)
        held[rows] = True
        matched = np.flatnonzero(held)
        return matched, totals[matched]


@dataclass(frozen=True, eq=False)  # one copy is one object: compared and hashed by identity
class Matrix:
    """One chatbot's chunks at one version of its chunk set: unit vectors and BM25 postings, by
    row, with their ids (ascending), and the text-search configuration they were indexed with."""

    version: int
    ts_config: str
    ids: np.ndarray  # int64 [n]
    columns: np.ndarray  # float32 [dim, n]: chunk vectors by column (a query's product streams its rows)
    postings: Postings

    @property
    def nbytes(self) -> int:
        return int(self.ids.nbytes + self.columns.nbytes + self.postings.nbytes)

    def cosines(self, queries: np.ndarray) -> np.ndarray:
        """The cosines of unit `queries` ([dim] or [k, dim], float32) to every chunk: [n] or [k, n]."""
        cosines: np.ndarray = queries @ self.columns
        return cosines

    def candidates(self, query: np.ndarray, limit: int) -> list[int]:
        """The ids of every chunk whose cosine to `query` is within TIE_MARGIN of the limit-th best."""
        if limit >= len(self.ids):
            return [int(i) for i in self.ids]
        return self.candidates_of(self.cosines(query), limit)

    def candidates_of(self, scores: np.ndarray, limit: int) -> list[int]:
        """`candidates` from one query's cosines to every chunk, for a `limit` below their number."""
        kth = np.partition(scores, len(scores) - limit)[len(scores) - limit]
        return [int(i) for i in self.ids[scores >= kth - TIE_MARGIN]]

    def keyword(self, terms: list[str], limit: int, k1: float, b: float) -> tuple[list[int], list[float]]:
        """The BM25 top `limit` chunks for the query's `terms`, best first (score, then id), and
        their scores: the search statement's `keyword` rows."""
        rows, scores = self.postings.scores(terms, k1, b)
        if len(rows) > limit:
            kth = np.partition(scores, len(scores) - limit)[len(scores) - limit]
            kept = scores >= kth
            rows, scores = rows[kept], scores[kept]
        order = np.lexsort((rows, -scores))[:limit]  # rows ascend with ids: ties by id
        return self.ids[rows[order]].tolist(), scores[order].tolist()


def matrix_of(rows: repository.ChunkCopyRows) -> Matrix:
    norms = np.linalg.norm(rows.vectors, axis=1, keepdims=True)
    unit = (rows.vectors / np.maximum(norms, np.finfo(np.float32).tiny)).astype(np.float32, copy=False)
    ends = np.cumsum(rows.term_postings)
    starts = ends - rows.term_postings
    terms = {term: (int(start), int(end)) for term, start, end in zip(rows.terms, starts, ends, strict=True)}
    positions = np.searchsorted(rows.ids, rows.posting_ids)
    if int(rows.term_postings.sum()) != len(rows.posting_ids) or (
        len(positions) and (positions.max() >= len(rows.ids) or (rows.ids[positions] != rows.posting_ids).any())
    ):
        raise ValueError("the postings do not match the snapshot's chunks and terms")
    postings = Postings(terms, positions.astype(np.int32), rows.posting_tf, rows.doc_len, rows.n, rows.avgdl)
    columns = np.ascontiguousarray(unit.T)
    return Matrix(rows.version, rows.ts_config, rows.ids.astype(np.int64, copy=False), columns, postings)


class VectorCache:
    def __init__(self, pool: asyncpg.Pool, budget_bytes: int, min_chunks: int, dimensions: int) -> None:
        self.pool = pool
        self.budget_bytes = budget_bytes
        self.min_chunks = min_chunks
        self.dimensions = dimensions
        self._matrices: OrderedDict[UUID, Matrix] = OrderedDict()
        self._bytes = 0
        self._chunk_bytes: dict[UUID, float] = {}  # bytes per chunk of each chatbot's last copy
        self._load: asyncio.Task[None] | None = None  # the one load in flight
        self._next_load_at = 0.0  # monotonic: the pause after the last load ends
        # per copy, the searches waiting for its next product: (query, limit, future) each
        self._scans: dict[Matrix, list[tuple[np.ndarray, int, asyncio.Future[list[int]]]]] = {}

    def eligible(self, chatbot_id: UUID, n: int) -> bool:
        """Whether a copy of the chatbot's `n` chunks is worth loading and fits the budget, by its
        vectors, or by what its last copy held per chunk (postings vary with the text)."""
        per_chunk = max(self.dimensions * 4 + 8, self._chunk_bytes.get(chatbot_id, 0.0))
        return n >= self.min_chunks and n * per_chunk <= self.budget_bytes

    def matrix(self, chatbot_id: UUID, n: int) -> Matrix | None:
        """The chatbot's copy (of `n` chunks, as last counted), or None: then a load is started if
        the chatbot is eligible, and this search is PostgreSQL's."""
        matrix = self._matrices.get(chatbot_id)
        if matrix is not None:
            self._matrices.move_to_end(chatbot_id)
            return matrix
        if self.eligible(chatbot_id, n):
            self._start_load(chatbot_id)
        return None

    async def candidates(self, matrix: Matrix, query: np.ndarray, limit: int) -> list[int]:
        """`matrix.candidates(query, limit)`, the queries of concurrent searches of one copy taken
        in one matrix product: the copy is read from memory once for all of them (a product of
        k queries costs ~2 single ones at k = 8)."""
        if limit >= len(matrix.ids):
            return matrix.candidates(query, limit)
        loop = asyncio.get_running_loop()
        if matrix not in self._scans:  # the first of this loop iteration: the scan runs in the next one
            self._scans[matrix] = []
            loop.call_soon(self._run_scan, matrix)
        future: asyncio.Future[list[int]] = loop.create_future()
        self._scans[matrix].append((query, limit, future))
        return await future

    def _run_scan(self, matrix: Matrix) -> None:
        waiting = [(query, limit, future) for query, limit, future in self._scans.pop(matrix) if not future.done()]
        if not waiting:
            return
        VECTOR_SCAN_QUERIES.observe(len(waiting))
        try:
            cosines = matrix.cosines(np.stack([query for query, _, _ in waiting]))
            found = [matrix.candidates_of(row, limit) for row, (_, limit, _) in zip(cosines, waiting, strict=True)]
        except Exception as exc:  # each search fails as a scan of its own would have
            for _, _, future in waiting:
                future.set_exception(exc)
            return
        for ids, (_, _, future) in zip(found, waiting, strict=True):
            future.set_result(ids)

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
                rows = await repository.chunk_copy(conn, chatbot_id, self.dimensions)
            matrix = matrix_of(rows)
        except Exception:  # searches go on with PostgreSQL's scan; a later one retries
            VECTOR_CACHE_LOADS.labels("failed").inc()
            logger.exception("loading a chatbot's vectors failed", extra={"chatbot_id": str(chatbot_id)})
            return
        finally:
            ended = time.monotonic()
            self._next_load_at = ended + (ended - started) * (1 / LOAD_SHARE - 1)
        self._remove(chatbot_id)
        self._chunk_bytes[chatbot_id] = matrix.nbytes / max(1, len(matrix.ids))
        if len(matrix.ids) < self.min_chunks or matrix.nbytes > self.budget_bytes:
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
