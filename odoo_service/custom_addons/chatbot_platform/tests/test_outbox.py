import base64
import hashlib
import json

from odoo.tests import tagged

from .common import PDF_BYTES, ChatbotCase


@tagged("post_install", "-at_install")
class TestOutboxEnqueue(ChatbotCase):
    """What is queued, in the user's transaction, for each change (no delivery here)."""

    def test_create_queues_the_full_chatbot_payload(self):
        prompt = (
            self.env["chatbot.prompt"]
            .with_user(self.user_a)
            .create({"name": "Tone", "system_prompt": "Be brief.", "user_template": "{context}\n{question}"})
        )
        bot = self.create_chatbot(
            name="Docs bot",
            language="fr",
            prompt_id=prompt.id,
            generation_model="qwen2.5",
            temperature=0.5,
            max_tokens=300,
            top_k=4,
            allowed_domains="Example.com\n*.example.org, localhost:8080",
            rate_key_per_minute=30,
            widget_title="Ask us",
            widget_color="#112233",
            widget_welcome="Hello",
            widget_suggestions="Where is my order?\nHow do I pay, by card?",
        )
        row = self.rows(bot)
        self.assertEqual(len(row), 1)
        self.assertEqual((row.method, row.path, row.state), ("PUT", "/internal/v1/chatbots/%s" % bot.uuid, "pending"))
        self.assertTrue(row.webhook_id.startswith("msg_"))
        self.assertGreater(bot.version, 0)
        db_uuid = self.env["ir.config_parameter"].sudo().get_param("database.uuid")
        self.assertEqual(
            json.loads(row.payload),
            {
                "version": bot.version,
                "tenant": "%s:%s" % (db_uuid, self.company_a.id),
                "name": "Docs bot",
                "active": True,
                "language": "fr",
                "prompts": {"system": "Be brief.", "user_template": "{context}\n{question}"},
                "generation": {"model": "qwen2.5", "temperature": 0.5, "max_tokens": 300, "top_k": 4},
                "allowed_domains": ["example.com", "*.example.org", "localhost:8080"],
                "api_keys": [],
                "rate_limits": {"key_per_minute": 30, "ip_per_minute": None},
                "widget": {
                    "title": "Ask us",
                    "color": "#112233",
                    "welcome": "Hello",
                    "suggestions": ["Where is my order?", "How do I pay, by card?"],
                    "handoff_enabled": False,
                    "handoff_phrases": [],
                    "handoff_message": "",
                },
            },
        )
        self.assertEqual(row.version, bot.version)
        self.assertEqual(bot.sync_state, "pending")
        # Odoo ids never go on the wire: the path is exactly the chatbot's UUID (a digit check on
        # the path would be flaky, a random UUID contains small numbers).
        self.assertEqual(row.path, "/internal/v1/chatbots/%s" % bot.uuid)
        self.assertNotEqual(bot.uuid, str(bot.id))

    def test_repeated_writes_coalesce_into_the_newest_state(self):
        bot = self.create_chatbot()
        row = self.rows(bot)
        first_version, first_webhook_id = bot.version, row.webhook_id
        bot.write({"name": "Renamed"})
        bot.write({"temperature": 0.9})
        rows = self.rows(bot)
        self.assertEqual(rows, row, "one undelivered row per resource")
        self.assertGreater(bot.version, first_version)
        self.assertEqual(row.version, bot.version)
        payload = json.loads(row.payload)
        self.assertEqual((payload["name"], payload["generation"]["temperature"]), ("Renamed", 0.9))
        self.assertNotEqual(row.webhook_id, first_webhook_id, "a new state is a new message")

    def test_untracked_writes_do_not_bump_the_version(self):
        bot = self.create_chatbot()
        version = bot.version
        bot.write({"analytics_data": {"per_day": []}, "user_id": self.manager.id})
        self.assertEqual(bot.version, version)

    def test_delete_queues_a_newer_delete_and_drops_pending_source_rows(self):
        bot = self.create_chatbot()
        doc = self.create_document(bot)
        doc_row = self.rows(doc)
        upsert_version = bot.version
        bot_uuid = bot.uuid
        bot.with_user(self.manager).unlink()
        row = self.env["chatbot.outbox"].search([("resource_uuid", "=", bot_uuid)])
        self.assertEqual(len(row), 1)
        self.assertEqual((row.method, row.operation, row.state), ("DELETE", "delete", "pending"))
        payload = json.loads(row.payload)
        self.assertEqual(list(payload), ["version"])
        self.assertGreater(payload["version"], upsert_version)
        self.assertEqual(doc_row.state, "cancelled", "the chatbot DELETE removes its sources in the engine")
        self.assertFalse(
            self.env["chatbot.outbox"].search(
                [("chatbot_uuid", "=", bot_uuid), ("method", "=", "DELETE"), ("id", "!=", row.id)]
            )
        )

    def test_document_payload_and_versioning(self):
        bot = self.create_chatbot()
        doc = self.create_document(bot, name="Manual")
        row = self.rows(doc)
        self.assertEqual(row.path, "/internal/v1/chatbots/%s/sources/%s" % (bot.uuid, doc.uuid))
        self.assertEqual(
            json.loads(row.payload),
            {
                "version": doc.version,
                "kind": "document",
                "name": "Manual",
                "document": {
                    "filename": "manual.pdf",
                    "mimetype": "application/pdf",
                    "sha256": hashlib.sha256(PDF_BYTES).hexdigest(),
                },
            },
        )
        self.assertNotIn("content_base64", row.payload, "file bytes are read at delivery, not copied")
        self.assertEqual((doc.state, doc.file_size), ("queued", len(PDF_BYTES)))
        version = doc.version
        doc._apply_engine_status(version, "ready", 3)
        self.assertEqual(doc.state, "ready")
        new_pdf = PDF_BYTES + b"% v2\n"
        doc.write({"datas": base64.b64encode(new_pdf)})
        self.assertGreater(doc.version, version)
        self.assertEqual(doc.state, "queued", "a new version is re-ingested")
        self.assertEqual(json.loads(self.rows(doc).payload)["document"]["sha256"], hashlib.sha256(new_pdf).hexdigest())
        doc_uuid = doc.uuid
        doc.unlink()
        delete = self.env["chatbot.outbox"].search([("resource_uuid", "=", doc_uuid)])
        self.assertEqual((delete.method, json.loads(delete.payload)["version"] > version), ("DELETE", True))

    def test_link_payload(self):
        bot = self.create_chatbot()
        link = (
            self.env["chatbot.link"]
            .with_user(self.user_a)
            .create(
                {
                    "chatbot_id": bot.id,
                    "url": " https://example.com/docs ",
                    "max_depth": 2,
                    "max_pages": 40,
                    "refresh_hours": 24,
                }
            )
        )
        self.assertEqual(
            json.loads(self.rows(link).payload),
            {
                "version": link.version,
                "kind": "link",
                "name": "https://example.com/docs",
                "link": {"url": "https://example.com/docs", "max_depth": 2, "max_pages": 40, "refresh_hours": 24},
            },
        )

    def test_key_and_prompt_changes_resend_the_chatbot(self):
        prompt = self.env["chatbot.prompt"].create({"name": "P", "system_prompt": "One", "company_id": False})
        bot = self.create_chatbot(prompt_id=prompt.id)
        version = bot.version
        key, _plain = self.env["chatbot.api.key"].with_user(self.user_a)._generate(bot, "secret", "Server")
        self.assertGreater(bot.version, version)
        payload = json.loads(self.rows(bot).payload)
        self.assertEqual(
            payload["api_keys"],
            [{"id": key.uuid, "kind": "secret", "prefix": key.prefix, "sha256": key.key_hash, "expires_at": None}],
        )
        version = bot.version
        prompt.write({"system_prompt": "Two"})
        self.assertGreater(bot.version, version)
        self.assertEqual(json.loads(self.rows(bot).payload)["prompts"]["system"], "Two")

    def test_version_sequence_is_shared_and_strictly_increasing(self):
        bot = self.create_chatbot()
        doc = self.create_document(bot)
        other = self.create_chatbot(name="Other")
        self.assertLess(bot.version, doc.version)
        self.assertLess(doc.version, other.version)
