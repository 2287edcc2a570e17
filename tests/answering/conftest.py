"""Fixtures for answering tests."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.answering.helpers import HANDBOOK, Bot, answering_settings, create_bot, insert_chunks


@pytest.fixture
async def client(app_factory: Any, db_url: str) -> httpx.AsyncClient:
    """An in-process engine on a fresh database, without ingestion workers."""
    return await app_factory(answering_settings(database_url=db_url))  # type: ignore[no-any-return]


@pytest.fixture
async def bot(client: Any, db: Any, embedder: Any) -> Bot:
    created = await create_bot(client)
    await insert_chunks(db, embedder, created.id, HANDBOOK)
    return created
