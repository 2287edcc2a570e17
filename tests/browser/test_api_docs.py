"""`/docs` works offline: the Swagger UI page references only the engine's own assets, they are
served, and real headless Chromium renders the API's operations with every other host blocked."""

import re
from urllib.parse import urljoin, urlsplit

from tests.answering.helpers import LiveServer
from tests.browser.test_widget import browser  # noqa: F401  (the Chromium fixture)

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')]+)""")


async def test_docs_page_references_only_served_local_assets(client):
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    urls = [a or b for a, b in ASSET.findall(page.text)]
    assert urls, "the page loads Swagger UI's script and stylesheet"
    for url in urls:
        assert not urlsplit(url).netloc and not url.startswith("//"), f"external asset: {url}"
    assert "/openapi.json" in page.text
    for url in urls:
        asset = await client.get(urljoin("http://t/docs", url))
        assert asset.status_code == 200, url
        assert len(asset.content) > 500, url
    script = await client.get("/docs/assets/swagger-ui-bundle.js")
    assert "javascript" in script.headers["content-type"]
    assert (await client.get("/docs/assets/%2e%2e/__init__.py")).status_code == 404  # no way out of the dist
    assert (await client.get("/docs/assets/nope.js")).status_code == 404


async def test_docs_render_in_chromium_without_any_other_host(client, browser):  # noqa: F811
    blocked: list[str] = []
    async with LiveServer(client.app) as engine:
        context = await browser.new_context()
        page = await context.new_page()

        async def only_the_engine(route):
            if route.request.url.startswith(engine.url + "/"):
                await route.continue_()
            else:
                blocked.append(route.request.url)
                await route.abort()

        await page.route("**/*", only_the_engine)
        await page.goto(engine.url + "/docs")
        await page.locator(".swagger-ui .info .title").wait_for(timeout=30_000)
        assert "Chatbot Platform engine" in await page.locator(".swagger-ui .info .title").inner_text()
        paths = await page.locator(".opblock-summary-path").all_inner_texts()
        assert "/v1/chat" in [p.replace("\u200b", "").strip() for p in paths]
        await context.close()
    assert blocked == [], f"/docs tried to load from elsewhere: {blocked}"
