"""Shared fixtures: a real PostgreSQL + pgvector (pgserver), the real model, the real app.

Each test that needs a database gets a fresh one, cloned from a migrated template.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from app.config import Environment, Settings
from app.db.migrations import apply_migrations
from app.embedding.service import EmbeddingService
from app.main import create_app
from app.state import Engine, Services, State
from tests.support.signing import TEST_SECRET

TEMPLATE_DB = "rag_template"
_counter = itertools.count()


class PgCluster:
    """The pgserver instance for this test session, with helpers to mint databases."""

    def __init__(self, root: Path) -> None:
        import pgserver

        self.server = pgserver.get_server(root / "pgdata", cleanup_mode="stop")
        self.admin_uri = str(self.server.get_uri("postgres"))

    def uri(self, database: str) -> str:
        return str(self.server.get_uri(database))

    async def create_database(self, template: str | None = TEMPLATE_DB) -> str:
        name = f"t_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
        conn = await asyncpg.connect(self.admin_uri)
        try:
            clause = f" TEMPLATE {template}" if template else ""
            await conn.execute(f"CREATE DATABASE {name}{clause}")
        finally:
            await conn.close()
        return name

    def stop(self) -> None:
        self.server.cleanup()


@pytest.fixture
def pg_state_dir() -> Iterator[Path]:
    """A directory for a pgserver data dir. Not under pytest's tmp: pytest re-chmods its root to
    0700 when another session starts, which locks out the unprivileged `pgserver` user."""
    path = Path(tempfile.mkdtemp(prefix="cbp-pg-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    root = Path(tempfile.mkdtemp(prefix="cbp-pgcluster-"))
    cluster = PgCluster(root)

    async def build_template() -> None:
        conn = await asyncpg.connect(cluster.admin_uri)
        await conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
        await conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")
        await conn.close()
        conn = await asyncpg.connect(cluster.uri(TEMPLATE_DB))
        await apply_migrations(conn)
        await conn.close()

    asyncio.run(build_template())
    yield cluster
    cluster.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def db_url(pg_cluster: PgCluster) -> str:
    """A fresh, fully migrated database for this test."""
    return pg_cluster.uri(await pg_cluster.create_database())


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    from app.db.pool import init_connection

    conn = await asyncpg.connect(db_url)
    await init_connection(conn)
    yield conn
    await conn.close()


@pytest.fixture(scope="session")
def embedder() -> EmbeddingService:
    """The engine's model with its default settings (EMBEDDING_BACKEND's default included)."""
    service = EmbeddingService.from_settings(make_settings())
    service.load()
    return service


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": Environment.TEST,
        "webhook_secret": TEST_SECRET,
        "llm_backend": "none",
        "log_format": "text",
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def with_lifespan_state(app: ASGIApp, state: State) -> ASGIApp:
    """What an ASGI server does with the state a lifespan yields: a shallow copy into every request's
    scope (httpx's ASGITransport runs no lifespan, so it would not)."""

    async def app_with_state(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope["state"] = dict(state)
        await app(scope, receive, send)

    return app_with_state


class EngineClient(httpx.AsyncClient):
    """An httpx client on an in-process app, with the app's typed state for white-box checks.

    `app` is the app as a server runs it (lifespan state included), e.g. for a LiveServer."""

    app: ASGIApp
    engine: Engine

    @property
    def services(self) -> Services:
        assert self.engine.services is not None, "the engine has not built its services"
        return self.engine.services


@pytest.fixture
async def app_factory(embedder: EmbeddingService) -> AsyncIterator[Any]:
    """Start in-process apps (lifespan included) against given settings; yields an httpx client."""
    stack: list[Any] = []

    async def start(settings: Settings) -> EngineClient:
        app = create_app(settings, embedder=embedder)
        lifespan = app.router.lifespan_context(app)
        state: State = await lifespan.__aenter__()
        stack.append(lifespan)
        engine = state["engine"]
        assert engine.startup is not None
        await asyncio.wait_for(asyncio.shield(engine.startup), 60)
        served = with_lifespan_state(app, state)
        client = EngineClient(transport=httpx.ASGITransport(app=served), base_url="http://engine.test")
        client.app, client.engine = served, engine
        stack.append(client)
        return client

    yield start
    for item in reversed(stack):
        if isinstance(item, httpx.AsyncClient):
            await item.aclose()
        else:
            await item.__aexit__(None, None, None)


@pytest.fixture
async def client(app_factory: Any, db_url: str) -> httpx.AsyncClient:
    """An in-process engine on a fresh database."""
    return await app_factory(make_settings(database_url=db_url))  # type: ignore[no-any-return]
