"""Link sources against a real local site (FETCH_ALLOW_PRIVATE_NETWORKS, a test-only allowance)."""

import asyncio
import time
import uuid

import pytest

from tests.conftest import make_settings
from tests.ingestion.files import html_page
from tests.ingestion.helpers import link, prose, put_source, wait_settled
from tests.ingestion.http_server import LocalServer, html, text


def site(server_url: str, version: str = "one") -> dict:
    return {
        "/robots.txt": text(f"User-agent: *\nDisallow: /private\nSitemap: {server_url}/sitemap.xml\n".encode()),
        "/sitemap.xml": text(
            f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"<url><loc>{server_url}/from-sitemap</loc></url><url><loc>http://elsewhere.example/x</loc></url>"
            f"</urlset>".encode(),
            "application/xml",
        ),
        "/": html(
            html_page(
                "Home",
                f"<p>Welcome page {version}. {prose(60, seed=1)}</p>",
                ["/a", "/b", "/private/secret", "http://elsewhere.example/", "/logo.png", "#top", "mailto:x@y.z"],
            )
        ),
        "/a": html(html_page("Page A", f"<p>Alpha content. {prose(60, seed=2)}</p>", ["/a/deeper"])),
        "/a/deeper": html(html_page("Deeper", "<p>Too deep for depth one.</p>")),
        "/b": html(html_page("Page B", f"<p>Beta content. {prose(60, seed=3)}</p>", ["/"])),
        "/from-sitemap": html(html_page("Sitemap page", "<p>Listed only in the sitemap.</p>")),
        "/private/secret": html(html_page("Private", "<p>robots.txt says no.</p>")),
    }


@pytest.fixture
def website():
    server = LocalServer().start()
    server.routes.update(site(server.url))
    yield server
    server.stop()


@pytest.fixture
async def crawler_client(app_factory, db_url):
    settings = make_settings(
        database_url=db_url, fetch_allow_private_networks=True, link_refresh_sweep_seconds=0.3, worker_poll_seconds=0.1
    )
    return await app_factory(settings)


async def pages_of(db, src):
    rows = await db.fetch("SELECT content, metadata FROM chunks WHERE source_id = $1 ORDER BY ordinal", src)
    return {r["metadata"]["url"]: r for r in rows}


async def test_same_site_crawl_respects_depth_robots_and_the_sitemap(crawler_client, db, website):
    bot, src = uuid.uuid4(), uuid.uuid4()
    await put_source(crawler_client, bot, src, link(1, website.url + "/", max_depth=1, max_pages=20))
    row = await wait_settled(db, src, 1)
    assert row["state"] == "ready", row["error"]
    pages = await pages_of(db, src)
    u = website.url
    assert set(pages) == {f"{u}/", f"{u}/a", f"{u}/b", f"{u}/from-sitemap"}
    assert pages[f"{u}/a"]["metadata"]["title"] == "Page A"
    assert "Alpha content." in pages[f"{u}/a"]["content"]
    fetched = {r.path for r in website.requests}
    assert "/private/secret" not in fetched and "/a/deeper" not in fetched and "/logo.png" not in fetched
    assert "/robots.txt" in fetched
    # what Odoo shows for the link: 4 pages indexed, /private/secret skipped (robots.txt)
    assert (row["pages_indexed"], row["pages_skipped"]) == (4, 1)


async def test_max_pages_caps_the_crawl(crawler_client, db, website):
    bot, src = uuid.uuid4(), uuid.uuid4()
    await put_source(crawler_client, bot, src, link(1, website.url + "/", max_depth=3, max_pages=2))
    await wait_settled(db, src, 1)
    assert len(await pages_of(db, src)) == 2
    assert len([r for r in website.requests if r.path not in ("/robots.txt", "/sitemap.xml")]) == 2


async def test_robots_disallowing_the_start_page_fails_with_a_reason(crawler_client, db, website):
    bot, src = uuid.uuid4(), uuid.uuid4()
    await put_source(crawler_client, bot, src, link(1, website.url + "/private/secret"))
    row = await wait_settled(db, src, 1)
    assert row["state"] == "failed" and "robots.txt" in row["error"]


async def test_a_missing_start_page_fails_with_the_http_status(crawler_client, db, website):
    bot, src = uuid.uuid4(), uuid.uuid4()
    await put_source(crawler_client, bot, src, link(1, website.url + "/nope"))
    row = await wait_settled(db, src, 1)
    assert row["state"] == "failed" and "HTTP 404" in row["error"]


async def test_due_links_are_refreshed_by_the_periodic_sweep(crawler_client, db, website):
    bot, src = uuid.uuid4(), uuid.uuid4()
    await put_source(crawler_client, bot, src, link(1, website.url + "/", refresh_hours=1 / 3600))
    await wait_settled(db, src, 1)
    assert "Welcome page one." in (await pages_of(db, src))[website.url + "/"]["content"]
    assert await db.fetchval("SELECT next_refresh_at FROM sources WHERE id = $1", src) is not None
    website.routes.update(site(website.url, version="two"))
    deadline = time.monotonic() + 30
    while "Welcome page two." not in (await pages_of(db, src)).get(website.url + "/", {"content": ""})["content"]:
        assert time.monotonic() < deadline, "the link was not refreshed"
        await asyncio.sleep(0.2)
    jobs = await db.fetch("SELECT args FROM procrastinate_jobs ORDER BY id")
    assert jobs[0]["args"]["refresh"] is False and jobs[1]["args"]["refresh"] is True
    assert await db.fetchval("SELECT indexed_version FROM sources WHERE id = $1", src) == 1


async def test_limits_above_the_engines_fail_with_the_reason_instead_of_a_silent_cap(crawler_client, db, website):
    """Odoo and the engine share CRAWL_MAX_DEPTH=3 / CRAWL_MAX_PAGES=200 (docs/odoo_addon.md)."""
    deep, many, fine = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    bot = uuid.uuid4()
    await put_source(crawler_client, bot, deep, link(1, website.url + "/", max_depth=5, max_pages=10))
    await put_source(crawler_client, bot, many, link(1, website.url + "/", max_depth=1, max_pages=1000))
    await put_source(crawler_client, bot, fine, link(1, website.url + "/", max_depth=3, max_pages=200))
    row = await wait_settled(db, deep, 1)
    assert row["state"] == "failed" and row["error"] == "max_depth 5 is above this engine's limit of 3"
    row = await wait_settled(db, many, 1)
    assert row["state"] == "failed" and row["error"] == "max_pages 1000 is above this engine's limit of 200"
    assert (await wait_settled(db, fine, 1))["state"] == "ready"
