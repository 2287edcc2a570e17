import base64
import hashlib
import os
import socket
import threading
from datetime import timedelta

from odoo import fields
from odoo.tests import tagged

from .common import PDF_BYTES, ChatbotCase, closed_port_url


class HangingListener:
    """Accepts TCP connections on 127.0.0.1 and never answers: an engine that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.connections = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _addr = self.sock.accept()
            except OSError:  # closed
                return
            self.connections.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.connections:
            conn.close()


@tagged("post_install", "-at_install")
class TestDelivery(ChatbotCase):
    """The sender: after commit and by cron, signed, with retries and visible failures."""

    def set_engine(self, url):
        self.env["ir.config_parameter"].sudo().set_param("chatbot_platform.engine_url", url)

    def test_after_commit_delivery_is_signed_and_ordered(self):
        bot = self.create_chatbot()
        doc = self.create_document(bot)
        self.assertFalse(self.engine.requests, "nothing is sent inside the transaction")
        self.run_postcommit()
        self.assertEqual(
            [(r["method"], r["path"]) for r in self.engine.requests],
            [
                ("PUT", "/internal/v1/chatbots/%s" % bot.uuid),
                ("PUT", "/internal/v1/chatbots/%s/sources/%s" % (bot.uuid, doc.uuid)),
            ],
        )
        self.assertTrue(all(r["signed"] for r in self.engine.requests))
        bot_request, doc_request = self.engine.requests
        self.assertEqual(bot_request["headers"]["webhook-id"], self.rows(bot).webhook_id)
        sent = doc_request["json"]
        self.assertEqual(base64.b64decode(sent["document"]["content_base64"]), PDF_BYTES)
        self.assertEqual(sent["document"]["sha256"], hashlib.sha256(PDF_BYTES).hexdigest())
        self.assertEqual(sent["version"], doc.version)
        self.assertEqual(self.rows(bot).state, "done")
        self.assertEqual(self.rows(doc).state, "done")
        self.assertEqual((bot.sync_state, doc.sync_state), ("synced", "synced"))

    def test_a_save_never_contacts_the_engine(self):
        hanging = HangingListener()
        self.addCleanup(hanging.close)
        self.set_engine(hanging.url)
        bot = self.create_chatbot(name="Saved while the engine hangs")
        doc = self.create_document(bot)
        doc.with_user(self.user_a).write({"name": "Renamed manual"})
        other = self.create_document(bot, filename="other.pdf")
        other_uuid = other.uuid
        other.with_user(self.user_a).unlink()
        self.commit_hooks()  # everything COMMIT runs in the user's request
        self.assertEqual(hanging.connections, [], "the save opened a connection to the engine")
        self.assertEqual(len(self.due_delivery_triggers()), 1, "one cron trigger per transaction")
        self.assertEqual(self.rows(bot).state, "pending")
        self.assertEqual(self.rows(doc).state, "pending")

        # The cron thread the trigger wakes delivers everything queued by that save.
        self.set_engine(self.engine.url)
        self.run_postcommit()
        self.assertEqual(
            [(r["method"], r["path"].rsplit("/", 1)[-1]) for r in self.engine.requests],
            [("PUT", bot.uuid), ("PUT", doc.uuid), ("DELETE", other_uuid)],
        )
        self.assertEqual(self.engine.requests[1]["json"]["name"], "Renamed manual")
        self.assertEqual((bot.sync_state, doc.sync_state), ("synced", "synced"))
        self.assertFalse(self.due_delivery_triggers())

    def test_retry_action_triggers_the_cron(self):
        self.set_engine(closed_port_url())
        bot = self.create_chatbot()
        self.run_postcommit()
        row = self.rows(bot)
        self.assertEqual(row.state, "retrying")
        self.set_engine(self.engine.url)
        row.action_retry()
        self.commit_hooks()
        self.assertEqual(len(self.due_delivery_triggers()), 1, "the retry schedules a delivery now")
        self.assertFalse(self.engine.requests)
        self.run_postcommit()
        self.assertEqual(row.state, "done")

    def test_engine_down_save_succeeds_and_cron_delivers_later(self):
        self.set_engine(closed_port_url())
        bot = self.create_chatbot(name="Saved while down")
        self.assertTrue(bot.exists())
        before = fields.Datetime.now()
        self.run_postcommit()
        row = self.rows(bot)
        self.assertEqual((row.state, row.attempts, row.last_status), ("retrying", 1, 0))
        self.assertIn("unreachable", row.last_error)
        self.assertEqual(bot.sync_state, "retrying")
        self.assertIn("unreachable", bot.sync_error)
        wait = (row.next_attempt_at - before).total_seconds()
        self.assertTrue(14 <= wait <= 31, "first retry after 15-30 s, got %s" % wait)
        failed_webhook_id = row.webhook_id

        self.run_cron()
        self.assertEqual(row.attempts, 1, "not due yet: the cron leaves it alone")

        self.set_engine(self.engine.url)
        self.make_due()
        self.run_cron()
        self.assertEqual(row.state, "done")
        self.assertEqual(len(self.engine.requests), 1)
        self.assertEqual(self.engine.requests[0]["json"]["name"], "Saved while down")
        self.assertEqual(self.engine.requests[0]["headers"]["webhook-id"], failed_webhook_id, "same id on retry")
        self.assertEqual((bot.sync_state, bot.sync_error), ("synced", False))

    def test_server_errors_back_off_exponentially(self):
        bot = self.create_chatbot()
        self.engine.responses.extend([(503, {"error": "unavailable", "detail": "warming up"})] * 3)
        self.run_postcommit()
        row = self.rows(bot)
        delays = []
        for attempt in (1, 2, 3):
            self.assertEqual((row.state, row.attempts, row.last_status), ("retrying", attempt, 503))
            self.assertIn("warming up", row.last_error)
            delays.append((row.next_attempt_at - row.last_attempt_at).total_seconds())
            self.make_due()
            self.run_cron()
        self.assertEqual(row.state, "done")
        for delay, ceiling in zip(delays, (30, 60, 120), strict=True):
            self.assertTrue(
                ceiling / 2 - 1 <= delay <= ceiling, "delay %s outside [%s, %s]" % (delay, ceiling / 2, ceiling)
            )

    def test_permanent_failure_is_shown_and_retry_resends(self):
        bot = self.create_chatbot()
        self.engine.responses.append((422, {"error": "invalid_payload", "detail": "language is not supported"}))
        self.run_postcommit()
        row = self.rows(bot)
        self.assertEqual((row.state, row.last_status), ("failed", 422))
        self.assertEqual(bot.sync_state, "failed")
        self.assertIn("language is not supported", bot.sync_error)
        self.make_due()
        self.run_cron()
        self.assertEqual(len(self.engine.requests), 1, "permanent failures are not retried automatically")

        version = bot.version
        bot.action_sync_retry()
        self.assertEqual(row.state, "cancelled", "the failed row is superseded by the retry")
        self.assertGreater(bot.version, version)
        self.run_postcommit()
        self.assertEqual(bot.sync_state, "synced")
        self.assertEqual(self.engine.requests[-1]["json"]["version"], bot.version)

    def test_a_source_the_engine_refuses_with_409_shows_failed_with_the_reason(self):
        # 409 is the engine's "this source id belongs to another chatbot" (contract/status_codes.json):
        # a refusal, never "synced" — the source would never be indexed.
        bot = self.create_chatbot()
        doc = self.create_document(bot)
        self.engine.responses.extend(
            [
                (200, {"applied": True}),
                (409, {"error": "conflict", "detail": "this source id belongs to another chatbot"}),
            ]
        )
        self.run_postcommit()
        row = self.rows(doc)
        self.assertEqual((row.state, row.last_status), ("failed", 409))
        self.assertEqual((doc.sync_state, doc.state), ("failed", "failed"))
        self.assertEqual(doc.sync_error, "HTTP 409: conflict - this source id belongs to another chatbot")
        self.make_due()
        self.run_cron()
        self.assertEqual(len(self.engine.requests), 2, "a refusal is not retried automatically")

    def test_a_stale_version_is_dropped_as_superseded(self):
        bot = self.create_chatbot()
        self.run_postcommit()
        first = self.rows(bot)
        bot.write({"name": "Renamed twice"})
        self.engine.responses.append(
            (200, {"applied": False, "reason": "stale_version", "detail": "stale version 3 <= 9"})
        )
        self.run_postcommit()
        row = self.rows(bot) - first
        self.assertEqual(row.state, "cancelled", "superseded: the engine holds something newer")
        self.assertIn("stale version 3 <= 9", row.last_error)
        # it was the chatbot's current version and nothing newer follows: the form says so
        self.assertEqual(bot.sync_state, "failed")
        self.assertIn("stale version", bot.sync_error)
        self.make_due()
        self.run_cron()
        self.assertEqual(len(self.engine.requests), 2, "a superseded row is never retried")

    def test_sources_wait_for_their_chatbot(self):
        bot = self.create_chatbot()
        doc = self.create_document(bot)
        self.engine.responses.append((500, {"error": "boom"}))
        self.run_postcommit()
        self.assertEqual(len(self.engine.requests), 1, "the source is held back while its chatbot is undelivered")
        self.assertEqual(self.rows(doc).state, "pending")
        self.make_due()
        self.run_cron()
        self.assertEqual([r["path"].count("/sources/") for r in self.engine.requests], [0, 0, 1])
        self.assertEqual(doc.sync_state, "synced")

    def test_delete_reaches_the_engine(self):
        bot = self.create_chatbot()
        doc = self.create_document(bot)
        self.run_postcommit()
        self.engine.clear()
        doc_uuid = doc.uuid
        doc.unlink()
        self.run_postcommit()
        self.assertEqual(len(self.engine.requests), 1)
        request = self.engine.requests[0]
        self.assertEqual(
            (request["method"], request["path"]),
            ("DELETE", "/internal/v1/chatbots/%s/sources/%s" % (bot.uuid, doc_uuid)),
        )
        self.assertGreater(request["json"]["version"], 0)

    def test_missing_secret_keeps_rows_queued_with_a_reason(self):
        if os.environ.get("WEBHOOK_SECRET"):
            self.skipTest("WEBHOOK_SECRET is set in the environment; the parameter fallback is unused")
        bot = self.create_chatbot()
        self.env["ir.config_parameter"].sudo().set_param("chatbot_platform.webhook_secret", "not-a-secret")
        self.run_postcommit()
        row = self.rows(bot)
        self.assertEqual(row.state, "retrying")
        self.assertIn("WEBHOOK_SECRET", row.last_error)
        self.assertFalse(self.engine.requests)

    def test_rate_limited_delivery_is_retried(self):
        bot = self.create_chatbot()
        self.engine.responses.append((429, {"error": "rate_limited", "detail": "slow down"}))
        self.run_postcommit()
        row = self.rows(bot)
        self.assertEqual((row.state, row.last_status), ("retrying", 429))
        self.assertLessEqual(row.next_attempt_at - row.last_attempt_at, timedelta(seconds=30))
