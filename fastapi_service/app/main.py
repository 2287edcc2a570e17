"""App factory and lifespan: database (embedded or external), migrations, model, workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
from fastapi import FastAPI
from starlette.routing import Route

from app.analytics.router import router as analytics_router
from app.apidocs.router import ASSETS_PATH as DOCS_ASSETS_PATH
from app.apidocs.router import assets as docs_assets
from app.apidocs.router import router as docs_router
from app.body_limit import BodyLimitMiddleware
from app.chat.router import router as chat_router
from app.chatbots.router import router as chatbots_router
from app.config import Settings, get_settings
from app.db.embedded import EmbeddedPostgres
from app.db.migrations import apply_migrations
from app.db.pool import create_pool
from app.embedding.service import EmbeddingService
from app.errors import install_error_handlers
from app.health.router import router as health_router
from app.ingestion.hooks import start_workers, stop_workers
from app.keys.deps import authenticate
from app.mcp_server.server import MCP_PATH, KeyGuard, build_server, session_manager_running, streamable_app
from app.mcp_server.service import KnowledgeTools
from app.observability.middleware import RequestContextMiddleware
from app.observability.router import router as metrics_router
from app.openai_compat.router import router as openai_router
from app.public.cors import PublicCorsMiddleware
from app.public.lifecycle import answering_service, start_answering, stop_answering
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


API_DESCRIPTION = """Every error is `{"error": "<kind>", "detail": "<sentence>"}` (schema `ErrorBody`), except on
the OpenAI-compatible routes, which answer in OpenAI's `{"error": {"message", "type", "param", "code"}}`
(schema `OpenAIError`) so OpenAI SDKs read them.

Also served, outside this schema: an MCP server (streamable HTTP) at `/mcp` with the tools
`search_knowledge` and `ask`, for secret keys. The internal routes Odoo calls (signed webhooks) are
not part of this document."""

# One tag per audience; the internal (Odoo-only) routers are left out of the schema in create_app.
OPENAPI_TAGS = [
    {
        "name": "public",
        "description": "Integrators: the REST API. Secret keys (`cbp_sk_…`) from a backend; "
        "publishable keys (`cbp_pk_…`) only from an Origin the chatbot allows.",
    },
    {
        "name": "openai-compatible",
        "description": "Integrators using OpenAI SDKs and tools: Chat Completions "
        "and Models, same keys, limits and isolation as /v1/chat.",
    },
    {"name": "widget", "description": "The chat widget in visitors' browsers (publishable keys)."},
    {"name": "health", "description": "Operators and orchestrators: liveness and readiness."},
]


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
    mcp_server = build_server(
        lambda _request: KnowledgeTools(
            answering_service(resources, "chat_service"), answering_service(resources, "retriever")
        )
    )
    mcp_app = streamable_app(mcp_server)  # creates mcp_server.session_manager

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        starter = asyncio.create_task(_start(resources), name="startup")
        resources.extras["startup_task"] = starter
        try:
            async with session_manager_running(mcp_server):
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
        description=API_DESCRIPTION,
        openapi_tags=OPENAPI_TAGS,
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
    app.include_router(chat_router)
    app.include_router(openai_router)
    app.include_router(search_router)
    app.include_router(widget_config_router)
    app.include_router(widget_router)
    # A route, not a mount: a mount at /mcp would answer POST /mcp with a redirect to /mcp/. POST
    # only: stateless, the server never pushes, so a GET stream would idle open forever (405).
    guarded = KeyGuard(mcp_app, lambda request: authenticate(request, resources))
    app.router.routes.append(Route(MCP_PATH, guarded, methods=["POST"], include_in_schema=False))
    return app
