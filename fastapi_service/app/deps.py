"""Named dependencies over the typed state (`app/state.py`): `ChatServiceDep`, `RetrieverDep`, ...

Each reads `request.state.engine`, the `Engine` the lifespan yielded; a service that needs the
database is a 503 with Retry-After until the engine has built it. They are `async def` although
they never await: FastAPI runs a sync dependency in its thread pool, a thread hop per request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from app.chat.service import ChatService
from app.config import Settings
from app.conversations.service import ConversationsService
from app.db.pool import Connection
from app.embedding.service import EmbeddingService
from app.errors import ServiceUnavailable
from app.generation.service import Answerer
from app.handoff.service import HandoffService
from app.keys.service import KeyResolver
from app.public.origins import OriginRegistry
from app.ratelimit.client_ip import Network
from app.ratelimit.service import RateLimiter
from app.retrieval.service import Retriever
from app.state import Engine, Services

RETRY_AFTER = {"Retry-After": "5"}


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.state.engine
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


async def get_settings_dep(engine: EngineDep) -> Settings:
    return engine.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_embedder(engine: EngineDep) -> EmbeddingService:
    return engine.embedder


EmbedderDep = Annotated[EmbeddingService, Depends(get_embedder)]


async def get_pool(engine: EngineDep) -> asyncpg.Pool:
    if engine.database.pool is None:
        raise ServiceUnavailable("the database is not ready yet", headers=RETRY_AFTER)
    return engine.database.pool


PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]


async def get_db(pool: PoolDep) -> AsyncIterator[Connection]:
    async with pool.acquire() as conn:
        yield conn


DbDep = Annotated[Connection, Depends(get_db)]


async def get_services(engine: EngineDep) -> Services:
    if engine.services is None:
        raise ServiceUnavailable("the engine is starting; retry shortly", headers=RETRY_AFTER)
    return engine.services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_key_resolver(services: ServicesDep) -> KeyResolver:
    return services.key_resolver


KeyResolverDep = Annotated[KeyResolver, Depends(get_key_resolver)]


async def get_rate_limiter(services: ServicesDep) -> RateLimiter:
    return services.rate_limiter


RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]


async def get_trusted_networks(services: ServicesDep) -> list[Network]:
    return services.trusted_networks


TrustedNetworksDep = Annotated[list[Network], Depends(get_trusted_networks)]


async def get_origins(services: ServicesDep) -> OriginRegistry:
    return services.origins


OriginRegistryDep = Annotated[OriginRegistry, Depends(get_origins)]


async def get_retriever(services: ServicesDep) -> Retriever:
    return services.retriever


RetrieverDep = Annotated[Retriever, Depends(get_retriever)]


async def get_answerer(services: ServicesDep) -> Answerer:
    return services.answerer


AnswererDep = Annotated[Answerer, Depends(get_answerer)]


async def get_chat_service(services: ServicesDep) -> ChatService:
    return services.chat


ChatServiceDep = Annotated[ChatService, Depends(get_chat_service)]


def get_conversations_service(services: ServicesDep) -> ConversationsService:
    return services.conversations


ConversationsServiceDep = Annotated[ConversationsService, Depends(get_conversations_service)]


def get_handoff_service(services: ServicesDep) -> HandoffService:
    return services.handoffs


HandoffServiceDep = Annotated[HandoffService, Depends(get_handoff_service)]
