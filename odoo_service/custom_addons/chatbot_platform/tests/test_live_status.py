import json

from odoo.tests import tagged

from .common import ChatbotCase


@tagged("post_install", "-at_install")
class TestLiveStatus(ChatbotCase):
    """Status changes are pushed on the bus to the users of the record's company only."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bot_a = cls.create_chatbot_for(cls.user_a, "Bot A")
        cls.bot_b = cls.create_chatbot_for(cls.user_b, "Bot B")

    @classmethod
    def create_chatbot_for(cls, user, name):
        return cls.env["chatbot.chatbot"].with_user(user).create({"name": name})

    def sent(self):
        """(channel, type, payload) of the notifications queued in this transaction."""
        self.env.cr.precommit.run()  # the bus writes its rows at pre-commit
        rows = self.env["bus.bus"].sudo().search([], order="id")
        out = []
        for row in rows:
            message = json.loads(row.message)
            out.append((tuple(json.loads(row.channel)), message["type"], message["payload"]))
        return [n for n in out if n[1] == "chatbot_platform/status"]

    def channel(self, company):
        return (self.env.cr.dbname, "res.company", company.id, "chatbot_platform")

    def test_users_listen_to_their_own_companies(self):
        self.assertEqual(self.user_a._chatbot_status_channels(), [(self.company_a, "chatbot_platform")])
        self.assertEqual(self.user_b._chatbot_status_channels(), [(self.company_b, "chatbot_platform")])
        outsider = self.env["res.users"].create(
            {
                "name": "Outsider",
                "login": "outsider",
                "company_id": self.company_a.id,
                "company_ids": [(6, 0, self.company_a.ids)],
            }
        )
        self.assertEqual(outsider._chatbot_status_channels(), [])

    def test_an_engine_status_is_pushed_to_the_company_of_the_source(self):
        doc = self.create_document(self.bot_a)
        self.sent()  # what creating it queued
        self.env["bus.bus"].sudo().search([]).unlink()
        doc.sudo()._apply_engine_status(doc.version, "processing", chunks=12)
        notifications = self.sent()
        self.assertEqual(len(notifications), 1)
        channel, _type, payload = notifications[0]
        self.assertEqual(channel, self.channel(self.company_a))
        self.assertEqual(
            (payload["model"], payload["id"], payload["state"], payload["chunk_count"]),
            ("chatbot.document", doc.id, "processing", 12),
        )
        self.assertNotIn(self.channel(self.company_b), [n[0] for n in notifications])
        # a stale status changes nothing and pushes nothing
        self.env["bus.bus"].sudo().search([]).unlink()
        self.assertFalse(doc.sudo()._apply_engine_status(doc.version - 1, "ready", chunks=1))
        self.assertEqual(self.sent(), [])
        doc.sudo()._apply_engine_status(doc.version, "failed", error="the PDF is password-protected")
        ((_channel, _type, payload),) = self.sent()
        self.assertEqual((payload["state"], payload["error"]), ("failed", "the PDF is password-protected"))

    def test_a_chatbot_delivery_outcome_is_pushed(self):
        self.env["bus.bus"].sudo().search([]).unlink()
        self.bot_b.sudo()._sync_mark("failed", "HTTP 503 from the engine")
        ((channel, _type, payload),) = self.sent()
        self.assertEqual(channel, self.channel(self.company_b))
        self.assertEqual(
            (payload["model"], payload["id"], payload["sync_state"], payload["sync_error"]),
            ("chatbot.chatbot", self.bot_b.id, "failed", "HTTP 503 from the engine"),
        )

    def test_processing_progress_is_pushed_and_cleared(self):
        link = (
            self.env["chatbot.link"]
            .with_user(self.user_a)
            .create({"chatbot_id": self.bot_a.id, "url": "https://docs.example.com/"})
        )
        self.sent()
        self.env["bus.bus"].sudo().search([]).unlink()
        link.sudo()._apply_engine_status(link.version, "processing", chunks=0, progress=(16, 64))
        ((channel, _type, payload),) = self.sent()
        self.assertEqual(channel, self.channel(self.company_a))
        self.assertEqual(
            (payload["model"], payload["id"], payload["state"], payload["progress_done"], payload["progress_total"]),
            ("chatbot.link", link.id, "processing", 16, 64),
        )
        self.assertTrue(payload["progress_display"].startswith("16 / 64 chunks embedded"))
        self.env["bus.bus"].sudo().search([]).unlink()
        link.sudo()._apply_engine_status(link.version, "ready", chunks=64)
        ((_channel, _type, payload),) = self.sent()
        self.assertEqual(
            (payload["state"], payload["progress_done"], payload["progress_total"], payload["progress_display"]),
            ("ready", 0, 0, False),
        )
