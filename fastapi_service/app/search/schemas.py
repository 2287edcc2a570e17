"""Wire shapes of /v1/search."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from app.retrieval.service import Mode
from app.wire import Text


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Text = Field(min_length=1, max_length=4000)
    top_k: int = Field(10, ge=1, le=100)
    mode: Mode = Mode.HYBRID  # dense / keyword: for evaluation and debugging


class SearchResult(BaseModel):
    chunk_id: int
    source: UUID
    name: str
    url: str | None
    content: str
    metadata: dict[str, Any]
    score: float


class SearchResponse(BaseModel):
    mode: Mode
    results: list[SearchResult]
