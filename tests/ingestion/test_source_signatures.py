"""Signed deliveries on the source routes: every forgery is a 401/413 with nothing written."""

import json
import time
import uuid

import pytest

from tests.engine.test_internal_chatbots import REJECTIONS, tamper
from tests.ingestion.helpers import document, prose
from tests.support.signing import TEST_SECRET, signed


def _put(bot, src):
    return signed(
        "PUT", f"http://engine.test/internal/v1/chatbots/{bot}/sources/{src}", document(1, b"some text", name="Bot v1")
    )


def _delete(bot, src):
    return signed(
        "DELETE", f"http://engine.test/internal/v1/chatbots/{bot}/sources/{src}", {"version": 1, "x": "Bot v1"}
    )


async def nothing_written(db):
    for table in ("sources", "chunks", "webhook_receipts", "procrastinate_jobs", "source_status_outbox"):
        assert await db.fetchval(f"SELECT count(*) FROM {table}") == 0, table


@pytest.mark.parametrize("route", ["put", "delete"])
@pytest.mark.parametrize("attack", sorted(REJECTIONS))
async def test_forged_source_deliveries_are_rejected_with_nothing_written(client, db, route, attack):
    base = (_put if route == "put" else _delete)(uuid.uuid4(), uuid.uuid4())
    r = await client.send(REJECTIONS[attack](base))
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "unauthorized"
    await nothing_written(db)


async def test_replayed_put_with_a_fresh_signature_is_still_a_no_op(client, db):
    bot, src = uuid.uuid4(), uuid.uuid4()
    first = _put(bot, src)
    assert (await client.send(first)).status_code == 202
    again = signed("PUT", str(first.url), json.loads(first.content), msg_id=first.headers["webhook-id"])
    r = await client.send(again)
    assert r.json()["detail"] == "duplicate delivery"
    assert await db.fetchval("SELECT count(*) FROM procrastinate_jobs") == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"drop": "webhook-signature"},
        {"timestamp": -400},
        {"timestamp": 400},
        {"secret": "whsec_" + "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC1vdGhlciE="},
    ],
    ids=["unsigned", "no-signature", "old", "future", "wrong-secret"],
)
async def test_listing_sources_needs_a_valid_signature(client, headers):
    bot = uuid.uuid4()
    if not headers:
        r = await client.get(f"/internal/v1/chatbots/{bot}/sources")
    else:
        request = signed(
            "GET",
            f"http://engine.test/internal/v1/chatbots/{bot}/sources",
            None,
            secret=headers.get("secret", TEST_SECRET),
            timestamp=int(time.time()) + headers.get("timestamp", 0),
        )
        request.headers.pop(headers.get("drop", "none"), None)
        r = await client.send(request)
    assert r.status_code == 401


async def test_oversize_source_body_is_rejected_before_parsing(app_factory, db_url, db):
    from tests.conftest import make_settings

    small = await app_factory(make_settings(database_url=db_url, webhook_max_body_bytes=4096))
    bot, src = uuid.uuid4(), uuid.uuid4()
    r = await small.send(
        signed("PUT", f"http://engine.test/internal/v1/chatbots/{bot}/sources/{src}", document(1, prose(2000).encode()))
    )
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    # Also when the client lies about the length and streams more.
    request = _put(bot, src)
    padded = tamper(request, body=request.content + b" " * 5000)
    r = await small.send(padded)
    assert r.status_code in (401, 413)
    await nothing_written(db)
