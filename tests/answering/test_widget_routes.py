"""Widget delivery: /widget.js, the /demo page (key escaped, CSP), same-origin config on /demo."""

from app.keys.format import generate_key


async def test_widget_js_is_one_strict_iife(client):
    r = await client.get("/widget.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/javascript")
    source = r.text
    body = source[source.index("*/") + 2 :].strip()  # after the header comment: one IIFE, nothing else
    assert body.startswith("(function () {\n  'use strict';") and body.endswith("})();")
    assert "innerHTML" not in source and "insertAdjacentHTML" not in source and "eval(" not in source
    assert "attachShadow" in source


async def test_demo_page_embeds_the_widget_with_the_given_key(client):
    key = generate_key("publishable")
    r = await client.get("/demo", params={"key": key})
    assert r.status_code == 200
    assert f'<script src="/widget.js" data-key="{key}" defer></script>' in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    r = await client.get("/demo", params={"key": '"><script>alert(1)</script>'})
    assert "<script>alert(1)" not in r.text and 'data-key=""' in r.text


async def test_widget_config_same_origin_without_origin_header(client, bot):
    # Browsers omit Origin on same-origin GETs; Sec-Fetch-Site tells the engine it is its own page.
    from tests.answering.helpers import put_chatbot

    await put_chatbot(client, bot.id, {**bot.payload, "allowed_domains": ["engine.test"]})
    client.services.key_resolver._cache.clear()
    headers = {"Authorization": f"Bearer {bot.pk}", "Sec-Fetch-Site": "same-origin"}
    r = await client.get("/v1/widget/config", headers=headers)
    assert r.status_code == 200
    r = await client.get(
        "/v1/widget/config", headers={"Authorization": f"Bearer {bot.pk}", "Sec-Fetch-Site": "cross-site"}
    )
    assert r.status_code == 403
