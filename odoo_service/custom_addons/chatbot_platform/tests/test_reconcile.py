import json

from odoo.tests import tagged

from .common import ChatbotCase


@tagged("post_install", "-at_install")
class TestReconcile(ChatbotCase):
    def setUp(self):
        super().setUp()
        self.bot = self.create_chatbot(name="Reconciled")
        self.doc_ok = self.create_document(self.bot, filename="ok.pdf")
        self.doc_old = self.create_document(self.bot, filename="old.pdf")
        self.link_missing = (
            self.env["chatbot.link"]
            .with_user(self.user_a)
            .create({"chatbot_id": self.bot.id, "url": "https://example.com"})
        )
        self.run_postcommit()
        self.engine.clear()
        self.inventory_path = "/internal/v1/chatbots/%s/sources" % self.bot.uuid
        self.tombstone = "5d0e4c9a-1111-4a2b-8c3d-000000000009"

    def test_drift_is_repaired(self):
        orphan = "0b7c0d55-6a8e-4f31-9a57-7f6f3c1d2e3a"
        self.engine.json_routes[("GET", self.inventory_path)] = (
            200,
            [
                {
                    "source": self.doc_ok.uuid,
                    "version": self.doc_ok.version,
                    "state": "ready",
                    "chunks": 12,
                    "error": None,
                },
                {
                    "source": self.doc_old.uuid,
                    "version": self.doc_old.version - 1,
                    "state": "ready",
                    "chunks": 3,
                    "error": None,
                },
                {"source": orphan, "version": 5, "state": "ready", "chunks": 1, "error": None},
                {"source": self.tombstone, "version": 9, "state": "deleted", "chunks": 0, "error": None},
            ],
        )
        old_version = self.doc_old.version
        ok_version = self.doc_ok.version
        self.bot.with_user(self.manager).action_reconcile()
        self.assertTrue(self.engine.requests[0]["signed"])
        self.assertEqual(self.engine.requests[0]["method"], "GET")
        # missed status callback: Odoo catches up without re-sending
        self.assertEqual((self.doc_ok.state, self.doc_ok.chunk_count, self.doc_ok.version), ("ready", 12, ok_version))
        self.assertFalse(self.pending_rows(self.doc_ok))
        self.assertEqual((self.bot.ready_source_count, self.bot.document_count, self.bot.link_count), (1, 2, 1))
        # engine behind or missing: re-sent with a new version
        self.assertGreater(self.doc_old.version, old_version)
        self.assertEqual(self.pending_rows(self.doc_old).method, "PUT")
        self.assertEqual(self.pending_rows(self.link_missing).method, "PUT")
        # engine has a source Odoo does not know: deleted
        self.assertFalse(self.env["chatbot.outbox"].search([("resource_uuid", "=", self.tombstone)]), "already deleted")
        orphan_row = self.env["chatbot.outbox"].search([("resource_uuid", "=", orphan)])
        self.assertEqual((orphan_row.method, orphan_row.path), ("DELETE", "%s/%s" % (self.inventory_path, orphan)))
        self.run_postcommit()
        sent = {(r["method"], r["path"]) for r in self.engine.requests}
        self.assertIn(("DELETE", "%s/%s" % (self.inventory_path, orphan)), sent)
        self.assertIn(("PUT", "%s/%s" % (self.inventory_path, self.link_missing.uuid)), sent)

    def test_unknown_chatbot_is_resent_whole(self):
        self.engine.json_routes[("GET", self.inventory_path)] = (
            404,
            {"error": "not_found", "detail": "unknown chatbot"},
        )
        self._assert_resent_whole()

    def test_empty_inventory_is_resent_whole(self):
        self.engine.json_routes[("GET", self.inventory_path)] = (200, [])
        self._assert_resent_whole()

    def _assert_resent_whole(self):
        self.bot.with_user(self.manager).action_reconcile()
        for record in (self.bot, self.doc_ok, self.doc_old, self.link_missing):
            self.assertEqual(self.pending_rows(record).method, "PUT")
        self.run_postcommit()
        self.assertEqual(self.engine.requests[1]["path"], "/internal/v1/chatbots/%s" % self.bot.uuid)
        self.assertEqual(len(self.engine.requests), 5)
        self.assertEqual(json.loads(self.rows(self.bot)[-1].payload)["name"], "Reconciled")
