"""One real engine process for the integrator tests: real database, real embedding model, a
protocol-level Ollama stand-in on 127.0.0.1 streaming the answer token by token.

Chatbot A holds the handbook; chatbot B holds the same handbook plus a secret of its own, so a
leak across keys would show up as one of B's chunk or source ids in A's results.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from app.db.pool import init_connection
from tests.answering.fake_llm import FakeModelServer
from tests.answering.helpers import HANDBOOK, Bot, create_bot, insert_chunks
from tests.support.server import EngineProcess
from tests.support.signing import TEST_SECRET

TOKENS = ["Returns ", "are ", "accepted ", "within ", "30 days ", "[1]."]
B_SECRET = "Project Nightingale: the launch code of chatbot B is 4711-ALPHA and must stay private."
RATE_LIMITED = {"key_per_minute": 3, "ip_per_minute": None}
MAX_MESSAGE_CHARS = 500


@dataclass
class Tenants:
    a: Bot
    b: Bot
    a_chunks: set[int]
    b_chunks: set[int]


@pytest.fixture(scope="package")
def fake_model() -> Iterator[FakeModelServer]:
    with FakeModelServer(TOKENS, delay=0.05) as fake:
        yield fake


@pytest.fixture(scope="package")
def engine_db(pg_cluster) -> str:
    return pg_cluster.uri(asyncio.run(pg_cluster.create_database()))


@pytest.fixture(scope="package")
def engine(engine_db, fake_model, tmp_path_factory) -> Iterator[EngineProcess]:
    process = EngineProcess(
        {
            "DATABASE_URL": engine_db,
            "WEBHOOK_SECRET": TEST_SECRET,
            "ENVIRONMENT": "test",
            "LLM_BACKEND": "ollama",
            "OLLAMA_URL": fake_model.url,
            "OLLAMA_MODEL": "acme-model:1b",
            "WORKERS_IN_PROCESS": "false",
            "MAX_MESSAGE_CHARS": str(MAX_MESSAGE_CHARS),
            "HISTORY_TURNS": "2",
        },
        tmp_path_factory.mktemp("integrators") / "engine.log",
    )
    process.start(timeout=180)
    yield process
    process.stop()


@pytest.fixture(scope="package")
async def db(engine_db) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(engine_db)
    await init_connection(conn)
    yield conn
    await conn.close()


@pytest.fixture(scope="package")
async def tenants(engine, db, embedder) -> Tenants:
    async with httpx.AsyncClient(base_url=engine.url, timeout=30) as http:
        a = await create_bot(http, name="Bot A")
        b = await create_bot(http, name="Bot B")
    a_chunks = set(await insert_chunks(db, embedder, a.id, HANDBOOK, name="A-handbook.pdf"))
    b_chunks = set(await insert_chunks(db, embedder, b.id, [*HANDBOOK, B_SECRET], name="B-handbook.pdf"))
    return Tenants(a, b, a_chunks, b_chunks)


@pytest.fixture
async def limited(engine) -> Bot:
    """A chatbot of its own per test whose key may make 3 requests a minute."""
    async with httpx.AsyncClient(base_url=engine.url, timeout=30) as http:
        return await create_bot(http, name="Limited bot", rate_limits=RATE_LIMITED)
