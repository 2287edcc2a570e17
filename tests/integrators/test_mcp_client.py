"""The MCP server at /mcp driven by the official `mcp` client (streamable HTTP) against a real engine
process."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from app.mcp_server.service import MAX_TOP_K
from tests.integrators.conftest import B_SECRET, MAX_MESSAGE_CHARS, TOKENS


@asynccontextmanager
async def mcp_client(engine, key: str, statuses: list[int] | None = None):
    async def record(response: httpx2.Response) -> None:
        if statuses is not None:
            statuses.append(response.status_code)

    async with httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {key}"},
        timeout=httpx2.Timeout(30.0, read=120.0),
        event_hooks={"response": [record]},
    ) as http:
        async with Client(streamable_http_client(f"{engine.url}/mcp", http_client=http)) as client:
            yield client


async def test_lists_both_tools_with_their_limits(engine, tenants):
    async with mcp_client(engine, tenants.a.sk) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == {"search_knowledge", "ask"}
    top_k = tools["search_knowledge"].input_schema["properties"]["top_k"]
    assert top_k["maximum"] == MAX_TOP_K and top_k["minimum"] == 1
    assert tools["search_knowledge"].input_schema["required"] == ["query"]
    assert tools["ask"].input_schema["required"] == ["question"]


async def test_search_knowledge_returns_cited_passages_of_the_keys_chatbot(engine, tenants):
    async with mcp_client(engine, tenants.a.sk) as client:
        result = await client.call_tool("search_knowledge", {"query": "return a product for a refund", "top_k": 3})
    assert not result.is_error, result.content
    passages = result.structured_content["results"]
    assert 1 <= len(passages) <= 3 and [p["n"] for p in passages] == list(range(1, len(passages) + 1))
    assert passages[0]["content"].startswith("Returns:") and passages[0]["name"] == "A-handbook.pdf"
    assert {p["chunk_id"] for p in passages} <= tenants.a_chunks


async def test_ask_answers_with_sources_and_continues_a_session(engine, tenants, db):
    async with mcp_client(engine, tenants.a.sk) as client:
        first = await client.call_tool("ask", {"question": "How do I return a product?"})
        assert not first.is_error, first.content
        answer = first.structured_content
        assert answer["answer"] == "".join(TOKENS) and answer["generator"] == "ollama"
        assert answer["sources"][0]["snippet"].startswith("Returns")
        again = await client.call_tool("ask", {"question": "And the warranty?", "session_id": answer["session_id"]})
    assert again.structured_content["session_id"] == answer["session_id"]
    stored = await db.fetchval(
        "SELECT count(*) FROM chat_messages WHERE session_id = $1 AND chatbot_id = $2",
        uuid.UUID(answer["session_id"]),
        tenants.a.id,
    )
    assert stored == 4  # two turns, stored like widget conversations (analytics and feedback included)
    assert (
        await db.fetchval("SELECT count(*) FROM usage_events WHERE message_id = $1", uuid.UUID(answer["message_id"]))
        == 1
    )


async def test_limits_top_k_and_question_length_are_tool_errors(engine, tenants):
    async with mcp_client(engine, tenants.a.sk) as client:
        too_many = await client.call_tool("search_knowledge", {"query": "returns", "top_k": MAX_TOP_K + 1})
        zero = await client.call_tool("search_knowledge", {"query": "returns", "top_k": 0})
        long = await client.call_tool("ask", {"question": "a" * (MAX_MESSAGE_CHARS + 1)})
    assert too_many.is_error and zero.is_error
    assert long.is_error and f"longer than {MAX_MESSAGE_CHARS} characters" in long.content[0].text


async def test_no_key_a_bad_key_or_a_publishable_key_is_refused_before_mcp(engine, tenants):
    async with httpx.AsyncClient(base_url=engine.url) as http:
        init = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        accept = {"Accept": "application/json, text/event-stream"}
        assert (await http.post("/mcp", json=init, headers=accept)).status_code == 401
        r = await http.post("/mcp", json=init, headers={**accept, "Authorization": "Bearer cbp_sk_" + "x" * 43})
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"
        r = await http.post("/mcp", json=init, headers={**accept, **tenants.a.pk_headers()})
        assert r.status_code == 403 and "secret key" in r.json()["detail"]
    statuses: list[int] = []
    with pytest.raises(Exception, match="error"):  # the official client fails at its first request
        async with mcp_client(engine, "cbp_sk_" + "y" * 43, statuses) as client:
            await client.list_tools()
    assert statuses and set(statuses) == {401}


async def test_every_mcp_request_counts_against_the_keys_rate_limit(engine, limited):
    statuses = []
    async with httpx.AsyncClient(base_url=engine.url) as http:
        for _ in range(5):
            r = await http.post(
                "/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                headers={"Accept": "application/json, text/event-stream", **limited.sk_headers()},
            )
            statuses.append(r.status_code)
    assert 429 in statuses and statuses[: statuses.index(429)] and set(statuses[statuses.index(429) :]) == {429}


async def test_a_key_never_sees_another_chatbots_chunks(engine, tenants):
    queries = ["launch code Project Nightingale", B_SECRET, "returns refund", "warranty", "password reset"]
    async with mcp_client(engine, tenants.a.sk) as client:
        for query in queries:
            found = await client.call_tool("search_knowledge", {"query": query, "top_k": MAX_TOP_K})
            ids = {p["chunk_id"] for p in found.structured_content["results"]}
            assert ids and ids <= tenants.a_chunks and not ids & tenants.b_chunks, query
            asked = await client.call_tool("ask", {"question": query})
            assert "4711" not in str(asked.structured_content["sources"])
        # B's session is not A's to continue
        async with mcp_client(engine, tenants.b.sk) as b_client:
            b_answer = (await b_client.call_tool("ask", {"question": B_SECRET})).structured_content
            b_found = await b_client.call_tool("search_knowledge", {"query": B_SECRET, "top_k": 1})
        assert b_found.structured_content["results"][0]["content"] == B_SECRET  # B reaches it: not vacuous
        hijack = await client.call_tool("ask", {"question": "Returns?", "session_id": b_answer["session_id"]})
    assert hijack.is_error and "no such session" in hijack.content[0].text


async def test_only_post_is_served_a_get_stream_would_idle_open_forever(engine, tenants):
    headers = {"Accept": "text/event-stream", **tenants.a.sk_headers()}
    async with httpx.AsyncClient(base_url=engine.url, timeout=10) as http:
        for method in ("GET", "DELETE"):
            r = await http.request(method, "/mcp", headers=headers)
            assert r.status_code == 405 and r.json()["error"] == "method_not_allowed", (method, r.text)
