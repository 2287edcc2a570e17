"""API keys: format and checksum, one identical 401, kinds, expiry, revocation across processes."""

import asyncio
import hashlib
import zlib
from datetime import UTC, datetime, timedelta

import pytest

from app.keys.format import BASE62, base62, checksum, generate_key, parse_key
from tests.answering.helpers import answering_settings as make_settings
from tests.answering.helpers import create_bot, key_entry, put_chatbot


def test_generated_keys_have_the_documented_shape():
    for kind, prefix in (("publishable", "cbp_pk_"), ("secret", "cbp_sk_")):
        key = generate_key(kind)
        assert key.startswith(prefix) and len(key) == 7 + 32 + 6
        random_part = key[7:39]
        assert set(random_part) <= set(BASE62)
        expected = base62(zlib.crc32((prefix + random_part).encode()), 6)
        assert key[39:] == expected
        assert parse_key(key) == kind


@pytest.mark.parametrize(
    "mutate",
    [
        lambda k: k[:-1] + ("0" if k[-1] != "0" else "1"),  # checksum typo
        lambda k: k[:10] + ("A" if k[10] != "A" else "B") + k[11:],  # body typo
        lambda k: k[:-1],  # too short
        lambda k: k + "0",  # too long
        lambda k: k.replace("cbp_", "cbx_"),  # wrong prefix
        lambda k: k[:20] + "-" + k[21:],  # not base62
    ],
)
def test_malformed_keys_are_rejected_without_lookup(mutate):
    assert parse_key(mutate(generate_key("secret"))) is None


def test_checksum_pads_small_crc_values_with_zeros():
    assert base62(0, 6) == "000000"
    assert len(checksum("cbp_pk_", "0" * 32)) == 6


async def test_unknown_malformed_revoked_and_expired_keys_get_one_identical_401(client, bot, db):
    well_formed_unknown = generate_key("secret")
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    expired = generate_key("secret")
    other = await create_bot(client, api_keys=[key_entry(expired, "secret", expires_at=past)])
    assert other
    bodies = []
    for headers in (
        {},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": f"Bearer {bot.sk[:-1]}{'y' if bot.sk.endswith('x') else 'x'}"},  # last char changed
        {"Authorization": f"Bearer {well_formed_unknown}"},
        {"X-API-Key": well_formed_unknown},
        {"Authorization": f"Bearer {expired}"},
        {"Authorization": f"Basic {bot.sk}"},
    ):
        r = await client.post("/v1/search", json={"query": "returns"}, headers=headers)
        assert r.status_code == 401, headers
        bodies.append(r.content)
    assert len(set(bodies)) == 1
    assert b"invalid" in bodies[0]


async def test_malformed_key_never_reaches_the_database(client, bot):
    resolver = client.services.key_resolver
    calls = []
    original = resolver._load

    async def spy(digest):
        calls.append(digest)
        return await original(digest)

    resolver._load = spy
    r = await client.post("/v1/search", json={"query": "x"}, headers={"Authorization": "Bearer cbp_sk_" + "a" * 38})
    assert r.status_code == 401 and calls == []
    r = await client.post("/v1/search", json={"query": "x"}, headers={"X-API-Key": generate_key("secret")})
    assert r.status_code == 401 and len(calls) == 1


async def test_a_publishable_key_cannot_search_or_pass_as_secret(client, bot):
    r = await client.post("/v1/search", json={"query": "returns"}, headers=bot.pk_headers())
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    # A publishable key registered as "secret" by mistake is still refused: prefix and kind must agree.
    mislabelled = generate_key("publishable")
    other = await create_bot(client, api_keys=[key_entry(mislabelled, "secret")])
    r = await client.post("/v1/search", json={"query": "returns"}, headers={"Authorization": f"Bearer {mislabelled}"})
    assert other and r.status_code == 401


async def test_a_publishable_key_needs_an_allowed_origin(client, bot):
    r = await client.post("/v1/chat", json={"message": "returns?"}, headers={"Authorization": f"Bearer {bot.pk}"})
    assert r.status_code == 403
    r = await client.post("/v1/chat", json={"message": "returns?"}, headers=bot.pk_headers("https://evil.example"))
    assert r.status_code == 403
    r = await client.post("/v1/chat", json={"message": "returns?"}, headers=bot.pk_headers("https://a.b.acme.test"))
    assert r.status_code == 200


async def test_a_revoked_key_stops_working_in_every_process_within_the_cache_time(app_factory, db_url, embedder):
    settings = make_settings(database_url=db_url, key_cache_seconds=1)
    first = await app_factory(settings)
    second = await app_factory(settings)
    bot = await create_bot(first)
    for app in (first, second):
        r = await app.post("/v1/search", json={"query": "returns"}, headers=bot.sk_headers())
        assert r.status_code == 200
    # Odoo revokes the secret key: the next PUT no longer lists it (sent to the first process only).
    await put_chatbot(first, bot.id, {**bot.payload, "api_keys": [bot.payload["api_keys"][0]]})
    await asyncio.sleep(1.2)
    for app in (first, second):
        r = await app.post("/v1/search", json={"query": "returns"}, headers=bot.sk_headers())
        assert r.status_code == 401


async def test_last_used_at_is_recorded_in_batches(client, bot, db):
    assert await db.fetchval("SELECT count(*) FROM api_keys WHERE last_used_at IS NOT NULL") == 0
    for _ in range(3):
        await client.post("/v1/search", json={"query": "returns"}, headers=bot.sk_headers())
    # Not written on the request path...
    assert await db.fetchval("SELECT count(*) FROM api_keys WHERE last_used_at IS NOT NULL") == 0
    await client.services.key_resolver.flush()
    used = await db.fetch("SELECT sha256 FROM api_keys WHERE last_used_at IS NOT NULL")
    assert [r["sha256"] for r in used] == [hashlib.sha256(bot.sk.encode()).hexdigest()]


async def test_deleted_chatbot_keys_stop_working(client, bot):
    from tests.support.signing import send_signed

    r = await send_signed(client, "DELETE", f"/internal/v1/chatbots/{bot.id}", {"version": 99})
    assert r.json()["applied"]
    client.services.key_resolver._cache.clear()
    r = await client.post("/v1/search", json={"query": "returns"}, headers=bot.sk_headers())
    assert r.status_code == 401
