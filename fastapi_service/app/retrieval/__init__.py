"""Hybrid retrieval: BM25 over a trigger-maintained inverted index + pgvector cosine, fused."""
