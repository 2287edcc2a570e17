"""The composition root: the app factory, and the lifespan that builds the typed state (app/state.py)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable

import asyncpg
from fastapi import FastAPI, Request
from starlette.routing import Route
from threadpoolctl import threadpool_limits

from app.analytics.router import router as analytics_router
from app.apidocs.router import ASSETS_PATH as DOCS_ASSETS_PATH
from app.apidocs.router import assets as docs_assets
from app.apidocs.router import router as docs_router
from app.body_limit import BodyLimitMiddleware
from app.chat.router import router as chat_router
from app.chat.service import ChatService
from app.chatbots import service as chatbots_service
from app.chatbots.router import router as chatbots_router
from app.config import Settings, get_settings
from app.conversations.router import router as conversations_router
from app.conversations.service import ConversationsService
from app.db.bootstrap import Database
from app.deps import get_engine, get_services
from app.embedding.service import EmbeddingService
from app.errors import install_error_handlers
from app.generation.extractive import ExtractiveAnswerer
from app.generation.service import Answerer
from app.handoff.router import router as handoff_router
from app.handoff.service import HandoffService
from app.health.router import router as health_router
from app.ingestion.runner import IngestionWorker
from app.internal.receipts import ReceiptSweeper
from app.keys import repository as keys_repository
from app.keys.service import ApiKey, KeyResolver
from app.mcp_server.server import MCP_PATH, KeyGuard, build_server, session_manager_running, streamable_app
from app.mcp_server.service import KnowledgeTools
from app.observability.middleware import RequestContextMiddleware
from app.observability.router import router as metrics_router
from app.openai_compat.router import router as openai_router
from app.public.cors import PublicCorsMiddleware
from app.public.deps import authenticate, request_client_ip
from app.public.origins import OriginRegistry
from app.ratelimit.client_ip import parse_networks
from app.ratelimit.service import RateLimiter
from app.retrieval.service import Retriever
from app.search.router import router as search_router
from app.sources.router import router as sources_router
from app.state import Engine, Services, State
from app.widget.router import config_router as widget_config_router
from app.widget.router import router as widget_router

logger = logging.getLogger(__name__)

# Bound on each step of a graceful stop: a service or a busy connection must not keep the process
# alive forever (ingestion jobs cut short are re-queued by the job queue).
SHUTDOWN_STEP_SECONDS = 45.0
ORIGIN_CACHE_SECONDS = 10.0
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


def build_services(engine: Engine, pool: asyncpg.Pool, search_pool: asyncpg.Pool) -> Services:
    """Every service that needs the database, each built once, here and nowhere else. Searches
    (the retriever) use `search_pool`: generic plans (app/db/pool.py)."""
    settings, embedder = engine.settings, engine.embedder

    async def load_domains() -> list[str]:
        async with pool.acquire() as conn:
            return await keys_repository.allowed_domains_of_active_chatbots(conn)

    retriever = Retriever(search_pool, embedder, settings)
    answerer = Answerer(settings, retriever, ExtractiveAnswerer(embedder, settings.extractive_min_score))
    handoffs = HandoffService(pool, settings)
    worker = None
    if settings.workers_in_process:
        assert engine.database.dsn is not None
        worker = IngestionWorker(
            settings,
            engine.database.dsn,
            pool,
            embedder,
            handoffs,
            functools.partial(chatbots_service.reindex_language, pool),
        )
    return Services(
        pool=pool,
        key_resolver=KeyResolver(pool, settings.key_cache_seconds),
        rate_limiter=RateLimiter(
            settings.rate_limit_storage_url,
            settings.rate_limit_default,
            settings.rate_limit_ip,
            settings.rate_limit_auth_failures,
        ),
        trusted_networks=parse_networks(settings.trusted_proxies),
        origins=OriginRegistry(load_domains, min(ORIGIN_CACHE_SECONDS, settings.key_cache_seconds)),
        retriever=retriever,
        answerer=answerer,
        chat=ChatService(pool, retriever, answerer, settings),
        conversations=ConversationsService(pool, embedder),
        handoffs=handoffs,
        ingestion_worker=worker,
        receipt_sweeper=ReceiptSweeper(pool, settings.webhook_receipt_days, settings.webhook_receipt_sweep_seconds),
    )


async def _load_model(embedder: EmbeddingService) -> None:
    try:
        await embedder.load_async()
    except Exception:
        logger.exception("embedding model failed to load")


async def start(engine: Engine) -> None:
    """Attach the database (retrying) while the model loads, then build and start the services."""
    # numpy's BLAS on one thread: the API's products are small (a chatbot's vector copy times the
    # query, app/retrieval/vectors.py) and OpenBLAS's idle threads spin after each. Measured at
    # 9,348 x 384: 2.7 ms of CPU per product with its 2 threads, 0.9 ms with one.
    threadpool_limits(1, user_api="blas")
    pool, _ = await asyncio.gather(engine.database.connect(), _load_model(engine.embedder))
    try:  # queues their re-index jobs (it re-indexes nothing itself)
        await chatbots_service.align_languages(pool)
    except Exception:  # searches stay consistent (index and queries in the old configuration)
        logger.exception("queueing the re-index of chatbots in their language failed; will try at the next start")
    assert engine.database.search_pool is not None  # connect() opens it: Database(searches=True)
    services = build_services(engine, pool, engine.database.search_pool)
    services.key_resolver.start()
    services.receipt_sweeper.start()
    engine.services = services
    if services.ingestion_worker is not None:
        await services.ingestion_worker.start()


async def stop(engine: Engine, owns_embedder: bool) -> None:
    """Stop what `start` started, in reverse; each step bounded, each failure logged, none skipped."""

    async def step(name: str, action: Awaitable[None]) -> None:
        try:
            async with asyncio.timeout(SHUTDOWN_STEP_SECONDS):
                await action
        except Exception:  # TimeoutError included: shutdown must always finish
            logger.exception("shutdown step failed", extra={"step": name})

    services = engine.services
    if services is not None:
        if services.ingestion_worker is not None:
            await step("ingestion worker", services.ingestion_worker.stop())
        await step("webhook receipt sweep", services.receipt_sweeper.stop())
        await step("key usage flush", services.key_resolver.stop())
        await step("model client", services.answerer.close())
        await step("vector copies", services.retriever.close())
    if owns_embedder:
        engine.embedder.close()
    await step("database", engine.database.close())


async def authenticate_request(request: Request) -> ApiKey:
    """The public key gate of /v1/* (app/public/deps.py) for a request outside FastAPI's routing
    (the MCP app): the same dependencies, called with this request's typed state."""
    services = await get_services(await get_engine(request))
    ip = await request_client_ip(request, services.trusted_networks)
    return await authenticate(request, services.key_resolver, services.rate_limiter, ip)


async def knowledge_tools(request: Request) -> KnowledgeTools:
    services = await get_services(await get_engine(request))
    return KnowledgeTools(services.chat, services.retriever)


def create_app(settings: Settings | None = None, embedder: EmbeddingService | None = None) -> FastAPI:
    """Build the app; tests may pass a loaded `embedder` to share one model between apps."""
    settings = settings or get_settings()
    owns_embedder = embedder is None
    model = embedder or EmbeddingService.from_settings(settings)
    mcp_server = build_server(knowledge_tools)
    mcp_app = streamable_app(mcp_server)  # creates mcp_server.session_manager

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        # Serve at once (/healthz, /readyz say what is missing); the database may come up later.
        engine = Engine(settings=settings, embedder=model, database=Database(settings, searches=True))
        engine.startup = asyncio.create_task(start(engine), name="startup")
        try:
            async with session_manager_running(mcp_server):
                yield State(engine=engine)
        finally:
            engine.startup.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(engine.startup, SHUTDOWN_STEP_SECONDS)
            await stop(engine, owns_embedder)

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
    app.include_router(openai_router)
    app.include_router(handoff_router)
    app.include_router(search_router)
    app.include_router(widget_config_router)
    app.include_router(widget_router)
    # A route, not a mount: a mount at /mcp would answer POST /mcp with a redirect to /mcp/. POST
    # only: stateless, the server never pushes, so a GET stream would idle open forever (405).
    guarded = KeyGuard(mcp_app, authenticate_request)
    app.router.routes.append(Route(MCP_PATH, guarded, methods=["POST"], include_in_schema=False))
    return app
