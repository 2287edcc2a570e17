from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from ..hooks import uninstall_hook
from ..tools import api_keys
from .common import ChatbotCase


@tagged("post_install", "-at_install")
class TestEngineActions(ChatbotCase):
    """User-triggered reads from the engine: Test chat, analytics; and the uninstall clean-up."""

    def test_test_chat_uses_the_derived_preview_key_and_escapes_the_answer(self):
        bot = self.create_chatbot(name="Chatty")
        action = bot.with_user(self.user_a).action_open_test_chat()
        self.run_postcommit()  # the preview key reaches the engine with the chatbot
        sent_keys = self.engine.requests[-1]["json"]["api_keys"]
        self.engine.clear()
        wizard = (
            self.env["chatbot.test.chat.wizard"]
            .with_user(self.user_a)
            .with_context(action["context"])
            .create({"message": "What is the warranty?"})
        )
        self.engine.responses.append(
            (
                200,
                {
                    "answer": "37 months <script>alert(1)</script>\n\n> Water damage is not covered. [1]",
                    "session_id": "sess-1",
                    "message_id": "m-1",
                    "sources": [
                        {"source": "s-1", "name": "Manual.pdf", "url": None, "page": 4, "snippet": "...", "score": 0.87}
                    ],
                    "generator": "extractive",
                },
            )
        )
        wizard.action_send()
        request = self.engine.requests[-1]
        self.assertEqual((request["method"], request["path"]), ("POST", "/v1/chat"))
        self.assertEqual(request["json"], {"message": "What is the warranty?"})
        bearer = request["headers"]["Authorization"].removeprefix("Bearer ")
        self.assertEqual(api_keys.parse_kind(bearer), "secret")
        self.assertIn(api_keys.hash_key(bearer), [k["sha256"] for k in sent_keys], "the engine knows this key")
        self.assertEqual((wizard.session_id, wizard.generator, wizard.message), ("sess-1", "extractive", False))
        self.assertIn("37 months &lt;script&gt;", wizard.transcript)
        self.assertIn("Manual.pdf, p. 4", wizard.transcript)
        self.assertNotIn("<script>", wizard.transcript)
        # the answer's blank line is kept: two line breaks between the sentence and the quote
        self.assertRegex(
            str(wizard.transcript), r"&lt;/script&gt;<br\s*/?><br\s*/?>&gt; Water damage is not covered\. \[1\]"
        )

        wizard.message = "And water damage?"
        self.engine.responses.append((401, {"error": "unauthorized", "detail": "invalid API key"}))
        with self.assertRaises(UserError) as caught:
            wizard.action_send()
        self.assertIn("does not accept the Test chat key", str(caught.exception))
        self.assertEqual(self.engine.requests[-1]["json"]["session_id"], "sess-1")

    def test_analytics_are_pulled_and_rendered_escaped(self):
        bot = self.create_chatbot()
        path = "/internal/v1/chatbots/%s/analytics" % bot.uuid
        self.engine.json_routes[("GET", path)] = (
            200,
            {
                "per_day": [{"day": "2026-11-01", "questions": 4}, {"day": "2026-11-02", "questions": 2}],
                "feedback": {"up": 5, "down": 1},
                "top_questions": [{"question": "Refunds?", "count": 3}],
                "unanswered": [{"question": "<b>Pets?</b>", "count": 2, "last_asked": "2026-11-02T10:00:00Z"}],
            },
        )
        bot.with_user(self.user_a).action_refresh_analytics()
        request = self.engine.requests[-1]
        self.assertTrue(request["signed"])
        self.assertIn("since=", request["query"])
        html = str(bot.analytics_html)
        for expected in ("2026-11-01", "Refunds?", "&lt;b&gt;Pets?&lt;/b&gt;", "👍 5"):
            self.assertIn(expected, html)
        self.assertNotIn("<b>Pets?</b>", html)
        self.assertTrue(bot.analytics_refreshed_at)

        self.engine.json_routes[("GET", path)] = (500, {"error": "internal", "detail": "db down"})
        with self.assertRaises(UserError) as caught:
            bot.with_user(self.user_a).action_refresh_analytics()
        self.assertIn("db down", str(caught.exception))

    def test_analytics_refresh_copies_when_each_key_was_last_used(self):
        bot = self.create_chatbot()
        wizard = (
            self.env["chatbot.api.key.wizard"]
            .with_user(self.user_a)
            .create({"chatbot_id": bot.id, "name": "Website", "kind": "publishable"})
        )
        key = self.env["chatbot.api.key"].browse(wizard.action_generate()["context"]["default_api_key_id"])
        other_bot = self.create_chatbot(name="Other", user=self.user_b)
        path = "/internal/v1/chatbots/%s/analytics" % bot.uuid
        usage = [
            {"id": key.uuid, "last_used_at": "2026-11-20T10:15:30.123456+00:00"},
            {"id": "not-a-key-of-this-bot", "last_used_at": "2026-11-21T00:00:00Z"},
        ]
        self.engine.json_routes[("GET", path)] = (200, {"per_day": [], "keys": usage})
        bot.with_user(self.user_a).action_refresh_analytics()
        self.assertEqual(fields.Datetime.to_string(key.last_used_at), "2026-11-20 10:15:30")

        # An older report (another engine process lagging) never moves it backwards; never used stays empty.
        usage[0]["last_used_at"] = "2026-11-19T08:00:00+01:00"
        bot.with_user(self.user_a).action_refresh_analytics()
        self.assertEqual(fields.Datetime.to_string(key.last_used_at), "2026-11-20 10:15:30")
        usage[0]["last_used_at"] = "2026-11-22T08:00:00+01:00"  # 07:00 UTC
        bot.with_user(self.user_a).action_refresh_analytics()
        self.assertEqual(fields.Datetime.to_string(key.last_used_at), "2026-11-22 07:00:00")
        self.assertFalse(other_bot.api_key_ids.filtered("last_used_at"))

    def test_uninstall_removes_every_chatbot_from_the_engine(self):
        bots = self.create_chatbot(name="One") | self.create_chatbot(name="Two", user=self.user_b)
        bots[0].active = False
        self.engine.clear()
        uninstall_hook(self.env)
        deleted = {r["path"] for r in self.engine.requests if r["method"] == "DELETE"}
        for bot in bots:
            self.assertIn("/internal/v1/chatbots/%s" % bot.uuid, deleted)
        self.assertTrue(all(r["signed"] and r["json"]["version"] > 0 for r in self.engine.requests))
