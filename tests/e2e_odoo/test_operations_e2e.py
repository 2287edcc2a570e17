"""Running a chatbot from Odoo, end to end over 127.0.0.1: real Odoo 18, the real engine, the real
widget in headless Chromium.

A visitor talks to the widget (an answer with sources and a thumbs up, a question the documents
cannot answer, a request for a person); the tenant admin sees the conversation in Odoo with its
sources and feedback, finds the unanswered question, writes a Q&A document; the same question is
then answered from it. The handoff reaches Odoo as an activity with the transcript, and the usage
shows in the analytics. Each new screen is captured along the way, into $SCREENSHOTS_DIR
(`SCREENSHOTS_DIR=docs/screenshots` refreshes the documentation's images; default: a temporary
directory, so a test run never rewrites tracked files).
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e_odoo.test_odoo_engine_e2e import Odoo, stack, wait_for  # noqa: F401 - `stack` is a fixture
from tests.support.host_page import HostPage
from tests.support.server import EngineProcess

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "cbp-operations-screenshots")
FACT = "The Zorblax 3000 warranty lasts 37 months and covers accidental water damage."
QUESTION = "How long does the Zorblax 3000 warranty last?"
UNANSWERABLE = "Can I bring my dog into the store?"
CURATED = "Yes. Dogs on a leash are welcome in every Zorblax store."


def host_page(engine_url: str, key: str) -> HostPage:
    """A customer's site embedding the widget."""
    return HostPage(
        (
            "<!doctype html><html><head><meta charset=utf-8><title>Zorblax shop</title></head>"
            "<body><h1>Zorblax shop</h1>"
            f"<script src='{engine_url}/widget.js' data-key='{key}' defer></script></body></html>"
        ).encode()
    )


def open_action(odoo: Odoo, action: dict[str, Any]) -> int:
    assert action["res_model"] and action.get("res_id"), action
    return int(action["res_id"])


async def widget_conversation(browser: Any, host: HostPage) -> None:
    page = await (await browser.new_context(viewport={"width": 1000, "height": 760})).new_page()
    await page.goto(host.origin + "/")
    await page.click("#cbp-widget .launcher")
    await page.wait_for_selector("#cbp-widget .human")  # the chatbot offers "Talk to a person"

    async def ask(text: str) -> Any:
        count = await page.locator("#cbp-widget .rate").count()
        await page.fill("#cbp-widget textarea", text)
        await page.click("#cbp-widget .send")
        await page.wait_for_function(
            f"() => document.querySelector('#cbp-widget').shadowRoot.querySelectorAll('.rate').length > {count}",
            timeout=120_000,
        )
        return page.locator("#cbp-widget .msg.bot").last

    answer = await ask(QUESTION)
    assert "37 months" in await answer.locator(".body").inner_text()
    assert await answer.locator(".source").count() >= 1
    await answer.locator(".rate button[data-rating=up]").click()
    await page.wait_for_selector("#cbp-widget .rate button[aria-pressed=true]")
    await ask(UNANSWERABLE)
    await page.click("#cbp-widget .human")
    notice = page.locator("#cbp-widget .notice")
    await notice.wait_for()
    assert "email you" in await notice.inner_text()
    await page.screenshot(path=str(SCREENSHOTS / "widget_handoff.png"))
    await page.context.close()


async def capture(browser: Any, odoo: Odoo, shots: list[tuple[str, str, str]]) -> None:
    """Log in as admin and capture each (file name, URL path, selector) once the selector shows."""
    page = await (await browser.new_context(viewport={"width": 1366, "height": 860})).new_page()
    await page.goto(odoo.url + "/web/login")
    await page.fill("input[name=login]", "admin")
    await page.fill("input[name=password]", "admin")
    await page.click("button[type=submit]")
    await page.wait_for_selector(".o_main_navbar", timeout=120_000)
    for name, path, selector in shots:
        await page.goto(odoo.url + path)
        await page.locator(selector).first.wait_for(timeout=120_000)
        await page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
        assert (SCREENSHOTS / name).stat().st_size > 10_000, name
    await page.context.close()


async def in_chromium(coro: Any) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        try:
            await coro(browser)
        finally:
            await browser.close()


def test_conversation_to_qa_document_through_odoo(stack: tuple[Odoo, EngineProcess, str]) -> None:  # noqa: F811
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (see tests/apt-packages.txt)")
    odoo, engine, _secret = stack
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    bot_id = odoo.call(
        "chatbot.chatbot",
        "create",
        {
            "name": "Zorblax help",
            "allowed_domains": "localhost",
            "handoff_enabled": True,
            "handoff_phrases": "talk to a human",
            "handoff_message": "Thanks! Our team will email you within one working day.",
        },
    )
    wizard = odoo.call(
        "chatbot.api.key.wizard", "create", {"chatbot_id": bot_id, "name": "site", "kind": "publishable"}
    )
    key = odoo.call("chatbot.api.key.wizard", "action_generate", [wizard])["context"]["default_plain_key"]
    odoo.call(
        "chatbot.document",
        "create",
        {"chatbot_id": bot_id, "filename": "zorblax.txt", "datas": base64.b64encode(FACT.encode()).decode()},
    )

    def ready(model: str, rec_id: int) -> Any:
        def probe() -> bool:
            state = odoo.read_one(model, rec_id, ["state", "error"])
            assert state["state"] != "failed", state
            return state["state"] == "ready"

        return probe

    doc_ids = odoo.call("chatbot.document", "search", [("chatbot_id", "=", bot_id)])
    wait_for("the document to be ready", ready("chatbot.document", doc_ids[0]), 240, interval=2)
    wait_for(
        "the chatbot to reach the engine",
        lambda: odoo.read_one("chatbot.chatbot", bot_id, ["sync_state"])["sync_state"] == "synced",
        90,
    )

    # 1. A visitor's conversation in the widget.
    host = host_page(engine.url, key)  # allowed_domains "localhost" admits any port
    try:
        asyncio.run(in_chromium(lambda browser: widget_conversation(browser, host)))
    finally:
        host.close()

    # 2. Odoo shows it, with sources and feedback.
    browser_id = open_action(odoo, odoo.call("chatbot.chatbot", "action_view_conversations", [bot_id]))
    (line_id,) = odoo.read_one("chatbot.conversation.browser", browser_id, ["line_ids"])["line_ids"]
    line = odoo.read_one("chatbot.conversation", line_id, ["turns", "thumbs_up", "unanswered_count", "handoff_at"])
    assert (line["turns"], line["thumbs_up"], line["unanswered_count"]) == (2, 1, 1), line
    assert line["handoff_at"], line
    transcript_id = open_action(odoo, odoo.call("chatbot.conversation", "action_open_transcript", [line_id]))
    html = odoo.read_one("chatbot.conversation.transcript", transcript_id, ["transcript_html"])["transcript_html"]
    assert "zorblax.txt" in html and "👍" in html and "Unanswered" in html, html

    # 3. The unanswered question, answered by a Q&A document.
    report_id = open_action(odoo, odoo.call("chatbot.chatbot", "action_view_unanswered", [bot_id]))
    group_ids = odoo.read_one("chatbot.unanswered.report", report_id, ["group_ids"])["group_ids"]
    groups = odoo.call("chatbot.unanswered.group", "read", group_ids, ["question"])
    assert [g["question"] for g in groups] == [UNANSWERABLE], groups
    shots = [
        ("conversations.png", f"/odoo/chatbot.conversation.browser/{browser_id}", ".o_data_row"),
        ("transcript.png", f"/odoo/chatbot.conversation.transcript/{transcript_id}", ".o_chatbot_turn_bot"),
        ("unanswered.png", f"/odoo/chatbot.unanswered.report/{report_id}", ".o_data_row"),
    ]
    asyncio.run(in_chromium(lambda browser: capture(browser, odoo, shots)))
    context = odoo.call("chatbot.unanswered.group", "action_create_qa", [group_ids[0]])["context"]
    qa_id = odoo.call("chatbot.qa.wizard", "create", {"answer": CURATED}, context=context)
    qa_doc = open_action(odoo, odoo.call("chatbot.qa.wizard", "action_create", [qa_id]))
    wait_for("the Q&A document to be ready", ready("chatbot.document", qa_doc), 240, interval=2)
    qa_uuid = odoo.read_one("chatbot.document", qa_doc, ["uuid"])["uuid"]

    def no_longer_unanswered() -> bool:
        report = open_action(odoo, odoo.call("chatbot.chatbot", "action_view_unanswered", [bot_id]))
        return not odoo.read_one("chatbot.unanswered.report", report, ["group_ids"])["group_ids"]

    wait_for("the question to leave the unanswered report", no_longer_unanswered, 60)

    # 4. The same question is now answered, from the curated answer.
    response = httpx.post(
        engine.url + "/v1/chat",
        json={"message": UNANSWERABLE},
        headers={"Authorization": "Bearer " + key, "Origin": host.origin},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert "leash" in answer["answer"], answer
    assert qa_uuid in [s["source"] for s in answer["sources"]], answer

    # 5. The handoff became an activity for the owner, with the transcript attached.
    def handoff() -> list[dict[str, Any]]:
        return odoo.call(
            "chatbot.handoff", "search_read", [("chatbot_id", "=", bot_id)], fields=["activity_id", "attachment_id"]
        )

    (notice,) = wait_for("the handoff notice to reach Odoo", handoff, 60)
    assert notice["activity_id"] and notice["attachment_id"], notice

    # 6. Analytics: the day's questions, sessions and feedback.
    odoo.call("chatbot.usage.daily", "action_refresh_and_open")
    (usage,) = odoo.call(
        "chatbot.usage.daily",
        "search_read",
        [("chatbot_id", "=", bot_id)],
        fields=["questions", "thumbs_up", "unanswered"],
    )
    assert (usage["questions"], usage["thumbs_up"], usage["unanswered"]) == (3, 1, 1), usage

    # 7. Screenshots of the other new screens.
    upload_id = odoo.call("chatbot.document.upload.wizard", "create", {"chatbot_id": bot_id})
    handoff_id = odoo.call("chatbot.handoff", "search", [("chatbot_id", "=", bot_id)])[0]
    usage = "/odoo/action-chatbot_platform.chatbot_usage_daily_action"
    shots = [
        ("qa_document.png", f"/odoo/chatbot.document/{qa_doc}", ".o_form_view .o_field_widget"),
        ("analytics_graph.png", usage + "?view_type=graph", ".o_graph_renderer canvas"),
        ("analytics_pivot.png", usage + "?view_type=pivot", ".o_pivot table"),
        (
            "bulk_upload.png",
            f"/odoo/chatbot.document.upload.wizard/{upload_id}",
            ".o_form_view .o_field_many2many_binary",
        ),
        ("handoff.png", f"/odoo/chatbot.handoff/{handoff_id}", ".o_form_view .o_field_widget"),
        ("chatbot_form.png", f"/odoo/chatbot.chatbot/{bot_id}", ".o_form_view button[name=action_view_conversations]"),
    ]
    asyncio.run(in_chromium(lambda browser: capture(browser, odoo, shots)))
