"""A chatbot PUT or DELETE drops this process's cached keys and allow-lists at once, so new
allowed domains (or a deletion) apply to the very next request, not after KEY_CACHE_SECONDS."""

from tests.answering.helpers import create_bot, put_chatbot
from tests.conftest import make_settings
from tests.support.signing import send_signed

PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
NEW = "https://new-shop.test"


async def test_new_allowed_domains_apply_to_the_next_request(app_factory, db_url):
    client = await app_factory(make_settings(database_url=db_url, key_cache_seconds=60))
    bot = await create_bot(client)
    # Both caches are warm: the key (with its chatbot's allow-list) and the preflight allow-list.
    r = await client.post("/v1/chat", json={"message": "hello"}, headers=bot.pk_headers(NEW))
    assert r.status_code == 403
    assert (await client.options("/v1/chat", headers={"Origin": NEW, **PREFLIGHT})).status_code == 403

    await put_chatbot(client, bot.id, {**bot.payload, "allowed_domains": ["new-shop.test"]})
    assert (await client.options("/v1/chat", headers={"Origin": NEW, **PREFLIGHT})).status_code == 204
    r = await client.post("/v1/chat", json={"message": "hello"}, headers=bot.pk_headers(NEW))
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == NEW
    old = await client.post("/v1/chat", json={"message": "hello"}, headers=bot.pk_headers("https://shop.example.com"))
    assert old.status_code == 403, "the removed domain is refused at once too"


async def test_a_deleted_chatbot_stops_answering_at_once(app_factory, db_url):
    client = await app_factory(make_settings(database_url=db_url, key_cache_seconds=60))
    bot = await create_bot(client)
    assert (await client.post("/v1/search", json={"query": "returns"}, headers=bot.sk_headers())).status_code == 200
    r = await send_signed(client, "DELETE", f"/internal/v1/chatbots/{bot.id}", {"version": 100})
    assert r.status_code == 200 and r.json()["applied"], r.text
    assert (await client.post("/v1/search", json={"query": "returns"}, headers=bot.sk_headers())).status_code == 401
