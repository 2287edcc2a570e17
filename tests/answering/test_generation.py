"""Generation: Ollama NDJSON streaming, OpenAI-compatible SSE, extractive fallback, timeouts,
bounded concurrency, "I don't know" — against real HTTP servers on 127.0.0.1."""

import asyncio
import os
import socket
import time

import httpx
import pytest

from tests.answering.fake_llm import FakeModelServer
from tests.answering.helpers import HANDBOOK, LiveServer, create_bot, insert_chunks, parse_sse, signed_get
from tests.answering.helpers import answering_settings as make_settings

TOKENS = ["You can ", "return ", "products ", "within ", "30 days ", "[1]."]


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more


async def start(app_factory, db_url, db, embedder, model="acme-model:1b", **settings):
    client = await app_factory(make_settings(database_url=db_url, **settings))
    bot = await create_bot(client, generation={"model": model, "temperature": 0.3, "max_tokens": 200, "top_k": 3})
    await insert_chunks(db, embedder, bot.id, HANDBOOK)
    return client, bot


async def test_ollama_answer_streams_token_by_token(app_factory, db_url, db, embedder):
    with FakeModelServer(TOKENS, delay=0.05) as fake:
        client, bot = await start(app_factory, db_url, db, embedder, llm_backend="ollama", ollama_url=fake.url)
        arrivals = []
        body = ""
        async with LiveServer(client.app) as live, httpx.AsyncClient(base_url=live.url) as http:
            async with http.stream(
                "POST",
                "/v1/chat",
                json={"message": "How do I return a product?", "stream": True},
                headers=bot.pk_headers(),
            ) as r:
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
                async for chunk in r.aiter_text():
                    arrivals.append(time.monotonic())
                    body += chunk
        events = parse_sse(body)
        kinds = [e for e, _ in events]
        assert kinds[0] == "sources" and kinds[-1] == "done"
        assert "".join(d["text"] for e, d in events if e == "token") == "".join(TOKENS)
        assert len(arrivals) >= len(TOKENS)  # delivered as they came, not in one piece
        done = events[-1][1]
        assert done["generator"] == "ollama"
        assert done["usage"]["prompt_tokens"] == 321 and done["usage"]["completion_tokens"] == len(TOKENS)
        sources = events[0][1]["sources"]
        assert sources and sources[0]["name"] == "Handbook.pdf" and sources[0]["snippet"].startswith("Returns")

        request = fake.requests[0]
        assert request["model"] == "acme-model:1b" and request["stream"] is True
        assert request["options"]["num_predict"] == 200 and request["options"]["temperature"] == 0.3
        system, user = request["messages"][0], request["messages"][-1]
        assert system["role"] == "system" and "Acme products" in system["content"] and "[n]" in system["content"]
        assert user["content"].startswith("Context:\n[1] Handbook.pdf") and "Returns: you can return" in user["content"]
        assert user["content"].rstrip().endswith("Question: How do I return a product?")

        # The next turn carries the history; JSON mode returns the same answer in one body.
        r = await client.post(
            "/v1/chat",
            json={"message": "And the warranty?", "session_id": done["session_id"]},
            headers=bot.pk_headers(),
        )
        assert r.status_code == 200 and r.json()["answer"] == "".join(TOKENS)
        roles = [m["role"] for m in fake.requests[1]["messages"]]
        assert roles == ["system", "user", "assistant", "user"]
        assert fake.requests[1]["messages"][2]["content"] == "".join(TOKENS)


async def test_accept_header_selects_sse(app_factory, db_url, db, embedder):
    with FakeModelServer(TOKENS) as fake:
        client, bot = await start(app_factory, db_url, db, embedder, llm_backend="ollama", ollama_url=fake.url)
        r = await client.post(
            "/v1/chat", json={"message": "Returns?"}, headers=bot.pk_headers(Accept="text/event-stream")
        )
        assert parse_sse(r.text)[-1][0] == "done"


async def test_model_down_gives_a_labelled_extractive_answer(app_factory, db_url, db, embedder):
    client, bot = await start(app_factory, db_url, db, embedder, llm_backend="ollama", ollama_url=closed_port_url())
    started = time.monotonic()
    r = await client.post("/v1/chat", json={"message": "How long is the warranty?"}, headers=bot.pk_headers())
    assert time.monotonic() - started < 10
    body = r.json()
    assert r.status_code == 200 and body["generator"] == "extractive"
    assert "> Warranty: every Acme gadget carries a two-year warranty" in body["answer"]
    assert body["sources"] and body["sources"][0]["snippet"].startswith("Warranty")
    row = await db.fetchrow("SELECT generator, answered FROM usage_events")
    assert row["generator"] == "extractive" and row["answered"]


async def test_model_error_and_llm_backend_none_fall_back(app_factory, db_url, db, embedder):
    with FakeModelServer(TOKENS, mode="http_error") as fake:
        client, bot = await start(app_factory, db_url, db, embedder, llm_backend="ollama", ollama_url=fake.url)
        r = await client.post("/v1/chat", json={"message": "Returns?"}, headers=bot.pk_headers())
        assert r.json()["generator"] == "extractive" and len(fake.requests) == 1


async def test_slow_model_times_out_into_extractive(app_factory, db_url, db, embedder):
    with FakeModelServer(TOKENS, delay=3) as fake:
        client, bot = await start(
            app_factory, db_url, db, embedder, llm_backend="ollama", ollama_url=fake.url, llm_timeout_seconds=1
        )
        started = time.monotonic()
        r = await client.post("/v1/chat", json={"message": "Returns?"}, headers=bot.pk_headers())
        assert r.json()["generator"] == "extractive"
        assert time.monotonic() - started < 2.5


async def test_model_failing_midway_reports_an_error_event(app_factory, db_url, db, embedder):
    with FakeModelServer(TOKENS, mode="break_midway") as fake:
        client, bot = await start(app_factory, db_url, db, embedder, llm_backend="ollama", ollama_url=fake.url)
        r = await client.post("/v1/chat", json={"message": "Returns?", "stream": True}, headers=bot.pk_headers())
        events = parse_sse(r.text)
        assert [e for e, _ in events][-1] == "error"
        assert "".join(d["text"] for e, d in events if e == "token") == "".join(TOKENS[:3])


async def test_overload_is_a_fast_503_with_retry_after(app_factory, db_url, db, embedder):
    with FakeModelServer(TOKENS, delay=0.4) as fake:
        client, bot = await start(
            app_factory,
            db_url,
            db,
            embedder,
            llm_backend="ollama",
            ollama_url=fake.url,
            llm_max_concurrency=1,
            llm_queue_timeout_seconds=0.2,
        )

        async def ask() -> httpx.Response:
            return await client.post("/v1/chat", json={"message": "Returns?"}, headers=bot.pk_headers())

        first = asyncio.create_task(ask())
        while not fake.requests:  # the first answer holds the only slot
            await asyncio.sleep(0.02)
        started = time.monotonic()
        second = await ask()
        assert second.status_code == 503 and second.headers["retry-after"] == "5"
        assert time.monotonic() - started < 1.5
        assert (await first).json()["generator"] == "ollama"
        third = await ask()  # the slot is free again
        assert third.status_code == 200


async def test_openai_compatible_backend_streams(app_factory, db_url, db, embedder):
    with FakeModelServer(TOKENS) as fake:
        client, bot = await start(
            app_factory,
            db_url,
            db,
            embedder,
            llm_backend="openai",
            openai_base_url=fake.url,
            openai_api_key="sk-test-123",
            openai_model="gpt-test",
        )
        r = await client.post("/v1/chat", json={"message": "Returns?", "stream": True}, headers=bot.pk_headers())
        events = parse_sse(r.text)
        assert "".join(d["text"] for e, d in events if e == "token") == "".join(TOKENS)
        done = events[-1][1]
        assert done["generator"] == "openai" and done["usage"]["prompt_tokens"] == 111
        assert fake.requests[0]["model"] == "acme-model:1b" and fake.requests[0]["stream"] is True
        assert fake.headers[0]["Authorization"] == "Bearer sk-test-123"


async def test_nothing_relevant_gives_i_dont_know_and_records_it(app_factory, db_url, db, embedder):
    with FakeModelServer(TOKENS) as fake:
        client, bot = await start(
            app_factory, db_url, db, embedder, llm_backend="ollama", ollama_url=fake.url, no_answer_message="No idea."
        )
        r = await client.post(
            "/v1/chat", json={"message": "What is the boiling point of liquid nitrogen?"}, headers=bot.pk_headers()
        )
        body = r.json()
        assert body["answer"] == "No idea." and body["sources"] == [] and fake.requests == []
        row = await db.fetchrow("SELECT answered, question FROM usage_events")
        assert row["answered"] is False and "nitrogen" in row["question"]


async def test_a_model_saying_it_does_not_know_is_recorded_as_unanswered(app_factory, db_url, db, embedder):
    """Similar passages, but the model finds no answer in them: the turn reaches the unanswered
    report like one that found nothing; an answer that cites a passage stays answered."""
    refusal = ["I don't know: ", "the context does not ", "say whether dogs are allowed."]
    with FakeModelServer(refusal) as fake:
        client, bot = await start(app_factory, db_url, db, embedder, llm_backend="ollama", ollama_url=fake.url)
        question = "Can I return a product I bought with my dog?"
        r = await client.post("/v1/chat", json={"message": question}, headers=bot.pk_headers())
        body = r.json()
        assert fake.requests and body["generator"] == "ollama" and body["answer"] == "".join(refusal)
        assert body["sources"]  # what the model was shown stays in the transcript
        fake.tokens = TOKENS
        r = await client.post("/v1/chat", json={"message": "How do I return a product?"}, headers=bot.pk_headers())
        assert r.json()["answer"] == "".join(TOKENS)
    rows = await db.fetch("SELECT question, answered FROM usage_events ORDER BY id")
    assert [(row["question"], row["answered"]) for row in rows] == [
        (question, False),
        ("How do I return a product?", True),
    ]
    report = (await signed_get(client, f"/internal/v1/chatbots/{bot.id}/unanswered")).json()
    assert [g["question"] for g in report["groups"]] == [question]


@pytest.mark.skipif(not os.environ.get("OLLAMA_URL"), reason="set OLLAMA_URL to run against a real Ollama server")
async def test_real_ollama(app_factory, db_url, db, embedder):
    client, bot = await start(
        app_factory,
        db_url,
        db,
        embedder,
        llm_backend="ollama",
        ollama_url=os.environ["OLLAMA_URL"],
        ollama_model=os.environ.get("OLLAMA_MODEL", "qwen2.5:0.5b-instruct"),
        llm_timeout_seconds=300,
        model=None,  # the chatbot sets no model: OLLAMA_MODEL answers
    )
    r = await client.post(
        "/v1/chat", json={"message": "How many days do I have to return a product?"}, headers=bot.pk_headers()
    )
    body = r.json()
    assert body["generator"] == "ollama", body
    assert body["answer"].strip() and body["usage"]["completion_tokens"] > 0
