"""What the OpenAI-compatible API and the MCP server cost on top of /v1/chat and /v1/search.

    .venv/bin/python bench/integrators_overhead.py [--rounds 40] [--port 0 (a free one)]

Starts its own PostgreSQL + pgvector (pgserver) and `python -m app` (LLM_BACKEND=none: extractive
answers, so the model's speed does not drown the protocol layers) on 127.0.0.1, one chatbot with
a small handbook embedded by the real model. Then, round by round and in a rotating order, the same
question through: httpx POST /v1/chat, the official `openai` client's chat.completions.create,
the official `mcp` client's `ask`; and the same query through POST /v1/search and MCP
`search_knowledge`. Every client keeps its connection (and the MCP client its session) open.
Prints the median latency of each and the ratios to the bespoke routes. Loopback only; after a
warm-up round (query vectors cached, pools grown).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "fastapi_service"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _common import embedded_database, signed, wait_ready  # noqa: E402

from app.config import DEV_WEBHOOK_SECRET  # noqa: E402
from app.keys.format import generate_key, key_hash  # noqa: E402

HANDBOOK = [
    "Returns: you can return any Acme product within 30 days of delivery for a full refund.",
    "Shipping: orders over 50 euros ship for free; standard delivery takes 3 to 5 working days.",
    "The Acme Rocket Skates have a top speed of 40 km/h and a battery that lasts two hours.",
    "Warranty: every Acme gadget carries a two-year warranty covering manufacturing defects.",
    "Customer support is available by phone from 9:00 to 17:00 CET, Monday to Friday.",
    "To reset your Acme account password, click 'Forgot password' on the sign-in page.",
]
QUESTIONS = [
    "How do I return a product?",
    "Is shipping free?",
    "How fast are the rocket skates?",
    "How long is the warranty?",
    "When can I call support?",
    "How do I reset my password?",
]


async def insert_chunks(dsn: str, bot: uuid.UUID) -> None:
    import asyncpg
    from pgvector.asyncpg import register_vector

    from app.embedding.service import EmbeddingService

    embedder = EmbeddingService("sentence-transformers/all-MiniLM-L6-v2")
    embedder.load()
    vectors = await embedder.embed(HANDBOOK, purpose="bench")
    embedder.close()
    conn = await asyncpg.connect(dsn)
    await register_vector(conn)
    source = uuid.uuid4()
    await conn.execute(
        "INSERT INTO sources (id, chatbot_id, version, kind, name, state, indexed_version)"
        " VALUES ($1, $2, 1, 'document', 'Handbook.pdf', 'ready', 1)",
        source,
        bot,
    )
    for ordinal, (text, vector) in enumerate(zip(HANDBOOK, vectors, strict=True)):
        await conn.execute(
            "INSERT INTO chunks (chatbot_id, source_id, source_version, ordinal, content, metadata, embedding)"
            " VALUES ($1, $2, 1, $3, $4, $5::jsonb, $6)",
            bot,
            source,
            ordinal,
            text,
            '{"title": "Handbook.pdf"}',
            vector,
        )
    await conn.close()


async def measure(rounds: int, url: str, key: str) -> dict[str, list[float]]:
    import httpx2
    import openai
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    auth = {"Authorization": f"Bearer {key}"}
    timings: dict[str, list[float]] = {}
    async with (
        httpx.AsyncClient(base_url=url, headers=auth, timeout=60) as http,
        openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0) as ai,
        httpx2.AsyncClient(headers=auth, timeout=60) as mcp_http,
        Client(streamable_http_client(f"{url}/mcp", http_client=mcp_http)) as mcp,
    ):

        async def chat(q: str) -> None:
            (await http.post("/v1/chat", json={"message": q})).raise_for_status()

        async def completions(q: str) -> None:
            await ai.chat.completions.create(model="default", messages=[{"role": "user", "content": q}])

        async def mcp_ask(q: str) -> None:
            assert not (await mcp.call_tool("ask", {"question": q})).is_error

        async def search(q: str) -> None:
            (await http.post("/v1/search", json={"query": q, "top_k": 5})).raise_for_status()

        async def mcp_search(q: str) -> None:
            assert not (await mcp.call_tool("search_knowledge", {"query": q, "top_k": 5})).is_error

        calls: list[tuple[str, Callable[[str], Awaitable[None]]]] = [
            ("POST /v1/chat", chat),
            ("openai chat.completions", completions),
            ("MCP ask", mcp_ask),
            ("POST /v1/search", search),
            ("MCP search_knowledge", mcp_search),
        ]
        for n in range(rounds + 1):
            question = QUESTIONS[n % len(QUESTIONS)]
            order = calls[n % len(calls) :] + calls[: n % len(calls)]  # rotate: no one always goes first
            for name, call in order:
                started = time.perf_counter()
                await call(question)
                if n:  # round 0 warms up
                    timings.setdefault(name, []).append((time.perf_counter() - started) * 1000)
    return timings


async def run(args: argparse.Namespace) -> None:
    state = tempfile.TemporaryDirectory(prefix="bench-integrators-")
    server, dsn = await embedded_database(Path(state.name) / "pg")
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(args.port),
        "DATABASE_URL": dsn,
        "WEBHOOK_SECRET": DEV_WEBHOOK_SECRET,
        "ENVIRONMENT": "test",
        "LLM_BACKEND": "none",
        "LOG_LEVEL": "WARNING",
        "WORKERS_IN_PROCESS": "false",
    }
    log = open(Path(state.name) / "engine.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app"], cwd=REPO / "fastapi_service", env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{args.port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            await wait_ready(client)
            bot, key = uuid.uuid4(), generate_key("secret")
            payload = {
                "version": 1,
                "name": "bench",
                "api_keys": [{"id": str(uuid.uuid4()), "kind": "secret", "prefix": key[:11], "sha256": key_hash(key)}],
                "rate_limits": {"key_per_minute": 100000, "ip_per_minute": 100000},
            }
            r = await signed(client, DEV_WEBHOOK_SECRET, "PUT", f"/internal/v1/chatbots/{bot}", payload)
            r.raise_for_status()
        await insert_chunks(dsn, bot)
        timings = await measure(args.rounds, url, key)
        median = {name: statistics.median(values) for name, values in timings.items()}
        print(f"{args.rounds} rounds, sequential, median latency (LLM_BACKEND=none, extractive answers):")
        for name, value in median.items():
            print(f"  {name:26s} {value:7.1f} ms")
        chat, search = median["POST /v1/chat"], median["POST /v1/search"]
        print(f"  openai chat.completions / POST /v1/chat   = {median['openai chat.completions'] / chat:.2f}")
        print(f"  MCP ask / POST /v1/chat                   = {median['MCP ask'] / chat:.2f}")
        print(f"  MCP search_knowledge / POST /v1/search    = {median['MCP search_knowledge'] / search:.2f}")
    finally:
        proc.terminate()
        proc.wait(60)
        server.cleanup()
        state.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if not args.port:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            args.port = s.getsockname()[1]
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
