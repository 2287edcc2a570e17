"""POST /v1/search: ranked chunks for secret keys. Thin."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.deps import RetrieverDep
from app.errors import Unprocessable
from app.public.deps import SecretKeyDep
from app.search.schemas import SearchRequest, SearchResponse

router = APIRouter(prefix="/v1", tags=["public"])


@router.post("/search", response_model=SearchResponse)
async def search(body: SearchRequest, key: SecretKeyDep, retriever: RetrieverDep) -> Any:
    query = body.query.strip()
    if not query:
        raise Unprocessable("query: must not be empty")
    hits = await retriever.search(key.chatbot.id, query, body.top_k, body.mode)
    results = [
        {
            "chunk_id": h.chunk_id,
            "source": h.source_id,
            "name": h.name,
            "url": h.url,
            "content": h.content,
            "metadata": h.metadata,
            "score": h.score,
        }
        for h in hits
    ]
    return {"mode": body.mode, "results": results}
