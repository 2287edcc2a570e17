"""The engine's one settings object, read from the environment and `.env`.

Every variable here is documented in the README's configuration table and in `.env.example`.
"""

from __future__ import annotations

import base64
import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLACEHOLDER_MARKERS = ("change-me", "changeme", "placeholder", "example", "xxxx")
DEV_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"local-development-only-secret!!").decode()


def default_state_dir() -> Path:
    """Where local mode keeps its embedded database: `$XDG_DATA_HOME/chatbot-platform`."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "chatbot-platform"


class Environment(StrEnum):
    LOCAL = "local"
    TEST = "test"
    PRODUCTION = "production"


class LLMBackend(StrEnum):
    OLLAMA = "ollama"
    OPENAI = "openai"
    NONE = "none"  # always answer extractively


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Environment = Environment.LOCAL
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    public_base_url: str = ""  # how browsers reach the engine; derived from host/port when empty
    log_level: str = "INFO"
    log_format: str = Field("json", pattern="^(json|text)$")

    # Database. Unset DATABASE_URL => start the embedded pgserver in `state_dir`.
    database_url: str | None = None
    state_dir: Path = Field(default_factory=default_state_dir)
    db_pool_min: int = Field(1, ge=1)
    db_pool_max: int = Field(10, ge=1)
    db_search_pool_max: int = Field(10, ge=1)  # API processes: the search pool (app/db/pool.py)
    db_command_timeout: float = Field(30.0, gt=0)

    # Embeddings
    embedding_model: str = "sentence-transformers/all-MiniLM-L6-v2"
    embedding_batch_size: int = Field(4, ge=1, le=1024)  # chunks per encode call
    embedding_threads: int = Field(0, ge=0, le=256)  # model threads, one core each; 0 = one per CPU
    embedding_dim: int = 384
    # torch | onnx | onnx-int8: the ONNX graphs are exported at install time (app/embedding/onnx_export.py).
    # onnx-int8, the fastest within 0.5 nDCG@10 of torch on SciFact (docs/benchmarks.md#embedding-backends)
    embedding_backend: str = Field("onnx-int8", pattern="^(torch|onnx|onnx-int8)$")
    embedding_onnx_dir: Path | None = None  # the export's directory; unset: <venv>/share/chatbot-platform-engine/onnx

    # Odoo <-> engine
    webhook_secret: str = DEV_WEBHOOK_SECRET
    odoo_url: str = ""  # where status callbacks go; empty => callbacks are not sent
    webhook_max_body_bytes: int = Field(40 * 1024 * 1024, ge=1024)
    # Largest clock skew of a signed write; at most Standard Webhooks' own 300 s, which the library
    # enforces first (so this can only tighten the window).
    webhook_tolerance_seconds: float = Field(300.0, gt=0, le=300)
    webhook_read_tolerance_seconds: float = Field(30.0, gt=0, le=300)  # signed GETs
    json_max_depth: int = Field(32, ge=4, le=256)  # deeper JSON bodies are refused (422)
    # Webhook-ids are remembered this long (an outbox row keeps its id for manual retries), then swept.
    webhook_receipt_days: float = Field(30.0, ge=1, le=3650)
    webhook_receipt_sweep_seconds: float = Field(3600.0, gt=0, le=86400)

    # Ingestion
    workers_in_process: bool = True
    worker_concurrency: int = Field(2, ge=1, le=64)
    worker_metrics_port: int = Field(0, ge=0, le=65535)  # `python -m app.worker` serves /metrics here; 0 = off
    max_document_bytes: int = Field(25 * 1024 * 1024, ge=1)
    max_pdf_pages: int = Field(500, ge=1)
    max_extracted_chars: int = Field(5_000_000, ge=1)
    extraction_timeout_seconds: float = Field(60.0, gt=0)
    extraction_memory_mb: int = Field(768, ge=64)
    max_chunks_per_document: int = Field(10_000, ge=1)  # per document or crawled link; more => failed
    ingest_batch_chunks: int = Field(64, ge=1, le=4096)  # chunks embedded and written per step
    chunk_tokens: int = Field(256, ge=32, le=256)
    chunk_overlap_tokens: int = Field(32, ge=0, le=128)
    contextual_chunks: bool = False  # embed and keyword-index each chunk with its title and section heading
    fetch_timeout_seconds: float = Field(15.0, gt=0)
    fetch_max_bytes: int = Field(10 * 1024 * 1024, ge=1)
    fetch_max_redirects: int = Field(5, ge=0, le=20)
    fetch_user_agent: str = "ChatbotPlatformBot/1.0"
    # TEST ONLY: lets the link fetcher reach loopback/private addresses so tests can crawl a local
    # server. Never set in production: it disables the SSRF address checks (see docs/ingestion.md).
    fetch_allow_private_networks: bool = False
    crawl_max_depth: int = Field(3, ge=0, le=10)  # a link asking for a deeper crawl fails with the reason
    crawl_max_pages: int = Field(200, ge=1, le=5000)  # a link asking for more pages fails with the reason
    crawl_max_sitemap_urls: int = Field(1000, ge=0)
    job_max_attempts: int = Field(5, ge=0, le=50)  # retries of a job failing transiently
    job_retry_base_seconds: int = Field(2, ge=1, le=60)  # backoff: base ** (attempt + 1) seconds
    worker_shutdown_grace_seconds: float = Field(20.0, ge=0)  # then in-flight jobs are re-queued
    worker_heartbeat_seconds: float = Field(5.0, gt=0)
    worker_stalled_seconds: float = Field(30.0, gt=0)  # no heartbeat this long => its jobs re-run
    worker_poll_seconds: float = Field(1.0, gt=0)  # outbox drain / sweeps
    link_refresh_sweep_seconds: float = Field(60.0, gt=0)
    callback_timeout_seconds: float = Field(10.0, gt=0)
    callback_max_attempts: int = Field(15, ge=1)  # then the status is dropped and logged
    progress_callback_seconds: float = Field(2.0, ge=0)  # at most one `processing` progress status this often

    # Generation
    llm_backend: LLMBackend = LLMBackend.OLLAMA
    ollama_url: str = "http://127.0.0.1:11434"
    ollama_model: str = "qwen2.5:0.5b-instruct"
    openai_base_url: str = ""
    openai_api_key: str = ""
    openai_model: str = ""
    llm_timeout_seconds: float = Field(60.0, gt=0)
    llm_max_concurrency: int = Field(4, ge=1)
    llm_queue_timeout_seconds: float = Field(2.0, ge=0)

    # Public API
    public_max_body_bytes: int = Field(64 * 1024, ge=1024)  # every non-internal route; 413 above
    metrics_token: str = ""  # /metrics needs `Authorization: Bearer <token>`; empty: open in local/test only
    rate_limit_storage_url: str = "memory://"
    rate_limit_default: str = "60/minute"
    rate_limit_ip: str = "120/minute"
    rate_limit_auth_failures: str = "20/minute"  # failed key checks per client IP; then every request waits
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    key_cache_seconds: float = Field(30.0, ge=0, le=60)
    max_message_chars: int = Field(4000, ge=1)
    history_turns: int = Field(6, ge=0, le=50)

    # Retrieval and answers (docs/answering.md)
    retrieval_exact_max_chunks: int = Field(10_000, ge=0)  # larger chatbots use the HNSW index
    # API processes hold the vectors and BM25 postings of chatbots from this many chunks (up to the
    # exact limit) for the exact scan and BM25, up to this many MiB each (app/retrieval/vectors.py);
    # 0 MiB: none
    retrieval_vector_cache_min_chunks: int = Field(2000, ge=0)
    retrieval_vector_cache_mb: int = Field(256, ge=0)
    retrieval_candidates: int = Field(50, ge=1, le=1000)  # per retriever, before fusion
    retrieval_fusion: str = Field("convex", pattern="^(convex|rrf)$")
    retrieval_dense_weight: float = Field(0.5, ge=0, le=1)  # convex fusion: weight of the cosine
    bm25_k1: float = Field(0.9, gt=0)
    bm25_b: float = Field(0.4, ge=0, le=1)
    hnsw_ef_search: int = Field(100, ge=1, le=1000)
    answer_min_similarity: float = Field(0.3, ge=-1, le=1)  # below: "I don't know" + unanswered
    extractive_min_score: float = Field(0.47, ge=0, le=1)  # extractive: best sentence below => "I don't know"
    no_answer_message: str = "I don't know: I couldn't find anything about that in the documents I have."

    @field_validator("embedding_onnx_dir", mode="before")
    @classmethod
    def _empty_is_default(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment in (Environment.LOCAL, Environment.TEST):
            return self
        secret = self.webhook_secret
        if secret == DEV_WEBHOOK_SECRET or any(m in secret.lower() for m in PLACEHOLDER_MARKERS):
            raise ValueError(
                "WEBHOOK_SECRET is a placeholder; generate one with "
                "`python -c \"import base64,secrets;print('whsec_'+base64.b64encode(secrets.token_bytes(32)).decode())\"`"
            )
        if webhook_secret_bytes(secret) is None or len(webhook_secret_bytes(secret) or b"") < 24:
            raise ValueError("WEBHOOK_SECRET must be 'whsec_' + base64 of at least 24 random bytes")
        if self.database_url is None:
            raise ValueError("DATABASE_URL is required outside local/test mode")
        return self

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def base_url(self) -> str:
        return self.public_base_url.rstrip("/") or f"http://{self.host}:{self.port}"


def webhook_secret_bytes(secret: str) -> bytes | None:
    """Decode a `whsec_<base64>` secret; None when it is not of that form."""
    if not secret.startswith("whsec_"):
        return None
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except ValueError:
        return None


@lru_cache
def get_settings() -> Settings:
    return Settings()
