"""The MCP server at /mcp: tools `search_knowledge` and `ask`, streamable HTTP, secret keys.

Built on the official SDK's `MCPServer`; main.py routes POST /mcp to its Starlette app (behind
`KeyGuard`) and runs its session manager for the engine's lifetime (`session_manager_running`: an
app served inside another never has its own lifespan run). Stateless and JSON responses:
every POST is answered on its own, so any engine process behind a load balancer can serve any
call, and no session state ties one key's calls to another's.

Authentication is the engine's, not the SDK's `TokenVerifier`: `KeyGuard` runs the same key check
as /v1/* (same 401/403/429 bodies, the per-IP budget of failed attempts, the key and IP rate
limits, every HTTP request counted) and leaves the verified key in the request's scope state, where
the tools read it; a client cannot put anything there. `TokenVerifier` is the hook of an OAuth
resource server: it would answer in OAuth's error shape and skip the failure budget, and our keys
are not OAuth tokens issued by an authorization server we could advertise.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated
from uuid import UUID

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.chat.schemas import SourceOut
from app.errors import AppError, Forbidden, error_response
from app.keys.service import ApiKey
from app.mcp_server.service import MAX_QUERY_CHARS, MAX_TOP_K, KnowledgeTools

Authenticate = Callable[[Request], Awaitable[ApiKey]]  # raises AppError
MCP_PATH = "/mcp"
KEY_STATE = "api_key"  # scope["state"][KEY_STATE]: the ApiKey KeyGuard verified


class Passage(SourceOut):
    n: int = Field(description="cite it as [n]")
    chunk_id: int
    content: str = Field(description="the passage's full text")


class SearchResults(BaseModel):
    results: list[Passage]


class Answer(BaseModel):
    answer: str = Field(description="the chatbot's answer; [n] refers to sources[n-1]")
    session_id: UUID = Field(description="pass it back to `ask` to continue the conversation")
    message_id: UUID = Field(description="the id to send to POST /v1/feedback")
    generator: str
    sources: list[SourceOut]


def http_request(ctx: Context) -> Request:
    request = ctx.request_context.request
    if not isinstance(request, Request):  # stdio or in-memory: no HTTP request, so no key
        raise PermissionError("this server needs an API key; call it over HTTP at /mcp")
    return request


def caller_key(request: Request) -> ApiKey:
    key = request.scope.get("state", {}).get(KEY_STATE)
    if not isinstance(key, ApiKey):  # only reachable without KeyGuard in front
        raise PermissionError("this server needs an API key; call it over HTTP at /mcp")
    return key


@asynccontextmanager
async def engine_errors() -> AsyncIterator[None]:
    """The engine's refusals (too long, no such session, busy...) reach the model as tool errors
    with their sentence; anything unexpected stays the SDK's generic, logged crash."""
    try:
        yield
    except AppError as exc:
        raise ToolError(f"{exc.error}: {exc.detail}") from exc


def build_server(tools: Callable[[Request], Awaitable[KnowledgeTools]]) -> MCPServer:
    """`tools(request)` returns the services serving that request (an engine error, 503-style,
    while the engine is starting)."""
    server = MCPServer(
        "chatbot-platform",
        title="Chatbot Platform knowledge base",
        instructions=(
            "Tools over one organisation's documents. search_knowledge returns ranked passages to "
            "read; ask returns the organisation's chatbot answer with numbered sources. Cite [n]."
        ),
        version="1.0.0",
    )

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))
    async def search_knowledge(
        query: Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS, description="what to look for")],
        ctx: Context,
        top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K, description="how many passages")] = 5,
    ) -> SearchResults:
        """Search this chatbot's documents; returns the best passages with their source, page and score."""
        request = http_request(ctx)
        async with engine_errors():
            knowledge = await tools(request)
            results = await knowledge.search(caller_key(request), query, top_k)
        return SearchResults(results=[Passage.model_validate(r) for r in results])

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, open_world_hint=False))
    async def ask(
        question: Annotated[str, Field(min_length=1, description="the question, in any language")],
        ctx: Context,
        session_id: Annotated[UUID | None, Field(description="continue this conversation")] = None,
    ) -> Answer:
        """Ask the chatbot; the answer cites its sources as [n]. Stored like a widget conversation."""
        request = http_request(ctx)
        async with engine_errors():
            knowledge = await tools(request)
            answer = await knowledge.ask(caller_key(request), question, session_id)
        return Answer.model_validate(answer)

    return server


def streamable_app(server: MCPServer) -> Starlette:
    # The DNS-rebinding check (a Host allow-list) protects servers that trust any local caller;
    # here every request must carry a secret key, which a rebinding page does not have, and the
    # allow-list would have to know every hostname the engine is deployed under.
    return server.streamable_http_app(
        streamable_http_path=MCP_PATH,  # main.py routes exactly this path here (no /mcp -> /mcp/ redirect)
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )


@asynccontextmanager
async def session_manager_running(server: MCPServer) -> AsyncIterator[None]:
    """Run the SDK's session manager while the engine runs (a mounted app's own lifespan never
    runs). In a task of its own: its anyio task group must be entered and left by one task, and
    whoever drives the engine's lifespan (uvicorn, a test harness) may enter and leave it in two."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def run() -> None:
        async with server.session_manager.run():
            started.set()
            await stop.wait()

    task = asyncio.create_task(run(), name="mcp-session-manager")
    ready = asyncio.create_task(started.wait())
    await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        ready.cancel()
        task.result()  # it failed to start: raise why
    try:
        yield
    finally:
        stop.set()
        await task


class KeyGuard:
    """ASGI middleware in front of the MCP app: a verified secret key, or the engine's error."""

    def __init__(self, app: ASGIApp, authenticate: Authenticate) -> None:
        self.app = app
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            key = await self.authenticate(Request(scope, receive))
            if not key.is_secret:
                raise Forbidden("the MCP server needs a secret key (cbp_sk_...)")
        except AppError as exc:
            await error_response(exc.status_code, exc.error, exc.detail, exc.headers)(scope, receive, send)
            return
        scope.setdefault("state", {})[KEY_STATE] = key
        await self.app(scope, receive, send)
