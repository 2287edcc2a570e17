"""Wire shapes of /v1/search."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from app.retrieval.service import Mode
from app.wire import Text


class SearchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"query": "warranty battery", "top_k": 5, "mode": "hybrid"}]}
    )

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "mode": "hybrid",
                    "results": [
                        {
                            "chunk_id": 1042,
                            "source": "7c6b5a49-3827-4165-8f4e-3d2c1b0a9f8e",
                            "name": "Handbook.pdf",
                            "url": None,
                            "content": "Warranty: every Acme gadget carries a two-year warranty covering defects.",
                            "metadata": {"title": "Handbook.pdf", "heading": "Warranty", "page": 3},
                            "score": 0.82,
                        }
                    ],
                }
            ]
        }
    )

    mode: Mode
    results: list[SearchResult]
