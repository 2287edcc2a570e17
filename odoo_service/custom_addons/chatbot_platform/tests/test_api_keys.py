import json
import logging
import os
import re
from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.tests import tagged

from ..tools import api_keys
from .common import ChatbotCase

KEY_RE = re.compile(r"^cbp_(pk|sk)_[0-9A-Za-z]{38}$")


class _CaptureAll(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@tagged("post_install", "-at_install")
class TestApiKeys(ChatbotCase):
    def generate_with_wizard(self, bot, kind="publishable", user=None):
        wizard = (
            self.env["chatbot.api.key.wizard"]
            .with_user(user or self.user_a)
            .create({"chatbot_id": bot.id, "name": "Website", "kind": kind})
        )
        action = wizard.action_generate()
        return action, action["context"]["default_plain_key"]

    def text_columns_containing(self, needle):
        """Every text column of this addon's tables that holds ``needle``."""
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_name LIKE 'chatbot%%' AND data_type IN ('text', 'character varying', 'jsonb')"
        )
        hits = []
        for table, column in self.env.cr.fetchall():
            self.env.cr.execute(
                'SELECT 1 FROM "%s" WHERE "%s"::text LIKE %%s LIMIT 1' % (table, column), ["%" + needle + "%"]
            )
            if self.env.cr.fetchone():
                hits.append("%s.%s" % (table, column))
        return hits

    def test_plain_key_is_shown_once_never_stored_never_logged(self):
        bot = self.create_chatbot()
        capture = _CaptureAll()
        root = logging.getLogger()
        old_level = root.level
        root.addHandler(capture)
        root.setLevel(logging.DEBUG)
        try:
            action, plain = self.generate_with_wizard(bot)
            # the browser opens the reveal dialog; even if it saved it, the key is dropped
            reveal = (
                self.env["chatbot.api.key.reveal"]
                .with_user(self.user_a)
                .with_context(action["context"])
                .create({"plain_key": plain})
            )
            self.run_postcommit()
        finally:
            root.removeHandler(capture)
            root.setLevel(old_level)
        self.assertRegex(plain, KEY_RE)
        self.assertEqual(api_keys.parse_kind(plain), "publishable")
        self.assertEqual(action["res_model"], "chatbot.api.key.reveal")
        self.assertIn('data-key="%s"' % plain, action["context"]["default_embed_snippet"])
        self.assertIn("/widget.js", action["context"]["default_embed_snippet"])
        key = self.env["chatbot.api.key"].browse(action["context"]["default_api_key_id"])
        self.assertEqual(key.key_hash, api_keys.hash_key(plain))
        self.assertEqual(key.prefix, plain[:12])
        self.assertFalse(reveal.plain_key)
        random_part = plain[12:]
        self.assertEqual(self.text_columns_containing(random_part), [], "plain key found in the database")
        self.assertTrue(capture.messages, "the capture must have seen the delivery logs")
        self.assertFalse([m for m in capture.messages if random_part in m], "plain key found in the logs")
        sent = json.dumps([r["json"] for r in self.engine.requests])
        self.assertIn(key.key_hash, sent)
        self.assertNotIn(random_part, sent, "only the hash goes to the engine")

    def test_rotation_keeps_the_old_key_for_24_hours(self):
        bot = self.create_chatbot()
        _action, _plain = self.generate_with_wizard(bot, kind="secret")
        old = bot.api_key_ids
        before = fields.Datetime.now()
        action = old.with_user(self.user_a).action_rotate()
        new_plain = action["context"]["default_plain_key"]
        new = self.env["chatbot.api.key"].browse(action["context"]["default_api_key_id"])
        self.assertNotEqual(new, old)
        self.assertEqual((new.kind, new.key_hash), ("secret", api_keys.hash_key(new_plain)))
        self.assertFalse(action["context"]["default_embed_snippet"], "no snippet for secret keys")
        self.assertEqual(old.replaced_by_id, new)
        grace = old.expires_at - before
        self.assertTrue(timedelta(hours=23, minutes=59) <= grace <= timedelta(hours=24, minutes=1))
        self.assertEqual(old.state, "expiring")
        entries = {e["id"]: e for e in json.loads(self.rows(bot).payload)["api_keys"]}
        self.assertEqual(set(entries), {old.uuid, new.uuid})
        self.assertEqual(
            entries[old.uuid]["expires_at"], fields.Datetime.to_string(old.expires_at).replace(" ", "T") + "Z"
        )
        self.assertIsNone(entries[new.uuid]["expires_at"])

    def test_revoked_keys_are_omitted_from_the_payload(self):
        bot = self.create_chatbot()
        self.generate_with_wizard(bot)
        self.generate_with_wizard(bot, kind="secret")
        keep, revoke = bot.api_key_ids.sorted("id")
        version = bot.version
        revoke.with_user(self.user_a).action_revoke()
        self.assertGreater(bot.version, version)
        self.assertEqual(revoke.state, "revoked")
        sent_ids = [e["id"] for e in json.loads(self.rows(bot).payload)["api_keys"]]
        self.assertEqual(sent_ids, [keep.uuid])

    def test_preview_key_is_derived_not_stored(self):
        bot = self.create_chatbot()
        bot.with_user(self.user_a).action_open_test_chat()
        preview = self.env["chatbot.api.key"].search([("chatbot_id", "=", bot.id), ("is_preview", "=", True)])
        self.assertEqual(len(preview), 1)
        plain = preview._preview_plain_key()
        self.assertEqual(api_keys.parse_kind(plain), "secret")
        self.assertEqual(preview.key_hash, api_keys.hash_key(plain))
        self.assertFalse(bot.api_key_ids, "Test chat keys are not listed with the tenant's keys")
        self.assertIn(preview.uuid, [e["id"] for e in json.loads(self.rows(bot).payload)["api_keys"]])
        self.assertEqual(self.text_columns_containing(plain[12:]), [])
        # reopening reuses the still-valid key
        bot.with_user(self.user_a).action_open_test_chat()
        self.assertEqual(
            self.env["chatbot.api.key"].search_count([("chatbot_id", "=", bot.id), ("is_preview", "=", True)]), 1
        )

    def test_keys_cannot_be_altered(self):
        bot = self.create_chatbot()
        self.generate_with_wizard(bot)
        with self.assertRaises(Exception), self.env.cr.savepoint():
            bot.api_key_ids.write({"key_hash": "0" * 64})

    def test_embed_snippet_uses_the_public_engine_url(self):
        """Browsers cannot reach the internal ENGINE_URL; the snippet points at ENGINE_PUBLIC_URL."""
        self.env["ir.config_parameter"].sudo().set_param("chatbot_platform.engine_public_url", False)
        bot = self.create_chatbot()
        with patch.dict(os.environ, {"ENGINE_PUBLIC_URL": "https://chat.example.com/"}):
            action, _plain = self.generate_with_wizard(bot)
        self.assertIn('src="https://chat.example.com/widget.js"', action["context"]["default_embed_snippet"])
