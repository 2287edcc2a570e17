"""Process-wide resources, created once by the app's lifespan and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

from app.config import Settings
from app.db.embedded import EmbeddedPostgres
from app.embedding.service import EmbeddingService


@dataclass
class Resources:
    settings: Settings
    embedder: EmbeddingService
    pool: asyncpg.Pool | None = None
    dsn: str | None = None
    embedded_db: EmbeddedPostgres | None = None
    migrations_pending: list[str] = field(default_factory=list)
    startup_error: str | None = None
    # Long-lived helpers other packages attach (workers, limiter, LLM client...), by name.
    extras: dict[str, Any] = field(default_factory=dict)
