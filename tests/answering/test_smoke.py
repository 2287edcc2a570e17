"""End-to-end through the public API with the extractive generator."""

from tests.answering.helpers import parse_sse


async def test_search_and_chat_roundtrip(client, bot):
    r = await client.post(
        "/v1/search", json={"query": "how long do I have to return a product"}, headers=bot.sk_headers()
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert results[0]["content"].startswith("Returns:")

    # Extractive answers quote what the documents say: "skates" and "return" are in different
    # sentences, so that needs a model; "return a product" is said in one.
    r = await client.post("/v1/chat", json={"message": "Can I return a product?"}, headers=bot.pk_headers())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["generator"] == "extractive" and "within 30 days of delivery" in body["answer"]
    assert any(s["name"] == "Handbook.pdf" for s in body["sources"])

    r = await client.post(
        "/v1/chat",
        json={"message": "What is the warranty?", "session_id": body["session_id"], "stream": True},
        headers=bot.pk_headers(),
    )
    assert r.status_code == 200
    events = parse_sse(r.text)
    assert events[0][0] == "sources" and events[-1][0] == "done"
