"""Named dependency aliases shared by the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from app.config import Settings
from app.embedding.service import EmbeddingService
from app.errors import ServiceUnavailable
from app.resources import Resources


def get_resources(request: Request) -> Resources:
    return request.app.state.resources  # type: ignore[no-any-return]


ResourcesDep = Annotated[Resources, Depends(get_resources)]


def get_settings_dep(resources: ResourcesDep) -> Settings:
    return resources.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_pool(resources: ResourcesDep) -> asyncpg.Pool:
    if resources.pool is None:
        raise ServiceUnavailable("the database is not ready yet", headers={"Retry-After": "5"})
    return resources.pool


PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]


async def get_db(pool: PoolDep) -> AsyncIterator[asyncpg.Connection]:
    async with pool.acquire() as conn:
        yield conn


DbDep = Annotated[asyncpg.Connection, Depends(get_db)]


def get_embedder(resources: ResourcesDep) -> EmbeddingService:
    return resources.embedder


EmbedderDep = Annotated[EmbeddingService, Depends(get_embedder)]
