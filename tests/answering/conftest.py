"""Fixtures for answering tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.answering.helpers import HANDBOOK, Bot, create_bot, insert_chunks


@pytest.fixture
async def bot(client: Any, db: Any, embedder: Any) -> Bot:
    created = await create_bot(client)
    await insert_chunks(db, embedder, created.id, HANDBOOK)
    return created
