"""Tenant isolation: identical texts in two chatbots never leak across keys; foreign ids are 404."""

import itertools
import random
import uuid

from tests.answering.helpers import HANDBOOK, create_bot, insert_chunks

UNLIMITED = {"key_per_minute": 100_000, "ip_per_minute": 100_000}
WORDS = "return refund shipping delivery skates speed battery warranty support phone password reset acme order".split()


async def test_a_thousand_queries_with_a_key_never_return_the_other_chatbots_chunks(client, db, embedder):
    a = await create_bot(client, rate_limits=UNLIMITED)
    b = await create_bot(client, rate_limits=UNLIMITED)
    a_ids = set(await insert_chunks(db, embedder, a.id, HANDBOOK))
    b_ids = set(await insert_chunks(db, embedder, b.id, HANDBOOK))
    assert a_ids and b_ids and not a_ids & b_ids
    rng = random.Random(7)
    # 1,000 requests over 150 distinct questions (the model is the slow part on 2 cores; repeated
    # questions hit the query-vector cache, the SQL runs every time) in all three modes.
    questions = [" ".join(rng.sample(WORDS, rng.randint(1, 4))) for _ in range(150)]
    modes = itertools.cycle(["hybrid", "dense", "keyword", "hybrid"])
    seen: set[int] = set()
    for n in range(1000):
        query = questions[n % len(questions)]
        r = await client.post(
            "/v1/search",
            json={"query": query, "top_k": 20, "mode": next(modes)},
            headers=a.sk_headers(),
        )
        assert r.status_code == 200, r.text
        ids = {hit["chunk_id"] for hit in r.json()["results"]}
        assert not ids & b_ids, (n, query)
        seen |= ids
    assert seen == a_ids  # the queries did reach every chunk of A: the check above was not vacuous


async def test_ids_of_another_chatbot_are_404_with_this_key(client, db, embedder):
    a = await create_bot(client)
    b = await create_bot(client)
    await insert_chunks(db, embedder, b.id, HANDBOOK)
    r = await client.post("/v1/chat", json={"message": "How do returns work?"}, headers=b.sk_headers())
    b_session, b_message = r.json()["session_id"], r.json()["message_id"]
    r = await client.get(f"/v1/sessions/{b_session}/messages", headers=a.sk_headers())
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = await client.post("/v1/chat", json={"message": "hi", "session_id": b_session}, headers=a.sk_headers())
    assert r.status_code == 404
    r = await client.post("/v1/feedback", json={"message_id": b_message, "rating": "down"}, headers=a.sk_headers())
    assert r.status_code == 404
    assert await db.fetchval("SELECT count(*) FROM feedback") == 0
    # ...and the same ids work for their own chatbot, so the 404s above mean "not yours".
    r = await client.get(f"/v1/sessions/{b_session}/messages", headers=b.sk_headers())
    assert r.status_code == 200 and len(r.json()["messages"]) == 2
    r = await client.post("/v1/feedback", json={"message_id": b_message, "rating": "up"}, headers=b.sk_headers())
    assert r.status_code == 200
    unknown = uuid.uuid4()
    r = await client.get(f"/v1/sessions/{unknown}/messages", headers=b.sk_headers())
    assert r.status_code == 404


async def test_publishable_keys_cannot_read_sessions_started_with_a_secret_key(client, bot):
    r = await client.post("/v1/chat", json={"message": "Returns?"}, headers=bot.sk_headers())
    session = r.json()["session_id"]
    r = await client.get(f"/v1/sessions/{session}/messages", headers=bot.pk_headers())
    assert r.status_code == 404
    r = await client.post("/v1/chat", json={"message": "Returns?"}, headers=bot.pk_headers())
    own = r.json()["session_id"]
    r = await client.get(f"/v1/sessions/{own}/messages", headers=bot.pk_headers())
    assert r.status_code == 200 and [m["role"] for m in r.json()["messages"]] == ["user", "assistant"]
