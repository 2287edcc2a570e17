"""Signed chatbot deliveries: signatures, versions, tombstones, replays."""

import json
import time
import uuid

import httpx
import pytest

from tests.support.signing import TEST_SECRET, send_signed, signed


def chatbot_payload(version: int, **overrides):
    body = {
        "version": version,
        "tenant": "db-uuid:1",
        "name": f"Bot v{version}",
        "active": True,
        "language": "en",
        "prompts": {"system": "Be brief.", "user_template": "{question}"},
        "generation": {"model": None, "temperature": 0.1, "max_tokens": 256, "top_k": 4},
        "allowed_domains": ["example.com", "*.example.org"],
        "api_keys": [
            {"id": str(uuid.uuid4()), "kind": "secret", "prefix": "cbp_sk_abcd", "sha256": "a" * 64, "expires_at": None}
        ],
        "rate_limits": {"key_per_minute": 30, "ip_per_minute": None},
        "widget": {"title": "Help", "color": "#112233", "welcome": "Hi", "suggestions": ["Pricing?"]},
    }
    body.update(overrides)
    return body


async def count(db, table: str) -> int:
    return await db.fetchval(f"SELECT count(*) FROM {table}")


async def test_put_creates_then_newer_version_updates(client, db):
    bot = uuid.uuid4()
    r = await send_signed(client, "PUT", f"/internal/v1/chatbots/{bot}", chatbot_payload(1))
    assert r.status_code == 200 and r.json()["applied"] is True
    r = await send_signed(client, "PUT", f"/internal/v1/chatbots/{bot}", chatbot_payload(2, name="Renamed"))
    assert r.json()["applied"] is True
    row = await db.fetchrow("SELECT name, version, allowed_domains, rate_limits FROM chatbots WHERE id = $1", bot)
    assert (row["name"], row["version"]) == ("Renamed", 2)
    assert row["allowed_domains"] == ["example.com", "*.example.org"]
    assert await count(db, "api_keys") == 1


async def test_update_arriving_before_create_wins(client, db):
    bot = uuid.uuid4()
    assert (await send_signed(client, "PUT", f"/internal/v1/chatbots/{bot}", chatbot_payload(5, name="newest"))).json()[
        "applied"
    ]
    late = await send_signed(client, "PUT", f"/internal/v1/chatbots/{bot}", chatbot_payload(1, name="oldest"))
    assert late.status_code == 200 and late.json()["applied"] is False
    assert await db.fetchval("SELECT name FROM chatbots WHERE id = $1", bot) == "newest"


async def test_delete_leaves_a_tombstone_that_a_stale_put_cannot_resurrect(client, db):
    bot = uuid.uuid4()
    await send_signed(client, "PUT", f"/internal/v1/chatbots/{bot}", chatbot_payload(1))
    r = await send_signed(client, "DELETE", f"/internal/v1/chatbots/{bot}", {"version": 3})
    assert r.json()["applied"] is True
    stale = await send_signed(client, "PUT", f"/internal/v1/chatbots/{bot}", chatbot_payload(2))
    assert stale.json()["applied"] is False
    row = await db.fetchrow("SELECT deleted, version FROM chatbots WHERE id = $1", bot)
    assert row["deleted"] and row["version"] == 3
    assert await count(db, "api_keys") == 0
    newer = await send_signed(client, "PUT", f"/internal/v1/chatbots/{bot}", chatbot_payload(4))
    assert newer.json()["applied"] is True  # a genuinely newer version may recreate it


async def test_five_rapid_versions_in_any_order_end_at_the_newest(client, db):
    bot = uuid.uuid4()
    for v in [3, 1, 5, 2, 4]:
        await send_signed(client, "PUT", f"/internal/v1/chatbots/{bot}", chatbot_payload(v, name=f"v{v}"))
    assert await db.fetchval("SELECT name FROM chatbots WHERE id = $1", bot) == "v5"


async def test_replay_of_the_same_delivery_is_a_no_op(client, db):
    bot = uuid.uuid4()
    request = signed("PUT", f"http://engine.test/internal/v1/chatbots/{bot}", chatbot_payload(1))
    first = await client.send(request)
    assert first.json()["applied"] is True
    await db.execute("UPDATE chatbots SET name = 'changed locally' WHERE id = $1", bot)
    replay = await client.send(
        signed(
            "PUT",
            f"http://engine.test/internal/v1/chatbots/{bot}",
            chatbot_payload(1),
            msg_id=request.headers["webhook-id"],
        )
    )
    assert replay.json() == {"applied": False, "reason": "duplicate_delivery", "detail": "duplicate delivery"}


def tamper(request: httpx.Request, **changes) -> httpx.Request:
    headers = dict(request.headers)
    body = changes.pop("body", request.content)
    headers.update(changes.pop("headers", {}))
    for name in changes.pop("drop", []):
        headers.pop(name, None)
    headers["content-length"] = str(len(body))
    return httpx.Request(request.method, request.url, content=body, headers=headers)


def _base(bot):
    return signed("PUT", f"http://engine.test/internal/v1/chatbots/{bot}", chatbot_payload(1))


REJECTIONS = {
    "tampered body": lambda r: tamper(r, body=r.content.replace(b"Bot v1", b"Bot v9")),
    "re-serialized json": lambda r: tamper(r, body=json.dumps(json.loads(r.content), indent=2).encode()),
    "wrong secret": lambda r: signed(
        "PUT", str(r.url), json.loads(r.content), secret="whsec_" + "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC1vdGhlciE="
    ),
    "old timestamp": lambda r: signed("PUT", str(r.url), json.loads(r.content), timestamp=int(time.time()) - 600),
    # Far past the 300 s tolerance: int(time.time()) + 301 is inside it once a loaded machine
    # spends a second between signing and verifying (the floor alone eats up to one).
    "future timestamp": lambda r: signed("PUT", str(r.url), json.loads(r.content), timestamp=int(time.time()) + 600),
    "missing signature": lambda r: tamper(r, drop=["webhook-signature"]),
    "missing id": lambda r: tamper(r, drop=["webhook-id"]),
    "missing timestamp": lambda r: tamper(r, drop=["webhook-timestamp"]),
    "malformed signature": lambda r: tamper(r, headers={"webhook-signature": "v1;garbage"}),
    "bad base64": lambda r: tamper(r, headers={"webhook-signature": "v1,@@@@"}),
    "non-numeric timestamp": lambda r: tamper(r, headers={"webhook-timestamp": "yesterday"}),
    "unknown scheme only": lambda r: tamper(
        r, headers={"webhook-signature": "v2," + r.headers["webhook-signature"][3:]}
    ),
}


@pytest.mark.parametrize("attack", sorted(REJECTIONS))
async def test_bad_signatures_are_rejected_with_nothing_written(client, db, attack):
    bot = uuid.uuid4()
    r = await client.send(REJECTIONS[attack](_base(bot)))
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "unauthorized"
    assert await count(db, "chatbots") == 0
    assert await count(db, "webhook_receipts") == 0


async def test_oversize_body_is_rejected_before_parsing(app_factory, db_url, db):
    from tests.conftest import make_settings

    small = await app_factory(make_settings(database_url=db_url, webhook_max_body_bytes=2048))
    bot = uuid.uuid4()
    r = await small.send(
        signed(
            "PUT",
            f"http://engine.test/internal/v1/chatbots/{bot}",
            chatbot_payload(1, name="x" * 150, prompts={"system": "y" * 4000, "user_template": ""}),
        )
    )
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    assert await count(db, "chatbots") == 0


async def test_secret_rotation_accepts_either_of_two_signatures(client, db):
    bot = uuid.uuid4()
    old = "whsec_" + "b2xkLXNlY3JldC1vbGQtc2VjcmV0LW9sZC1zZWNyZXQ="
    payload = chatbot_payload(1)
    request = signed("PUT", f"http://engine.test/internal/v1/chatbots/{bot}", payload, secret=old)
    good = signed(
        "PUT",
        str(request.url),
        payload,
        secret=TEST_SECRET,
        msg_id=request.headers["webhook-id"],
        timestamp=int(request.headers["webhook-timestamp"]),
    )
    both = tamper(
        request,
        headers={"webhook-signature": request.headers["webhook-signature"] + " " + good.headers["webhook-signature"]},
    )
    r = await client.send(both)
    assert r.status_code == 200 and r.json()["applied"] is True, r.text


async def test_invalid_payload_is_a_422_with_the_field_named(client, db):
    bot = uuid.uuid4()
    r = await send_signed(
        client, "PUT", f"/internal/v1/chatbots/{bot}", chatbot_payload(1, allowed_domains=["not a domain!"])
    )
    assert r.status_code == 422
    assert "allowed_domains" in r.json()["detail"]
    assert await count(db, "chatbots") == 0


async def test_allowed_domains_accept_ip_hosts_and_refuse_wildcards_over_a_public_suffix(client, db):
    for bad, reason in (
        ("*.com", "a wildcard over a public suffix"),
        ("*.co.uk", "a wildcard over a public suffix"),
        ("*.github.io", "a wildcard over a public suffix"),
        ("*.127.0.0.1", "an IP address has no subdomains"),
        ("127.0.0.1:99999", "not a host name"),
    ):
        bot = uuid.uuid4()
        r = await send_signed(client, "PUT", f"/internal/v1/chatbots/{bot}", chatbot_payload(1, allowed_domains=[bad]))
        assert r.status_code == 422, (bad, r.text)
        assert "allowed_domains" in r.json()["detail"] and reason in r.json()["detail"], r.text
    assert await count(db, "chatbots") == 0
    good = ["127.0.0.1:8170", "10.0.0.7", "*.shop.example.co.uk", "*.localhost", "example.com"]
    bot = uuid.uuid4()
    r = await send_signed(client, "PUT", f"/internal/v1/chatbots/{bot}", chatbot_payload(1, allowed_domains=good))
    assert r.status_code == 200, r.text
    assert await db.fetchval("SELECT allowed_domains FROM chatbots WHERE id = $1", bot) == good
