"""The widget in real headless Chromium (Debian `chromium`, driven by Playwright — no browser download):
loaded by a page on another origin, streaming, sources, feedback, reload with history, inert HTML."""

import asyncio
import shutil
from pathlib import Path

import pytest

from tests.answering.fake_llm import FakeModelServer
from tests.answering.helpers import HANDBOOK, LiveServer, create_bot, insert_chunks
from tests.answering.helpers import answering_settings as make_settings
from tests.support.host_page import HostPage

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parents[2] / "docs"
TOKENS = ["Returns are ", "accepted within ", "30 days ", "of delivery ", "[1]. ", "See https://acme.test/returns ."]
EVIL = ["Try this: ", "<script>window.__pwned = 1</script>", ' <img src="x" onerror="window.__pwned = 2">', " done"]


def host_page(engine_url: str, key: str) -> HostPage:
    """A customer's site embedding the widget, with hostile page styles."""
    return HostPage(
        (
            "<!doctype html><html><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width, initial-scale=1'><title>Acme shop</title>"
            "<style>h1{font-family:serif;color:#a00} button{background:red !important}</style></head>"
            "<body><h1>Acme shop</h1><p>Welcome to our shop.</p>"
            "<script>window.ChatbotPlatform = window.ChatbotPlatform || function () {"
            "(window.ChatbotPlatform.q = window.ChatbotPlatform.q || []).push(arguments); };</script>"
            f"<script src='{engine_url}/widget.js' data-key='{key}' defer></script></body></html>"
        ).encode()
    )


@pytest.fixture
async def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (see tests/apt-packages.txt)")
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        yield browser
        await browser.close()


async def bubble_texts(page):
    return await page.locator("#cbp-widget .msg").all_inner_texts()


async def test_widget_end_to_end(app_factory, db_url, db, embedder, browser):
    with FakeModelServer(TOKENS, delay=0.25) as fake:
        client = await app_factory(make_settings(database_url=db_url, llm_backend="ollama", ollama_url=fake.url))
        bot = await create_bot(client, allowed_domains=["localhost"])
        await insert_chunks(db, embedder, bot.id, HANDBOOK, name="Returns policy", url="https://acme.test/returns")
        async with LiveServer(client.app) as engine:
            host = host_page(engine.url, bot.pk)
            try:
                context = await browser.new_context(viewport={"width": 1000, "height": 760})
                page = await context.new_page()
                errors = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                await page.goto(host.url)
                await page.click("#cbp-widget .launcher")
                await page.wait_for_selector("#cbp-widget .suggestion")
                assert await page.locator("#cbp-widget .title").inner_text() == "Acme help"
                assert "Hello!" in (await bubble_texts(page))[0]
                # Theming from /v1/widget/config; the host page's CSS does not leak into the shadow root.
                color = await page.locator("#cbp-widget .send").evaluate("b => getComputedStyle(b).backgroundColor")
                assert color == "rgb(17, 34, 51)"

                await page.fill("#cbp-widget textarea", "How do returns work?")
                await page.click("#cbp-widget .send")
                answer = page.locator("#cbp-widget .msg.bot").last
                partials = set()
                for _ in range(200):  # sample the bubble while tokens arrive
                    partials.add(await answer.locator(".body").inner_text())
                    if await answer.locator(".rate").count():
                        break
                    await asyncio.sleep(0.05)
                final = await answer.locator(".body").inner_text()
                assert final == "".join(TOKENS)
                assert len([p for p in partials if p and p != final]) >= 2, partials  # it streamed
                link = answer.locator(".body a")
                assert await link.get_attribute("href") == "https://acme.test/returns"
                source = answer.locator(".source a").first
                assert (await source.inner_text()).startswith("[1] Returns policy")
                assert await source.get_attribute("href") == "https://acme.test/returns"
                assert "Returns: you can return" in await answer.locator(".snippet").first.inner_text()

                await answer.locator(".rate button[data-rating=up]").click()
                await page.wait_for_selector("#cbp-widget .rate button[aria-pressed=true]")
                assert await db.fetchval("SELECT rating FROM feedback") == "up"
                DOCS.mkdir(exist_ok=True)
                await page.screenshot(path=str(DOCS / "widget.png"))

                # Reload: the conversation comes back from /v1/sessions/{id}/messages.
                await page.reload()
                await page.wait_for_selector("#cbp-widget .msg.user")
                texts = await bubble_texts(page)
                assert "How do returns work?" in texts
                assert any(t.startswith("".join(TOKENS)) for t in texts)
                assert await page.locator("#cbp-widget .source").count() >= 1

                # Model output that tries to inject markup stays text.
                fake.tokens = EVIL
                fake.delay = 0
                await page.fill("#cbp-widget textarea", "Tell me about returns")
                await page.click("#cbp-widget .send")
                await page.wait_for_function(
                    "() => document.querySelector('#cbp-widget').shadowRoot.querySelectorAll('.rate').length >= 2"
                )
                evil = await page.locator("#cbp-widget .msg.bot").last.locator(".body").inner_text()
                assert evil == "".join(EVIL)
                assert await page.evaluate("() => window.__pwned") is None
                assert (
                    await page.evaluate(
                        "() => document.querySelector('#cbp-widget').shadowRoot.querySelectorAll('img, script, iframe').length"
                    )
                    == 0
                )
                assert await page.evaluate("() => document.querySelectorAll('img').length") == 0

                # Mobile width: the open panel fills the screen.
                await page.set_viewport_size({"width": 375, "height": 700})
                box = await page.locator("#cbp-widget .panel").bounding_box()
                assert box is not None and round(box["width"]) == 375
                assert errors == []
            finally:
                host.close()


async def test_widget_on_a_disallowed_origin_gets_nothing(app_factory, db_url, browser):
    client = await app_factory(make_settings(database_url=db_url))
    bot = await create_bot(client, allowed_domains=["shop.example.com"])
    async with LiveServer(client.app) as engine:
        host = host_page(engine.url, bot.pk)
        try:
            page = await browser.new_page()
            await page.goto(host.url)
            await page.click("#cbp-widget .launcher")
            await page.wait_for_selector("#cbp-widget .error")
            assert "not available" in await page.locator("#cbp-widget .error").inner_text()
            assert await page.locator("#cbp-widget .suggestion").count() == 0
        finally:
            host.close()


async def test_extractive_answer_shows_the_page_and_one_quiet_line(app_factory, db_url, db, embedder, browser):
    client = await app_factory(make_settings(database_url=db_url, llm_backend="none"))
    bot = await create_bot(client, allowed_domains=["localhost"])
    await insert_chunks(db, embedder, bot.id, HANDBOOK, name="Handbook.pdf")
    await db.execute("UPDATE chunks SET metadata = metadata || '{\"page\": 3}'::jsonb WHERE chatbot_id = $1", bot.id)
    async with LiveServer(client.app) as engine:
        host = host_page(engine.url, bot.pk)
        try:
            page = await browser.new_page()
            await page.goto(host.url)
            await page.click("#cbp-widget .launcher")
            await page.wait_for_selector("#cbp-widget .suggestion")
            await page.fill("#cbp-widget textarea", "How long is the warranty?")
            await page.click("#cbp-widget .send")
            answer = page.locator("#cbp-widget .msg.bot").last
            await answer.locator(".rate").wait_for()
            body = await answer.locator(".body").inner_text()
            assert "two-year warranty" in body and "language model" not in body
            assert (await answer.locator(".source b").first.inner_text()).startswith("[1] Handbook.pdf, p. 3")
            labels = await answer.locator(".label").all_inner_texts()
            assert labels.count("Quoted from the documents") == 1
        finally:
            host.close()


async def test_talk_to_a_person_button_and_phrase(app_factory, db_url, db, embedder, browser):
    client = await app_factory(make_settings(database_url=db_url, llm_backend="none"))
    widget = {
        "title": "Acme help",
        "handoff_enabled": True,
        "handoff_phrases": ["talk to a human"],
        "handoff_message": "Our team will email you within a day.",
    }
    bot = await create_bot(client, allowed_domains=["localhost"], widget=widget)
    plain = await create_bot(client, allowed_domains=["localhost"])  # no handoff configured
    await insert_chunks(db, embedder, bot.id, HANDBOOK)
    async with LiveServer(client.app) as engine:
        host = host_page(engine.url, bot.pk)
        other = host_page(engine.url, plain.pk)
        try:
            page = await browser.new_page()
            await page.goto(host.url)
            await page.click("#cbp-widget .launcher")
            human = page.locator("#cbp-widget .human")
            await human.wait_for()
            await human.click()  # before any question: there is no conversation to hand over yet
            assert "Ask your question first" in await page.locator("#cbp-widget .notice").last.inner_text()
            await page.fill("#cbp-widget textarea", "How long is the warranty?")
            await page.click("#cbp-widget .send")
            await page.locator("#cbp-widget .msg.bot .rate").last.wait_for()
            await human.click()
            await page.wait_for_function(
                "() => document.querySelector('#cbp-widget').shadowRoot.querySelectorAll('.notice').length === 2"
            )
            assert (
                await page.locator("#cbp-widget .notice").last.inner_text() == "Our team will email you within a day."
            )
            assert await human.is_disabled()
            assert await db.fetchval("SELECT count(*) FROM chat_sessions WHERE handoff_reason = 'button'") == 1

            # A new conversation where the visitor types a handoff phrase.
            await page.evaluate("() => localStorage.clear()")
            await page.reload()
            await page.click("#cbp-widget .launcher")
            await page.fill("#cbp-widget textarea", "Can I talk to a human please?")
            await page.click("#cbp-widget .send")
            await page.locator("#cbp-widget .notice").wait_for()
            assert "email you" in await page.locator("#cbp-widget .notice").inner_text()
            assert await db.fetchval("SELECT count(*) FROM chat_sessions WHERE handoff_reason = 'phrase'") == 1

            page = await browser.new_page()
            await page.goto(other.url)
            await page.click("#cbp-widget .launcher")
            await page.wait_for_selector("#cbp-widget .suggestion")
            assert not await page.locator("#cbp-widget .human").is_visible()
        finally:
            host.close()
            other.close()
