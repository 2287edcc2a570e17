"""Handoff to a human (app/handoff): the widget button, trigger phrases, the signed notice to Odoo."""

import json
import uuid

import httpx
import pytest

from app.handoff.service import CALLBACK_PATH, DEFAULT_MESSAGE, TRANSCRIPT_MESSAGES
from app.webhooks.signing import verify
from tests.answering.helpers import answering_settings, create_bot, signed_get
from tests.ingestion.http_server import LocalServer
from tests.support.signing import TEST_SECRET

HANDOFF_WIDGET = {
    "title": "Acme help",
    "handoff_enabled": True,
    "handoff_phrases": ["talk to a human", "  Real   PERSON "],
    "handoff_message": "Our team will email you within a day.",
}


class Odoo:
    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.notices: list[dict] = []
        self.ids: list[str] = []
        self.server = LocalServer({CALLBACK_PATH: self.receive}).start()

    def receive(self, seen):
        verify(TEST_SECRET, seen.body, seen.headers)
        if self.fail_first:
            self.fail_first -= 1
            return 503, {}, b"busy"
        self.notices.append(json.loads(seen.body))
        self.ids.append(seen.headers["webhook-id"])
        return 200, {"content-type": "application/json"}, b"{}"


@pytest.fixture
def odoo():
    server = Odoo()
    yield server
    server.server.stop()


@pytest.fixture
async def app(app_factory, db_url, odoo):
    return await app_factory(answering_settings(database_url=db_url, odoo_url=odoo.server.url))


async def deliver(client) -> int:
    async with httpx.AsyncClient() as http:
        return await client.services.handoffs.deliver_due(http)


async def test_the_button_hands_the_session_off_once_with_its_transcript(app, odoo, db):
    bot = await create_bot(app, widget=HANDOFF_WIDGET)
    r = await app.get("/v1/widget/config", headers=bot.pk_headers())
    assert r.json()["handoff"] is True
    r = await app.post("/v1/chat", json={"message": "Where is my parcel?"}, headers=bot.pk_headers())
    session = r.json()["session_id"]
    assert r.json()["handoff"] is None  # no phrase in it

    body = {"session_id": session, "note": "jane@example.com"}
    r = await app.post("/v1/handoff", json=body, headers=bot.pk_headers())
    assert r.status_code == 200, r.text
    assert r.json() == {"session_id": session, "message": "Our team will email you within a day."}
    r = await app.post("/v1/handoff", json=body, headers=bot.pk_headers())  # pressed twice: one notice
    assert r.status_code == 200
    assert await db.fetchval("SELECT count(*) FROM handoff_outbox") == 1

    assert await deliver(app) == 1
    (notice,) = odoo.notices
    assert notice["chatbot"] == str(bot.id) and notice["session"] == session
    assert (notice["reason"], notice["note"]) == ("button", "jane@example.com")
    assert notice["transcript"][0]["content"] == "Where is my parcel?"
    assert [m["role"] for m in notice["transcript"]] == ["user", "assistant"]
    assert odoo.ids == [f"handoff_{session}"]  # stable: Odoo dedupes a retried notice
    assert await db.fetchval("SELECT count(*) FROM handoff_outbox") == 0

    r = await signed_get(app, f"/internal/v1/chatbots/{bot.id}/sessions/{session}")
    assert r.json()["handoff_at"] and r.json()["handoff_reason"] == "button"


async def test_a_trigger_phrase_hands_off_after_answering(app, odoo):
    bot = await create_bot(app, widget=HANDOFF_WIDGET)
    r = await app.post("/v1/chat", json={"message": "Can I talk to a REAL  person please"}, headers=bot.pk_headers())
    assert r.status_code == 200, r.text
    assert r.json()["handoff"] == {"message": "Our team will email you within a day."}
    r = await app.post(
        "/v1/chat",
        json={"message": "I want to talk to a human", "stream": True},
        headers=bot.pk_headers(),
    )
    done = [line for line in r.text.split("\n\n") if line.startswith("event: done")]
    assert '"handoff": {"message": "Our team will email you within a day."}' in done[0]
    assert await deliver(app) == 2
    assert {n["reason"] for n in odoo.notices} == {"phrase"}
    # the notice includes the turn that asked
    assert all(n["transcript"][0]["role"] == "user" and len(n["transcript"]) == 2 for n in odoo.notices)


async def test_handoff_refusals_and_defaults(app, odoo, db):
    bot = await create_bot(app)  # no handoff configured: no phrases, the default message
    r = await app.get("/v1/widget/config", headers=bot.pk_headers())
    assert r.json()["handoff"] is False
    r = await app.post("/v1/chat", json={"message": "talk to a human"}, headers=bot.pk_headers())
    assert r.json()["handoff"] is None
    session = r.json()["session_id"]
    r = await app.post("/v1/handoff", json={"session_id": session}, headers=bot.pk_headers())
    assert r.json()["message"] == DEFAULT_MESSAGE
    other = await create_bot(app)
    r = await app.post("/v1/handoff", json={"session_id": session}, headers=other.pk_headers())
    assert r.status_code == 404  # another chatbot's session
    r = await app.post("/v1/handoff", json={"session_id": str(uuid.uuid4())}, headers=bot.pk_headers())
    assert r.status_code == 404
    for bad in ({}, {"session_id": "x"}, {"session_id": session, "note": "n" * 2001}, {"session_id": session, "x": 1}):
        assert (await app.post("/v1/handoff", json=bad, headers=bot.pk_headers())).status_code == 422, bad
    assert (await app.post("/v1/handoff", json={"session_id": session})).status_code == 401
    for widget in ({"handoff_phrases": ["x"]}, {"handoff_phrases": ["p" * 101]}, {"handoff_phrases": ["ab"] * 21}):
        from tests.support.signing import send_signed

        r = await send_signed(app, "PUT", f"/internal/v1/chatbots/{uuid.uuid4()}", {**bot.payload, "widget": widget})
        assert r.status_code == 422, widget


async def test_a_notice_odoo_refuses_is_retried_and_the_transcript_is_capped(app_factory, db_url, db):
    odoo = Odoo(fail_first=1)
    try:
        app = await app_factory(answering_settings(database_url=db_url, odoo_url=odoo.server.url))
        bot = await create_bot(app, widget=HANDOFF_WIDGET)
        session = None
        for i in range(TRANSCRIPT_MESSAGES // 2 + 3):
            body = {"message": f"Question {i}?"} | ({"session_id": session} if session else {})
            session = (await app.post("/v1/chat", json=body, headers=bot.pk_headers())).json()["session_id"]
        await app.post("/v1/handoff", json={"session_id": session}, headers=bot.pk_headers())
        assert await deliver(app) == 0  # 503: kept, rescheduled with backoff
        row = await db.fetchrow("SELECT attempts, last_error FROM handoff_outbox")
        assert row["attempts"] == 1 and "503" in row["last_error"]
        await db.execute("UPDATE handoff_outbox SET next_attempt_at = now()")
        assert await deliver(app) == 1
        (notice,) = odoo.notices
        assert len(notice["transcript"]) == TRANSCRIPT_MESSAGES
        assert notice["transcript"][-2]["content"] == f"Question {TRANSCRIPT_MESSAGES // 2 + 2}?"  # the newest kept
    finally:
        odoo.server.stop()


async def test_without_odoo_url_nothing_is_queued_but_the_visitor_is_told(client, db):
    bot = await create_bot(client, widget=HANDOFF_WIDGET)
    r = await client.post("/v1/chat", json={"message": "talk to a human"}, headers=bot.pk_headers())
    assert r.json()["handoff"]["message"] == "Our team will email you within a day."
    assert await db.fetchval("SELECT count(*) FROM handoff_outbox") == 0
    assert await db.fetchval("SELECT count(*) FROM chat_sessions WHERE handoff_at IS NOT NULL") == 1
