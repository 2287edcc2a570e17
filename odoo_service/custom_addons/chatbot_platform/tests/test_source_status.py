import json
import os
import time

from odoo.tests import HttpCase, tagged

from ..tools import webhooks
from .common import PDF_BYTES, TEST_SECRET

URL = "/chatbot_platform/hooks/source-status"


@tagged("post_install", "-at_install")
class TestSourceStatusCallback(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["ir.config_parameter"].sudo().set_param("chatbot_platform.webhook_secret", TEST_SECRET)
        cls.secret = os.environ.get("WEBHOOK_SECRET") or TEST_SECRET
        cls.bot = cls.env["chatbot.chatbot"].create({"name": "Callback bot"})
        cls.doc = cls.env["chatbot.document"].create(
            {"chatbot_id": cls.bot.id, "filename": "m.pdf", "datas": __import__("base64").b64encode(PDF_BYTES)}
        )

    def post(self, payload, secret=None, timestamp=None, raw=None):
        body = raw if raw is not None else json.dumps(payload).encode()
        headers = webhooks.signed_headers(secret or self.secret, webhooks.new_message_id(), body, timestamp=timestamp)
        headers["Content-Type"] = "application/json"
        return self.url_open(URL, data=body, headers=headers)

    def status(self, **overrides):
        payload = {
            "chatbot": self.bot.uuid,
            "source": self.doc.uuid,
            "version": self.doc.version,
            "state": "ready",
            "chunks": 7,
            "error": None,
            "indexed_at": "2026-01-02T03:04:05Z",
        }
        payload.update(overrides)
        return payload

    def test_signed_status_updates_the_source(self):
        response = self.post(self.status())
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"ok": True, "applied": True})
        self.doc.invalidate_recordset()
        self.assertEqual((self.doc.state, self.doc.chunk_count), ("ready", 7))
        self.assertEqual(str(self.doc.indexed_at), "2026-01-02 03:04:05")
        response = self.post(self.status(state="failed", chunks=0, error="PDF is encrypted"))
        self.assertEqual(response.status_code, 200)
        self.doc.invalidate_recordset()
        self.assertEqual((self.doc.state, self.doc.error), ("failed", "PDF is encrypted"))

    def test_stale_versions_are_acknowledged_and_ignored(self):
        response = self.post(self.status(version=self.doc.version - 1, state="failed", error="old"))
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"ok": True, "applied": False})
        self.doc.invalidate_recordset()
        self.assertEqual((self.doc.state, self.doc.error), ("queued", False))

    def test_bad_signatures_and_old_timestamps_are_rejected(self):
        other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
        self.assertEqual(self.post(self.status(), secret=other).status_code, 401)
        self.assertEqual(self.post(self.status(), timestamp=int(time.time()) - 301).status_code, 401)
        # a future timestamp comes closer while the request travels: 30 s of margin, not 1 s (flaky under load)
        self.assertEqual(self.post(self.status(), timestamp=int(time.time()) + 330).status_code, 401)
        unsigned = self.url_open(
            URL, data=json.dumps(self.status()).encode(), headers={"Content-Type": "application/json"}
        )
        self.assertEqual(unsigned.status_code, 401)
        self.doc.invalidate_recordset()
        self.assertEqual(self.doc.state, "queued")

    def test_unknown_sources_and_bad_bodies(self):
        self.assertEqual(self.post(self.status(source="3f1b6a52-0000-4000-8000-000000000000")).status_code, 404)
        self.assertEqual(self.post(self.status(chatbot="3f1b6a52-0000-4000-8000-000000000000")).status_code, 404)
        self.assertEqual(self.post(None, raw=b"not json").status_code, 400)
        self.assertEqual(self.post(self.status(state="exploded")).status_code, 400)
        self.assertEqual(self.post(None, raw=b" " * (70 * 1024)).status_code, 413)

    def test_a_links_status_shows_the_pages_indexed_and_skipped(self):
        link = self.env["chatbot.link"].create({"chatbot_id": self.bot.id, "url": "https://docs.example.com/"})
        payload = self.status(source=link.uuid, version=link.version, pages={"indexed": 12, "skipped": 3})
        self.assertEqual(self.post(payload).json(), {"ok": True, "applied": True})
        link.invalidate_recordset()
        self.assertEqual((link.state, link.pages_indexed, link.pages_skipped), ("ready", 12, 3))
        self.assertEqual(
            self.post(self.status(source=link.uuid, version=link.version, pages={"x": 1})).status_code, 400
        )
        # a document's status carries no pages and needs none
        self.assertEqual(self.post(self.status()).status_code, 200)

    def test_processing_progress_is_shown_and_cleared_when_ready(self):
        payload = self.status(state="processing", chunks=0, indexed_at=None, progress={"done": 0, "total": 40})
        self.assertEqual(self.post(payload).json(), {"ok": True, "applied": True})
        self.doc.invalidate_recordset()
        self.assertEqual((self.doc.state, self.doc.progress_done, self.doc.progress_total), ("processing", 0, 40))
        self.assertTrue(self.doc.processing_started_at)
        self.assertEqual(self.doc.progress_display, "0 / 40 chunks embedded")
        started = self.doc.processing_started_at
        payload["progress"] = {"done": 10, "total": 40}
        self.assertEqual(self.post(payload).json(), {"ok": True, "applied": True})
        self.doc.invalidate_recordset()
        self.assertEqual((self.doc.progress_done, self.doc.progress_total), (10, 40))
        self.assertEqual(self.doc.processing_started_at, started)  # the clock runs from the first one
        self.assertRegex(self.doc.progress_display, r"^10 / 40 chunks embedded, about \d+ (s|min) left$")
        self.assertEqual(self.post(self.status()).json(), {"ok": True, "applied": True})
        self.doc.invalidate_recordset()
        self.assertEqual(
            (self.doc.state, self.doc.progress_done, self.doc.progress_total, self.doc.processing_started_at),
            ("ready", 0, 0, False),
        )
        self.assertFalse(self.doc.progress_display)

    def test_an_older_versions_progress_is_ignored(self):
        payload = self.status(state="processing", chunks=0, progress={"done": 5, "total": 9})
        self.assertEqual(self.post(payload | {"version": self.doc.version - 1}).json(), {"ok": True, "applied": False})
        self.doc.invalidate_recordset()
        self.assertEqual((self.doc.state, self.doc.progress_done, self.doc.progress_total), ("queued", 0, 0))

    def test_a_status_overtaken_by_a_newer_one_is_dropped(self):
        # two engine processes deliver concurrently: `processing` (seq 41) may arrive after `ready` (seq 42)
        ready = self.status(state="ready", chunks=9) | {"seq": 42}
        late = self.status(state="processing", chunks=0, progress={"done": 9, "total": 9}) | {"seq": 41}
        self.assertEqual(self.post(ready).json(), {"ok": True, "applied": True})
        self.assertEqual(self.post(late).json(), {"ok": True, "applied": False})
        self.assertEqual(self.post(ready).json(), {"ok": True, "applied": False}, "a replay changes nothing")
        self.doc.invalidate_recordset()
        self.assertEqual((self.doc.state, self.doc.chunk_count, self.doc.progress_total), ("ready", 9, 0))
        # statuses without seq (an older engine) are still applied by version alone
        self.assertTrue(self.post(self.status(state="failed", error="boom")).json()["applied"])

    def test_a_malformed_progress_is_refused(self):
        for progress in ({"done": 1}, {"done": "x", "total": 2}, [1, 2]):
            payload = self.status(state="processing", progress=progress)
            self.assertEqual(self.post(payload).status_code, 400, progress)
        self.doc.invalidate_recordset()
        self.assertEqual((self.doc.state, self.doc.progress_total), ("queued", 0))
