"""Chat API rules (caps, validation, sessions, feedback) and the internal analytics for Odoo."""

import uuid
from datetime import UTC, datetime, timedelta

from tests.answering.helpers import HANDBOOK, create_bot, insert_chunks, signed_get
from tests.answering.helpers import answering_settings as make_settings
from tests.support.signing import send_signed


async def test_message_caps_and_validation(app_factory, db_url, db, embedder):
    client = await app_factory(make_settings(database_url=db_url, max_message_chars=100))
    bot = await create_bot(client)
    r = await client.post("/v1/chat", json={"message": "x" * 101}, headers=bot.pk_headers())
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    r = await client.post("/v1/chat", json={"message": "   "}, headers=bot.pk_headers())
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"
    r = await client.post("/v1/chat", json={"message": "hi", "extra": 1}, headers=bot.pk_headers())
    assert r.status_code == 422
    r = await client.post("/v1/chat", json={"message": "hi", "session_id": "not-a-uuid"}, headers=bot.pk_headers())
    assert r.status_code == 422
    r = await client.post("/v1/search", json={"query": "q", "top_k": 1000}, headers=bot.sk_headers())
    assert r.status_code == 422
    r = await client.post("/v1/search", json={"query": "q", "mode": "magic"}, headers=bot.sk_headers())
    assert r.status_code == 422
    r = await client.post(
        "/v1/chat",
        content=b'{"message": "' + b"y" * 5000 + b'"}',
        headers={**bot.pk_headers(), "content-type": "application/json"},
    )
    assert r.status_code == 413


async def test_history_is_capped_by_history_turns(app_factory, db_url, db, embedder):
    client = await app_factory(make_settings(database_url=db_url, history_turns=1))
    bot = await create_bot(client)
    await insert_chunks(db, embedder, bot.id, HANDBOOK)
    session = None
    for question in ("Returns?", "Shipping?", "Warranty?"):
        body = {"message": question} | ({"session_id": session} if session else {})
        r = await client.post("/v1/chat", json=body, headers=bot.pk_headers())
        session = r.json()["session_id"]
    service = client.services.chat
    key = await client.services.key_resolver.resolve(bot.pk)
    turn = await service.prepare(key, "Support hours?", uuid.UUID(session))
    assert [t.content for t in turn.history] == ["Warranty?", turn.history[1].content]
    assert turn.history[1].role == "assistant"
    r = await client.get(f"/v1/sessions/{session}/messages", headers=bot.pk_headers())
    messages = r.json()["messages"]
    assert [m["content"] for m in messages if m["role"] == "user"] == ["Returns?", "Shipping?", "Warranty?"]
    assert messages[1]["sources"] and messages[1]["generator"] == "extractive"


async def test_feedback_is_recorded_and_can_be_changed(client, bot, db):
    r = await client.post("/v1/chat", json={"message": "Returns?"}, headers=bot.pk_headers())
    message_id = r.json()["message_id"]
    r = await client.post(
        "/v1/feedback",
        json={"message_id": message_id, "rating": "down", "comment": "too long"},
        headers=bot.pk_headers(),
    )
    assert r.status_code == 200
    r = await client.post("/v1/feedback", json={"message_id": message_id, "rating": "up"}, headers=bot.pk_headers())
    assert (await db.fetchrow("SELECT rating, comment FROM feedback"))["rating"] == "up"
    r = await client.post("/v1/feedback", json={"message_id": message_id, "rating": "meh"}, headers=bot.pk_headers())
    assert r.status_code == 422


async def test_analytics_and_conversations_for_odoo(client, bot, db):
    questions = ["How do returns work?", "how do  returns work?", "Shipping cost?", "Who won the 1998 World Cup?"]
    ids = []
    for q in questions:
        r = await client.post("/v1/chat", json={"message": q}, headers=bot.pk_headers())
        ids.append(r.json()["message_id"])
    await client.post("/v1/feedback", json={"message_id": ids[0], "rating": "up"}, headers=bot.pk_headers())
    await client.post("/v1/feedback", json={"message_id": ids[2], "rating": "down"}, headers=bot.pk_headers())
    other = await create_bot(client)
    await client.post("/v1/chat", json={"message": "Other bot question"}, headers=other.pk_headers())

    await client.services.key_resolver.flush()  # key usage is written every 15 s
    today = datetime.now(UTC).date().isoformat()
    r = await signed_get(client, f"/internal/v1/chatbots/{bot.id}/analytics?since={today}")
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["per_day"] == [{"day": today, "questions": 4}]
    assert report["feedback"] == {"up": 1, "down": 1}
    assert report["top_questions"][0] == {"question": "How do returns work?", "count": 2}
    assert [u["question"] for u in report["unanswered"]] == ["Who won the 1998 World Cup?"]
    assert report["unanswered"][0]["count"] == 1 and report["unanswered"][0]["last_asked"]
    # Key usage for Odoo's key list: the publishable key was used just now, the secret key never.
    used = {k["id"]: k["last_used_at"] for k in report["keys"]}
    assert used.keys() == {k["id"] for k in bot.payload["api_keys"]}
    pk_id = next(k["id"] for k in bot.payload["api_keys"] if k["kind"] == "publishable")
    sk_id = next(k["id"] for k in bot.payload["api_keys"] if k["kind"] == "secret")
    assert datetime.fromisoformat(used[pk_id]) > datetime.now(UTC) - timedelta(minutes=5)
    assert used[sk_id] is None

    r = await signed_get(client, f"/internal/v1/chatbots/{bot.id}/conversations")
    sessions = r.json()["sessions"]
    assert len(sessions) == 4
    assert all(len(s["messages"]) == 2 for s in sessions)
    rated = [m for s in sessions for m in s["messages"] if m.get("rating")]
    assert sorted(m["rating"] for m in rated) == ["down", "up"]

    r = await client.get(f"/internal/v1/chatbots/{bot.id}/analytics")  # unsigned
    assert r.status_code == 401
    r = await signed_get(client, f"/internal/v1/chatbots/{bot.id}/analytics?since=yesterday")
    assert r.status_code == 422


async def test_deleting_a_chatbot_deletes_its_conversations(client, bot, db):
    r = await client.post("/v1/chat", json={"message": "Returns?"}, headers=bot.pk_headers())
    await client.post(
        "/v1/feedback", json={"message_id": r.json()["message_id"], "rating": "up"}, headers=bot.pk_headers()
    )
    other = await create_bot(client)
    await client.post("/v1/chat", json={"message": "Returns?"}, headers=other.pk_headers())
    r = await send_signed(client, "DELETE", f"/internal/v1/chatbots/{bot.id}", {"version": 50})
    assert r.json()["applied"]
    for table in (
        "chat_sessions",
        "chat_messages",
        "usage_events",
        "feedback",
        "chunks",
        "bm25_postings",
        "bm25_docs",
        "bm25_stats",
    ):
        assert await db.fetchval(f"SELECT count(*) FROM {table} WHERE chatbot_id = $1", bot.id) == 0, table
    assert await db.fetchval("SELECT count(*) FROM chat_sessions WHERE chatbot_id = $1", other.id) == 1
