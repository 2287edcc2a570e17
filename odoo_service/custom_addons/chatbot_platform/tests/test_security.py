from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import ChatbotCase


@tagged("post_install", "-at_install")
class TestCompanyIsolation(ChatbotCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bot_a = cls.env["chatbot.chatbot"].with_user(cls.user_a).create({"name": "Bot A"})
        cls.bot_b = cls.env["chatbot.chatbot"].with_user(cls.user_b).create({"name": "Bot B"})
        cls.doc_a = (
            cls.env["chatbot.document"]
            .with_user(cls.user_a)
            .create({"chatbot_id": cls.bot_a.id, "filename": "a.txt", "datas": "QQ=="})
        )
        cls.link_b = (
            cls.env["chatbot.link"]
            .with_user(cls.user_b)
            .create({"chatbot_id": cls.bot_b.id, "url": "https://b.example.com"})
        )
        cls.key_a, _plain = cls.env["chatbot.api.key"].with_user(cls.user_a)._generate(cls.bot_a, "secret", "A")

    def test_users_see_only_their_company(self):
        for user, own, other in ((self.user_a, self.bot_a, self.bot_b), (self.user_b, self.bot_b, self.bot_a)):
            bots = self.env["chatbot.chatbot"].with_user(user).search([])
            self.assertIn(own, bots)
            self.assertNotIn(other, bots)
            with self.assertRaises(AccessError):
                other.with_user(user).read(["name"])
        self.assertEqual(self.env["chatbot.document"].with_user(self.user_b).search([]), self.env["chatbot.document"])
        self.assertEqual(self.env["chatbot.link"].with_user(self.user_a).search([]), self.env["chatbot.link"])
        self.assertEqual(self.env["chatbot.api.key"].with_user(self.user_b).search([]), self.env["chatbot.api.key"])
        self.assertEqual(self.env["chatbot.api.key"].with_user(self.user_a).search([]), self.key_a)
        outbox_b = self.env["chatbot.outbox"].with_user(self.user_b).search([])
        self.assertTrue(outbox_b)
        self.assertEqual(set(outbox_b.mapped("company_id").ids), {self.company_b.id})
        with self.assertRaises(AccessError):
            self.doc_a.with_user(self.user_b).read(["name"])

    def test_users_cannot_write_into_another_company(self):
        with self.assertRaises(AccessError), self.env.cr.savepoint():
            self.bot_a.with_user(self.user_b).write({"name": "Hijacked"})
        with self.assertRaises(AccessError), self.env.cr.savepoint():
            self.env["chatbot.document"].with_user(self.user_b).create(
                {"chatbot_id": self.bot_a.id, "filename": "x.txt", "datas": "QQ=="}
            )
        with self.assertRaises(AccessError), self.env.cr.savepoint():
            self.env["chatbot.api.key"].with_user(self.user_b)._generate(self.bot_a, "secret", "steal")

    def test_managers_see_all_and_users_cannot_delete_chatbots(self):
        bots = self.env["chatbot.chatbot"].with_user(self.manager).search([])
        self.assertIn(self.bot_a, bots)
        self.assertIn(self.bot_b, bots)
        self.assertIn(self.link_b, self.env["chatbot.link"].with_user(self.manager).search([]))
        with self.assertRaises(AccessError), self.env.cr.savepoint():
            self.bot_a.with_user(self.user_a).unlink()
        self.bot_b.with_user(self.manager).unlink()
        self.assertFalse(self.bot_b.exists())

    def test_users_cannot_touch_the_outbox_directly(self):
        row = self.env["chatbot.outbox"].search([("resource_uuid", "=", self.bot_a.uuid)])
        with self.assertRaises(AccessError), self.env.cr.savepoint():
            row.with_user(self.user_a).write({"state": "done"})
        with self.assertRaises(AccessError), self.env.cr.savepoint():
            row.with_user(self.user_a).unlink()
