"""Live status in the real web client: an open list or form of documents and links follows the
engine's status callbacks by itself (the bus push of models/chatbot_sync_mixin.py, received by
static/src/js/live_status.js), and a user of another company receives none of it.

The tours (static/tests/tours/live_status_tour.js) run in headless Chromium against this Odoo, with
the websocket enabled (Odoo's own ``WebsocketCase``). A tour step logs ``chatbot-live:<signal>``
when the view shows the expected state; the test hears it on the browser's console log and, from
another thread, posts the real signed engine callback over HTTP, then wakes the websockets of the
source's company (a test transaction is never committed, so PostgreSQL's NOTIFY that does it in
production never fires: Odoo's helper ``trigger_notification_dispatching`` stands in for it).
"""

import base64
import itertools
import json
import logging
import queue
import threading

import requests
from odoo.addons.bus.tests.common import WebsocketCase
from odoo.tests import TEST_CURSOR_COOKIE_NAME, new_test_user, tagged

from ..models.chatbot_sync_mixin import STATUS_CHANNEL
from ..tools import webhooks
from .common import PDF_BYTES, TEST_SECRET, TOUR_TIMEOUT, closed_port_url, require_browser

CALLBACK = "/chatbot_platform/hooks/source-status"
SIGNAL = "chatbot-live:"


class BrowserSignals(logging.Handler):
    """Collects the tour's ``chatbot-live:`` console messages (Odoo logs the browser's console
    under the running test's logger)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = queue.Queue()

    def emit(self, record):
        message = record.getMessage()
        if message.startswith(SIGNAL):
            self.messages.put(message[len(SIGNAL) :])


@tagged("post_install", "-at_install")
class TestLiveStatusInTheBrowser(WebsocketCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        icp = cls.env["ir.config_parameter"].sudo()
        icp.set_param("chatbot_platform.webhook_secret", TEST_SECRET)
        icp.set_param("chatbot_platform.engine_url", closed_port_url())  # nothing is delivered here
        cls.secret = cls.env["chatbot.outbox"]._webhook_secret()
        cls.company_a = cls.env["res.company"].create({"name": "Live tenant A"})
        cls.company_b = cls.env["res.company"].create({"name": "Live tenant B"})
        cls.admin_a = cls.tenant_admin("live_admin_a", cls.company_a)
        cls.admin_b = cls.tenant_admin("live_admin_b", cls.company_b)
        cls.bot_a = cls.env["chatbot.chatbot"].with_user(cls.admin_a).create({"name": "Live bot A"})
        cls.bot_b = cls.env["chatbot.chatbot"].with_user(cls.admin_b).create({"name": "Live bot B"})

    @classmethod
    def tenant_admin(cls, login, company):
        return new_test_user(
            cls.env,
            login=login,
            groups="base.group_user,chatbot_platform.chatbot_platform_group_admin",
            company_id=company.id,
            company_ids=[(6, 0, company.ids)],
        )

    def setUp(self):
        super().setUp()
        require_browser(self)
        self.seq = itertools.count(1)

    # -- fixtures ---------------------------------------------------------------------------------
    def document(self, bot, name, user, progress):
        doc = (
            self.env["chatbot.document"]
            .with_user(user)
            .create({"chatbot_id": bot.id, "name": name, "filename": "h.pdf", "datas": base64.b64encode(PDF_BYTES)})
        )
        self.assertTrue(doc.sudo()._apply_engine_status(doc.version, "processing", chunks=0, progress=progress))
        return doc.sudo()

    def link(self, bot, name, user, progress):
        link = (
            self.env["chatbot.link"]
            .with_user(user)
            .create({"chatbot_id": bot.id, "name": name, "url": "https://docs.example.com/"})
        )
        self.assertTrue(link.sudo()._apply_engine_status(link.version, "processing", chunks=0, progress=progress))
        return link.sudo()

    # -- the engine's side --------------------------------------------------------------------------
    def engine_status(self, source, state, **fields):
        """POST the signed status callback, as the engine sends it, then wake the websockets
        subscribed to the source's company channel (runs in the signal thread)."""
        payload = {
            "chatbot": source["chatbot"],
            "source": source["uuid"],
            "version": source["version"],
            "state": state,
            "chunks": 0,
            "error": None,
            "seq": next(self.seq),
            **fields,
        }
        body = json.dumps(payload).encode()
        headers = webhooks.signed_headers(self.secret, webhooks.new_message_id(), body)
        headers["Content-Type"] = "application/json"
        response = requests.post(
            self.base_url() + CALLBACK,
            data=body,
            headers=headers,
            cookies={TEST_CURSOR_COOKIE_NAME: self.http_request_key},
            timeout=60,
        )
        self.assertEqual((response.status_code, response.json()), (200, {"ok": True, "applied": True}))
        self.trigger_notification_dispatching([(source["company"], STATUS_CHANNEL)])

    def snapshot(self, source):
        """What the signal thread needs, read here (it must not use this test's environment)."""
        return {
            "chatbot": source.chatbot_id.uuid,
            "uuid": source.uuid,
            "version": source.version,
            "company": source.company_id,
        }

    def run_tour(self, url, tour, login, on_signal):
        """Run ``tour`` as ``login``; ``on_signal[name]()`` runs, in another thread, when the tour
        logs ``chatbot-live:name``. Returns the messages heard, in order."""
        signals = BrowserSignals()
        test_logger = logging.getLogger(type(self).__module__)  # the browser logs under a child
        previous_level = test_logger.level
        test_logger.setLevel(logging.INFO)
        test_logger.addHandler(signals)
        heard, failures, done = [], [], threading.Event()

        def serve():
            while True:  # until the tour is over and every signal it logged is handled
                try:
                    name = signals.messages.get(timeout=0.5)
                except queue.Empty:
                    if done.is_set():
                        return
                    continue
                heard.append(name)
                action = on_signal.get(name)
                if action:
                    try:
                        action()
                    except Exception as exc:  # noqa: BLE001 - reported by the test below
                        failures.append("%s: %r" % (name, exc))

        thread = threading.Thread(target=serve, name="chatbot-live-signals", daemon=True)
        thread.start()
        try:
            self.start_tour(url, tour, login=login, timeout=TOUR_TIMEOUT)
        finally:
            done.set()
            thread.join(30)
            test_logger.removeHandler(signals)
            test_logger.setLevel(previous_level)
        self.assertFalse(thread.is_alive(), "a status callback of the test did not return")
        self.assertEqual(failures, [])
        return heard

    # -- tests --------------------------------------------------------------------------------------
    def test_open_documents_list_follows_progress_then_ready(self):
        doc = self.document(self.bot_a, "Live handbook", self.admin_a, progress=(3, 12))
        source = self.snapshot(doc)
        heard = self.run_tour(
            "/odoo/action-chatbot_platform.chatbot_document_action",
            "chatbot_platform_live_list",
            "live_admin_a",
            {
                "list-open": lambda: self.engine_status(source, "processing", progress={"done": 9, "total": 12}),
                "list-progressed": lambda: self.engine_status(
                    source, "ready", chunks=12, indexed_at="2026-01-02T03:04:05Z"
                ),
            },
        )
        self.assertEqual(heard, ["list-open", "list-progressed", "list-done"])
        doc.invalidate_recordset()
        self.assertEqual((doc.state, doc.chunk_count, doc.progress_total), ("ready", 12, 0))

    def test_open_links_list_follows_progress_then_ready(self):
        link = self.link(self.bot_a, "Live handbook", self.admin_a, progress=(3, 12))
        source = self.snapshot(link)
        heard = self.run_tour(
            "/odoo/action-chatbot_platform.chatbot_link_action",
            "chatbot_platform_live_list",
            "live_admin_a",
            {
                "list-open": lambda: self.engine_status(source, "processing", progress={"done": 9, "total": 12}),
                "list-progressed": lambda: self.engine_status(
                    source, "ready", chunks=12, pages={"indexed": 7, "skipped": 2}
                ),
            },
        )
        self.assertEqual(heard, ["list-open", "list-progressed", "list-done"])
        link.invalidate_recordset()
        self.assertEqual((link.state, link.chunk_count, link.pages_indexed), ("ready", 12, 7))

    def test_open_document_form_follows_progress_then_ready(self):
        doc = self.document(self.bot_a, "Live form handbook", self.admin_a, progress=(5, 20))
        source = self.snapshot(doc)
        heard = self.run_tour(
            "/odoo/action-chatbot_platform.chatbot_document_action/%d" % doc.id,
            "chatbot_platform_live_form",
            "live_admin_a",
            {
                "form-open": lambda: self.engine_status(source, "processing", progress={"done": 15, "total": 20}),
                "form-progressed": lambda: self.engine_status(source, "ready", chunks=20),
            },
        )
        self.assertEqual(heard, ["form-open", "form-progressed", "form-done"])

    def test_open_link_form_follows_progress_then_ready(self):
        link = self.link(self.bot_a, "Live docs site", self.admin_a, progress=(5, 20))
        source = self.snapshot(link)
        heard = self.run_tour(
            "/odoo/action-chatbot_platform.chatbot_link_action/%d" % link.id,
            "chatbot_platform_live_form",
            "live_admin_a",
            {
                "form-open": lambda: self.engine_status(source, "processing", progress={"done": 15, "total": 20}),
                "form-progressed": lambda: self.engine_status(
                    source, "ready", chunks=20, pages={"indexed": 4, "skipped": 1}
                ),
            },
        )
        self.assertEqual(heard, ["form-open", "form-progressed", "form-done"])
        link.invalidate_recordset()
        self.assertEqual((link.state, link.pages_indexed, link.pages_skipped), ("ready", 4, 1))

    def test_another_company_receives_none_of_it(self):
        doc_a = self.document(self.bot_a, "Live handbook", self.admin_a, progress=(3, 12))
        doc_b = self.document(self.bot_b, "Company B manual", self.admin_b, progress=(1, 4))
        source_a, source_b = self.snapshot(doc_a), self.snapshot(doc_b)

        def a_then_b():
            # A's status first, waking A's channel and B's: B's websocket must fetch nothing of A
            self.engine_status(source_a, "ready", chunks=12)
            self.trigger_notification_dispatching([(self.company_b, STATUS_CHANNEL)])
            self.engine_status(source_b, "ready", chunks=4)

        heard = self.run_tour(
            "/odoo/action-chatbot_platform.chatbot_document_action",
            "chatbot_platform_live_other_company",
            "live_admin_b",
            {"other-open": a_then_b},
        )
        self.assertEqual(heard[0], "other-open")
        self.assertEqual(len(heard), 2, heard)
        self.assertTrue(heard[1].startswith("received "), heard)
        received = [tuple(n) for n in json.loads(heard[1][len("received ") :])]
        self.assertIn(("chatbot.document", doc_b.id, "ready"), received)
        self.assertNotIn(doc_a.id, [n[1] for n in received if n[0] == "chatbot.document"])
        # and A's notifications did go out, on A's channel only
        channels_of_a = set()
        for row in self.env["bus.bus"].sudo().search([]):
            message = json.loads(row.message)
            if message["type"] == "chatbot_platform/status" and message["payload"]["id"] == doc_a.id:
                channels_of_a.add(tuple(json.loads(row.channel)))
        self.assertEqual(channels_of_a, {(self.env.cr.dbname, "res.company", self.company_a.id, STATUS_CHANNEL)})
