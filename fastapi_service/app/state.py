"""The engine's typed state: built once by `main.py`'s lifespan, read through `app/deps.py`.

The lifespan yields `State` (Starlette's lifespan state, as in Polar's `server/polar/app.py`);
the server copies it into every request's `request.state`. The database may come up after the
first request (it is attached in the background, with retries), so the services that need it
live in `Engine.services`, set once they are built: `None` until then, and the dependencies in
`app/deps.py` answer 503 meanwhile. Nothing is looked up by a string key.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TypedDict
from uuid import UUID

import asyncpg

from app.chat.service import ChatService
from app.config import Settings
from app.conversations.service import ConversationsService
from app.db.bootstrap import Database
from app.embedding.service import EmbeddingService
from app.generation.service import Answerer
from app.handoff.service import HandoffService
from app.ingestion.runner import IngestionWorker
from app.internal.receipts import ReceiptSweeper
from app.keys.service import KeyResolver
from app.public.origins import OriginRegistry
from app.ratelimit.client_ip import Network
from app.ratelimit.service import RateLimiter
from app.retrieval.service import Retriever


@dataclass(frozen=True)
class Services:
    """The long-lived services that need the database, built together once it is reachable."""

    pool: asyncpg.Pool
    key_resolver: KeyResolver
    rate_limiter: RateLimiter
    trusted_networks: list[Network]
    origins: OriginRegistry
    retriever: Retriever
    answerer: Answerer
    chat: ChatService
    conversations: ConversationsService
    handoffs: HandoffService
    ingestion_worker: IngestionWorker | None  # None unless WORKERS_IN_PROCESS
    receipt_sweeper: ReceiptSweeper


@dataclass
class Engine:
    """One API process's long-lived objects."""

    settings: Settings
    embedder: EmbeddingService
    database: Database
    services: Services | None = None
    startup: asyncio.Task[None] | None = None  # attaches the database, loads the model, builds services

    def forget_chatbot(self, chatbot_id: UUID) -> None:
        """A chatbot was updated or deleted here: this process's caches of it (keys with their
        chatbot, CORS allow-lists) are dropped at once. Other API processes follow within
        KEY_CACHE_SECONDS (at most 60 s), their caches' lifetime."""
        if self.services is not None:
            self.services.key_resolver.forget_chatbot(chatbot_id)
            self.services.origins.invalidate()


class State(TypedDict):
    engine: Engine
