"""Encoder throughput per EMBEDDING_BACKEND vs bare torch `model.encode` at its best batch size.

    .venv/bin/python bench/embedding_backends.py [--docs 300] [--data ../shared/data/scifact]

The same texts (SciFact abstracts, title + text, truncated at the model's 256 tokens as the engine
does) go through bare `model.encode(texts, batch_size=B)` with torch on every core for each B in
--bare-batch-sizes, then through the engine's encoder (`EmbeddingService.embed`, EMBEDDING_THREADS
model threads, batches of EMBEDDING_BATCH_SIZE) for each backend. Every timing is taken twice and
the faster kept; the ratios to the best bare torch are printed from this one run, with each
backend's worst and mean cosine to torch's vectors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "fastapi_service"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from app.embedding.service import BACKENDS, EmbeddingService, available_cpus  # noqa: E402

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def engine_rate(service: EmbeddingService, texts: list[str]) -> tuple[float, np.ndarray]:
    async def run() -> tuple[float, np.ndarray]:
        await service.embed(texts[: service.threads * service.batch_size], "bench")  # warm every thread
        best, vectors = float("inf"), np.zeros(0)
        for _ in range(2):
            started = time.perf_counter()
            vectors = await service.embed(texts, "bench")
            best = min(best, time.perf_counter() - started)
        return len(texts) / best, vectors

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "scifact")
    parser.add_argument("--bare-batch-sizes", default="8,16,32,64")
    parser.add_argument("--batch-size", type=int, default=4, help="EMBEDDING_BATCH_SIZE of the engine encoder")
    parser.add_argument("--threads", type=int, default=0, help="EMBEDDING_THREADS (0: one per CPU)")
    args = parser.parse_args()
    lines = (args.data / "corpus.jsonl").read_text().splitlines()[: args.docs]
    texts = [f"{d['title']}\n{d['text']}" for d in map(json.loads, lines)]

    import torch

    torch_service = EmbeddingService(MODEL, args.batch_size, threads=args.threads)
    model = torch_service.load()
    previous = torch.get_num_threads()
    torch.set_num_threads(available_cpus())
    bare: dict[int, float] = {}
    for b in map(int, args.bare_batch_sizes.split(",")):
        model.encode(texts[:8], batch_size=b)
        times = []
        for _ in range(2):
            started = time.perf_counter()
            model.encode(texts, batch_size=b, normalize_embeddings=True, show_progress_bar=False)
            times.append(time.perf_counter() - started)
        bare[b] = len(texts) / min(times)
    torch.set_num_threads(previous)
    best_b = max(bare, key=lambda b: bare[b])
    print(f"texts: {len(texts)} SciFact abstracts; cores: {available_cpus()}; load average {os.getloadavg()[0]:.2f}")
    print("bare torch model.encode: " + ", ".join(f"batch {b}: {r:.2f}/s" for b, r in bare.items()))
    print(f"reference: bare torch at batch {best_b}: {bare[best_b]:.2f} texts/s")
    reference = None
    for name in BACKENDS:
        service = (
            torch_service
            if name == "torch"
            else EmbeddingService(MODEL, args.batch_size, threads=args.threads, backend=name)
        )
        service.load()
        rate, vectors = engine_rate(service, texts)
        reference = vectors if reference is None else reference
        cosines = np.sum(vectors * reference, axis=1)
        print(
            f"engine encoder, {name} ({service.threads} model threads, batch {args.batch_size}): {rate:.2f} texts/s,"
            f" ratio to bare torch {rate / bare[best_b]:.2f}; cosine to torch worst {cosines.min():.4f}"
            f" mean {cosines.mean():.4f}"
        )
        service.close()


if __name__ == "__main__":
    main()
