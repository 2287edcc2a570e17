"""What the MCP tools do, without MCP: ranked passages and a cited answer for one API key.

Both run through the same services as /v1/search and /v1/chat (retrieval scoped by the key's
chatbot id; the chat service's turn with its storage, analytics and feedback id).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from app.chat.service import ChatService, source_dicts
from app.errors import Unprocessable
from app.keys.service import ApiKey
from app.retrieval.service import Retriever

MAX_TOP_K = 20  # passages per search_knowledge call: they go into an agent's context window
MAX_QUERY_CHARS = 4000


class KnowledgeTools:
    def __init__(self, chat: ChatService, retriever: Retriever) -> None:
        self.chat = chat
        self.retriever = retriever

    async def search(self, key: ApiKey, query: str, top_k: int) -> list[dict[str, Any]]:
        query = query.strip()
        if not query:
            raise Unprocessable("query: must not be empty")
        hits = await self.retriever.search(key.chatbot.id, query, top_k)
        cited = source_dicts(hits)
        return [
            {"n": n, "chunk_id": hit.chunk_id, "content": hit.content, **source}
            for n, (hit, source) in enumerate(zip(hits, cited, strict=True), 1)
        ]

    async def ask(self, key: ApiKey, question: str, session_id: UUID | None) -> dict[str, Any]:
        turn = await self.chat.prepare(key, question, session_id)
        async for _event in self.chat.events(turn):
            pass  # collected into turn.result
        result = turn.result
        return {
            "answer": result["answer"],
            "session_id": result["session_id"],
            "message_id": result["message_id"],
            "generator": result["generator"],
            "sources": result["sources"],
        }
