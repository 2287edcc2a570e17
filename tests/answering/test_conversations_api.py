"""Internal operations reports for Odoo (app/conversations): sessions, transcript, unanswered, daily."""

import uuid
from datetime import UTC, datetime, timedelta

from tests.answering.helpers import create_bot, signed_get
from tests.support.signing import send_signed

UNANSWERABLE = ["Can I bring my dog to the store?", "Are dogs allowed in your store?", "Who won the 1998 World Cup?"]


async def ask(client, bot, message, session=None):
    body = {"message": message} | ({"session_id": session} if session else {})
    r = await client.post("/v1/chat", json=body, headers=bot.pk_headers())
    assert r.status_code == 200, r.text
    return r.json()


async def feedback(client, bot, message_id, rating, comment=None):
    body = {"message_id": message_id, "rating": rating} | ({"comment": comment} if comment else {})
    r = await client.post("/v1/feedback", json=body, headers=bot.pk_headers())
    assert r.status_code == 200, r.text


async def test_sessions_are_paged_and_filtered(client, bot):
    first = await ask(client, bot, "How do returns work?")
    await ask(client, bot, "Who won the 1998 World Cup?", first["session_id"])
    await feedback(client, bot, first["message_id"], "up")
    second = await ask(client, bot, "Shipping cost?")
    await feedback(client, bot, second["message_id"], "down", "too vague")
    third = await ask(client, bot, "What is the warranty?")
    other = await create_bot(client)
    await ask(client, other, "How do returns work?")

    base = f"/internal/v1/chatbots/{bot.id}/sessions"
    r = await signed_get(client, base)
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["total"] == 3
    ids = [s["session_id"] for s in page["sessions"]]
    assert ids == [third["session_id"], second["session_id"], first["session_id"]]  # newest first
    by_id = {s["session_id"]: s for s in page["sessions"]}
    s1 = by_id[first["session_id"]]
    assert (s1["turns"], s1["thumbs_up"], s1["thumbs_down"], s1["unanswered"]) == (2, 1, 0, 1)
    assert s1["first_question"] == "How do returns work?" and s1["generators"] == ["extractive"]

    r = await signed_get(client, f"{base}?limit=1&offset=1")
    assert r.json()["total"] == 3 and [s["session_id"] for s in r.json()["sessions"]] == [second["session_id"]]
    r = await signed_get(client, f"{base}?limit=2&offset=5")  # past the end: empty, total still known
    assert r.json()["sessions"] == [] and r.json()["total"] == 3

    async def ids_for(query):
        r = await signed_get(client, f"{base}?{query}")
        assert r.status_code == 200, r.text
        return {s["session_id"] for s in r.json()["sessions"]}

    assert await ids_for("rating=up") == {first["session_id"]}
    assert await ids_for("rating=down") == {second["session_id"]}
    assert await ids_for("rating=none") == {third["session_id"]}
    assert await ids_for("unanswered=true") == {first["session_id"]}
    assert await ids_for("unanswered=false") == {second["session_id"], third["session_id"]}
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    assert await ids_for(f"since={tomorrow}&until={tomorrow + timedelta(days=1)}") == set()
    today = datetime.now(UTC).date()
    assert len(await ids_for(f"since={today}&until={tomorrow}")) == 3

    for bad in ("rating=meh", "limit=0", "limit=201", "offset=-1", "since=yesterday", "unanswered=maybe"):
        assert (await signed_get(client, f"{base}?{bad}")).status_code == 422, bad
    r = await signed_get(client, f"{base}?since={tomorrow}&until={today}")
    assert r.status_code == 422 and "until" in r.json()["detail"]
    r = await signed_get(client, f"{base}?since=2020-01-01&until=2026-01-01")
    assert r.status_code == 422 and "366" in r.json()["detail"]
    assert (await client.get(base)).status_code == 401  # unsigned


async def test_transcript_has_sources_feedback_and_unanswered_turns(client, bot):
    answered = await ask(client, bot, "How do returns work?")
    refused = await ask(client, bot, "Who won the 1998 World Cup?", answered["session_id"])
    await feedback(client, bot, answered["message_id"], "down", "I wanted the address")
    r = await signed_get(client, f"/internal/v1/chatbots/{bot.id}/sessions/{answered['session_id']}")
    assert r.status_code == 200, r.text
    messages = r.json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0]["content"] == "How do returns work?" and "sources" not in messages[0]
    first = messages[1]
    assert first["id"] == answered["message_id"] and first["answered"] is True
    assert first["sources"][0]["name"] == "Handbook.pdf" and "30 days" in first["sources"][0]["snippet"]
    assert first["feedback"] == {"rating": "down", "comment": "I wanted the address"}
    assert messages[3]["id"] == refused["message_id"]
    assert (messages[3]["answered"], messages[3]["sources"], messages[3]["feedback"]) == (False, [], None)

    other = await create_bot(client)  # another chatbot's session is not found through this one
    r = await signed_get(client, f"/internal/v1/chatbots/{other.id}/sessions/{answered['session_id']}")
    assert r.status_code == 404
    r = await signed_get(client, f"/internal/v1/chatbots/{bot.id}/sessions/{uuid.uuid4()}")
    assert r.status_code == 404


async def test_unanswered_questions_are_grouped_by_meaning_and_can_be_handled(client, bot):
    for question in (*UNANSWERABLE, "can i bring my  DOG to the store?", "How do returns work?"):
        await ask(client, bot, question)
    base = f"/internal/v1/chatbots/{bot.id}/unanswered"
    r = await signed_get(client, base)
    assert r.status_code == 200, r.text
    groups = r.json()["groups"]
    assert [g["count"] for g in groups] == [3, 1], groups
    dogs = groups[0]
    assert dogs["question"] == "Can I bring my dog to the store?"  # the most asked wording leads
    assert sorted(q["question"] for q in dogs["questions"]) == sorted(UNANSWERABLE[:2])
    assert groups[1]["question"] == "Who won the 1998 World Cup?" and groups[1]["last_asked"]

    r = await send_signed(client, "POST", f"{base}/handled", {"questions": [q["question"] for q in dogs["questions"]]})
    assert r.status_code == 200 and r.json() == {"handled": 2}, r.text
    groups = (await signed_get(client, base)).json()["groups"]
    assert [g["question"] for g in groups] == ["Who won the 1998 World Cup?"]
    await ask(client, bot, "Are dogs allowed in your store?")  # asked again, still unanswered: back
    groups = (await signed_get(client, base)).json()["groups"]
    assert [(g["question"], g["count"]) for g in groups] == [
        ("Are dogs allowed in your store?", 1),  # the most recently asked first among equals
        ("Who won the 1998 World Cup?", 1),
    ]

    for bad in ({"questions": []}, {"questions": ["x"] * 201}, {"questions": "x"}, {"other": 1}):
        r = await send_signed(client, "POST", f"{base}/handled", bad)
        assert r.status_code == 422, bad
    assert (await signed_get(client, f"{base}?limit=501")).status_code == 422
    other = await create_bot(client)
    assert (await signed_get(client, f"/internal/v1/chatbots/{other.id}/unanswered")).json()["groups"] == []


async def test_daily_usage(client, bot):
    a = await ask(client, bot, "How do returns work?")
    b = await ask(client, bot, "Who won the 1998 World Cup?", a["session_id"])
    c = await ask(client, bot, "Shipping cost?")
    await feedback(client, bot, a["message_id"], "up")
    await feedback(client, bot, b["message_id"], "down")
    await feedback(client, bot, c["message_id"], "up")
    r = await signed_get(client, f"/internal/v1/chatbots/{bot.id}/daily")
    assert r.status_code == 200, r.text
    (day,) = r.json()["days"]
    assert day["day"] == datetime.now(UTC).date().isoformat()
    assert {k: day[k] for k in ("questions", "sessions", "unanswered", "thumbs_up", "thumbs_down")} == {
        "questions": 3,
        "sessions": 2,
        "unanswered": 1,
        "thumbs_up": 2,
        "thumbs_down": 1,
    }
    assert day["generators"] == {"extractive": 3}
    assert isinstance(day["p50_latency_ms"], int) and day["p50_latency_ms"] >= 0
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    r = await signed_get(client, f"/internal/v1/chatbots/{bot.id}/daily?since={yesterday}&until={yesterday}")
    assert r.status_code == 422


async def test_deleting_a_chatbot_deletes_what_was_marked_handled(client, bot, db):
    await ask(client, bot, "Who won the 1998 World Cup?")
    r = await send_signed(
        client, "POST", f"/internal/v1/chatbots/{bot.id}/unanswered/handled", {"questions": ["Who won?"]}
    )
    assert r.status_code == 200
    r = await send_signed(client, "DELETE", f"/internal/v1/chatbots/{bot.id}", {"version": 50})
    assert r.json()["applied"]
    assert await db.fetchval("SELECT count(*) FROM unanswered_handled WHERE chatbot_id = $1", bot.id) == 0
