"""App factory and lifespan: database (embedded or external), migrations, model, workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
from fastapi import FastAPI

from app.analytics.router import router as analytics_router
from app.apidocs.router import ASSETS_PATH as DOCS_ASSETS_PATH
from app.apidocs.router import assets as docs_assets
from app.apidocs.router import router as docs_router
from app.body_limit import BodyLimitMiddleware
from app.chat.router import router as chat_router
from app.chatbots.router import router as chatbots_router
from app.config import Settings, get_settings
from app.conversations.router import router as conversations_router
from app.db.embedded import EmbeddedPostgres
from app.db.migrations import apply_migrations
from app.db.pool import create_pool
from app.embedding.service import EmbeddingService
from app.errors import install_error_handlers
from app.handoff.router import router as handoff_router
from app.health.router import router as health_router
from app.ingestion.hooks import start_workers, stop_workers
from app.observability.middleware import RequestContextMiddleware
from app.observability.router import router as metrics_router
from app.public.cors import PublicCorsMiddleware
from app.public.lifecycle import start_answering, stop_answering
from app.resources import Resources
from app.search.router import router as search_router
from app.sources.router import router as sources_router
from app.widget.router import config_router as widget_config_router
from app.widget.router import router as widget_router

logger = logging.getLogger(__name__)

# Hooks other packages register to run once the database is ready / at shutdown
# (ingestion workers, schedulers...). Each receives the shared Resources.
Hook = Callable[[Resources], Awaitable[None]]
READY_HOOKS: list[Hook] = []
# Bounds on a graceful stop: a hook or a busy connection must not keep the process alive forever
# (ingestion jobs cut short are re-queued by the job queue).
SHUTDOWN_HOOK_SECONDS = 45.0
POOL_CLOSE_SECONDS = 10.0
SHUTDOWN_HOOKS: list[Hook] = []
READY_HOOKS.append(start_answering)
SHUTDOWN_HOOKS.append(stop_answering)
READY_HOOKS.append(start_workers)
SHUTDOWN_HOOKS.append(stop_workers)


async def _connect_database(resources: Resources) -> None:
    """Start/attach the database, apply migrations, open the pool; retry until it works."""
    settings = resources.settings
    delay = 0.5
    while True:
        try:
            if settings.embedded_database:
                if resources.embedded_db is None:
                    resources.embedded_db = EmbeddedPostgres(settings.state_dir)
                    resources.dsn = await asyncio.to_thread(resources.embedded_db.start)
            else:
                resources.dsn = settings.database_url
            assert resources.dsn is not None
            conn = await asyncpg.connect(resources.dsn, timeout=10)
            try:
                applied = await apply_migrations(conn)
                if applied:
                    logger.info("migrations applied", extra={"migrations": applied})
            finally:
                await conn.close()
            resources.pool = await create_pool(settings, resources.dsn)
            resources.startup_error = None
            return
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            resources.startup_error = f"unreachable: {type(exc).__name__}: {exc}"
            logger.warning("database not reachable yet; retrying", extra={"error": str(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)


async def _load_model(resources: Resources) -> None:
    try:
        await resources.embedder.load_async()
    except Exception:
        logger.exception("embedding model failed to load")


async def _start(resources: Resources) -> None:
    await asyncio.gather(_connect_database(resources), _load_model(resources))
    for hook in READY_HOOKS:
        await hook(resources)


def create_app(settings: Settings | None = None, embedder: EmbeddingService | None = None) -> FastAPI:
    """Build the app; tests may pass a loaded `embedder` to share one model between apps."""
    settings = settings or get_settings()
    owns_embedder = embedder is None
    embedder = embedder or EmbeddingService.from_settings(settings)
    resources = Resources(settings=settings, embedder=embedder)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        starter = asyncio.create_task(_start(resources), name="startup")
        resources.extras["startup_task"] = starter
        try:
            yield
        finally:
            starter.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(starter, SHUTDOWN_HOOK_SECONDS)
            for hook in reversed(SHUTDOWN_HOOKS):
                try:
                    async with asyncio.timeout(SHUTDOWN_HOOK_SECONDS):
                        await hook(resources)
                except Exception:  # TimeoutError included: shutdown must always finish
                    logger.exception("shutdown hook failed", extra={"hook": hook.__qualname__})
            if resources.pool is not None:
                try:
                    await asyncio.wait_for(resources.pool.close(), POOL_CLOSE_SECONDS)
                except TimeoutError:
                    logger.warning("database connections still busy at shutdown; terminating them")
                    resources.pool.terminate()
            if owns_embedder:
                embedder.close()
            if resources.embedded_db is not None:
                await asyncio.to_thread(resources.embedded_db.stop)

    app = FastAPI(
        title="Chatbot Platform engine",
        version="1.0.0",
        summary="Retrieval-augmented answers over a tenant's documents.",
        lifespan=lifespan,
        docs_url=None,  # served offline by app.apidocs
        redoc_url=None,
    )
    app.state.resources = resources
    install_error_handlers(app)
    app.add_middleware(PublicCorsMiddleware)
    app.add_middleware(
        BodyLimitMiddleware, public_max=settings.public_max_body_bytes, internal_max=settings.webhook_max_body_bytes
    )
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health_router)
    app.include_router(docs_router)
    app.mount(DOCS_ASSETS_PATH, docs_assets, name="docs-assets")
    app.include_router(metrics_router)
    # Internal (signed, Odoo-only) routes are left out of the public OpenAPI schema.
    app.include_router(chatbots_router, include_in_schema=False)
    app.include_router(sources_router, include_in_schema=False)
    app.include_router(analytics_router, include_in_schema=False)
    app.include_router(conversations_router, include_in_schema=False)
    app.include_router(chat_router)
    app.include_router(handoff_router)
    app.include_router(search_router)
    app.include_router(widget_config_router)
    app.include_router(widget_router)
    return app
