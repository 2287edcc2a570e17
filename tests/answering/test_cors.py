"""Per-chatbot Origins and CORS: preflights, real requests, wildcards, Vary, never `*`."""

import pytest

from tests.answering.helpers import create_bot

PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}


@pytest.mark.parametrize(
    "origin", ["https://shop.example.com", "http://shop.example.com:8080", "https://x.y.acme.test"]
)
async def test_preflight_from_an_allowed_origin(client, bot, origin):
    r = await client.options("/v1/chat", headers={"Origin": origin, **PREFLIGHT})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == origin
    assert "authorization" in r.headers["access-control-allow-headers"].lower()
    assert "Origin" in r.headers["vary"]
    assert "access-control-allow-credentials" not in r.headers


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "https://shop.example.com.evil.example",
        "https://acme.test",  # the wildcard covers subdomains, not the apex
        "https://evilacme.test",
        "null",
        "file://",
        "https://shop.example.com/path",
    ],
)
async def test_preflight_from_a_disallowed_origin_is_refused_without_cors_headers(client, bot, origin):
    r = await client.options("/v1/chat", headers={"Origin": origin, **PREFLIGHT})
    assert r.status_code == 403
    assert not [h for h in r.headers if h.startswith("access-control-")]
    assert r.json()["error"] == "forbidden"


async def test_real_request_echoes_the_origin_and_varies(client, bot):
    r = await client.post("/v1/chat", json={"message": "returns?"}, headers=bot.pk_headers("https://shop.example.com"))
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://shop.example.com"
    assert r.headers["vary"] == "Origin"
    assert r.headers["access-control-allow-origin"] != "*"


async def test_origin_allowed_for_another_chatbot_is_refused_for_this_key(client, bot):
    await create_bot(client, allowed_domains=["other-shop.test"])
    r = await client.post("/v1/chat", json={"message": "returns?"}, headers=bot.pk_headers("https://other-shop.test"))
    assert r.status_code == 403
    assert "access-control-allow-origin" not in r.headers
    assert r.headers["vary"] == "Origin"


async def test_secret_key_from_a_browser_with_a_foreign_origin_is_refused(client, bot):
    r = await client.post(
        "/v1/search", json={"query": "returns"}, headers=bot.sk_headers(Origin="https://evil.example")
    )
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers


async def test_401_is_readable_by_allowed_origins_only(client, bot):
    r = await client.post("/v1/chat", json={"message": "x"}, headers={"Origin": "https://shop.example.com"})
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == "https://shop.example.com"
    r = await client.post("/v1/chat", json={"message": "x"}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 401 and "access-control-allow-origin" not in r.headers


async def test_widget_config_from_allowed_origin(client, bot):
    r = await client.get("/v1/widget/config", headers=bot.pk_headers())
    assert r.status_code == 200
    assert r.json() == {
        "name": "Support bot",
        "title": "Acme help",
        "color": "#112233",
        "welcome": "Hello!",
        "suggestions": ["Returns?"],
        "language": "en",
        "handoff": False,
    }


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("http://127.0.0.1:8170", 200),
        ("http://10.0.0.7", 200),
        ("https://10.0.0.7:8443", 200),  # an entry without a port allows any port
        ("http://127.0.0.1:8171", 403),  # an entry with a port allows that port only
        ("http://127.0.0.2:8170", 403),
    ],
)
async def test_ip_hosts_in_allowed_domains_are_matched(client, origin, status):
    """A widget on an intranet page served from an IP address (#17): `127.0.0.1:8170`, `10.0.0.7`."""
    bot = await create_bot(client, allowed_domains=["127.0.0.1:8170", "10.0.0.7"])
    r = await client.post("/v1/chat", json={"message": "returns?"}, headers=bot.pk_headers(origin))
    assert r.status_code == status, r.text
    assert (r.headers.get("access-control-allow-origin") == origin) is (status == 200)
