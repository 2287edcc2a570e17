"""Prometheus metrics: one place that defines every series the engine exports at /metrics.

Packages import the objects they record into; nothing else defines metrics.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

HTTP_REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency by route template.",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)

INGESTION_JOBS = Counter(
    "ingestion_jobs_total",
    "Ingestion jobs finished, by outcome (ready, failed, superseded, retried).",
    ["state"],
)
INGESTION_JOB_SECONDS = Histogram(
    "ingestion_job_duration_seconds",
    "Wall time of one ingestion job (extract + chunk + embed + index).",
    ["kind"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)
INGESTION_QUEUE_DEPTH = Gauge(
    "ingestion_queue_depth",
    "Ingestion jobs waiting to run, by state (todo, doing).",
    ["state"],
)
INGESTED_CHUNKS = Counter("ingested_chunks_total", "Chunks written to the index.")
LANGUAGE_REINDEX_JOBS = Counter(
    "language_reindex_jobs_total",
    "Re-index jobs of a chatbot's keyword index in its language, by outcome (reindexed, aligned, deleted, failed).",
    ["outcome"],
)
LANGUAGE_REINDEX_SECONDS = Histogram(
    "language_reindex_duration_seconds",
    "Wall time of one chatbot's keyword re-index (the chunks rewritten in its language's configuration).",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
)

EMBEDDED_TEXTS = Counter("embedding_texts_total", "Texts embedded by the model.", ["purpose"])
EMBEDDING_SECONDS = Histogram(
    "embedding_batch_duration_seconds",
    "Time to embed one batch.",
    ["purpose"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

LLM_SECONDS = Histogram(
    "llm_request_duration_seconds",
    "Time from request to last token, by generator backend.",
    ["backend", "outcome"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120),
)
LLM_TOKENS = Counter("llm_tokens_total", "Tokens processed by the generator.", ["backend", "kind"])
CHAT_ANSWERS = Counter("chat_answers_total", "Answers given, by generator (ollama, openai, extractive).", ["generator"])
RETRIEVAL_SECONDS = Histogram(
    "retrieval_duration_seconds",
    "Hybrid retrieval time (embed + keyword + vector + fuse).",
    buckets=LATENCY_BUCKETS,
)
VECTOR_CACHE_BYTES = Gauge(
    "retrieval_vector_cache_bytes",
    "Bytes of chatbots' chunk vectors and BM25 postings held in this process (RETRIEVAL_VECTOR_CACHE_MB).",
)
VECTOR_CACHE_LOADS = Counter(
    "retrieval_vector_cache_loads_total",
    "Loads of a chatbot's chunk vectors and postings into this process, by outcome (loaded, skipped: too large, failed).",
    ["outcome"],
)
VECTOR_SCAN_QUERIES = Histogram(
    "retrieval_vector_scan_queries",
    "Searches answered by one matrix product over a chatbot's copied vectors (concurrent searches of a chatbot share one).",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
