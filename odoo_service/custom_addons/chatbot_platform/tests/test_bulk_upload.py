"""Bulk upload's one rule (chatbot.document._create_from_uploads) as the drop on the documents list
and kanban reaches it: check_bulk_upload, then the files staged as attachments of the chatbot, then
upload_dropped_files (static/src/js/document_drop.js). The wizard's side: test_operations.py."""

import base64

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged

from ..models.chatbot_document import MAX_UPLOAD_FILES
from .common import PDF_BYTES, ChatbotCase


@tagged("post_install", "-at_install")
class TestBulkUpload(ChatbotCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Document = cls.env["chatbot.document"]
        cls.bot = cls.env["chatbot.chatbot"].with_user(cls.user_a).create({"name": "Drop bot"})
        cls.bot_b = cls.env["chatbot.chatbot"].with_user(cls.user_b).create({"name": "Other tenant's bot"})

    def stage(self, files, user=None, chatbot=None):
        """What the browser does for each dropped file: an attachment of the chatbot."""
        chatbot = chatbot or self.bot
        Attachment = self.env["ir.attachment"].with_user(user or self.user_a)
        return [
            Attachment.create(
                {"name": name, "datas": base64.b64encode(raw), "res_model": "chatbot.chatbot", "res_id": chatbot.id}
            ).id
            for name, raw in files
        ]

    def drop(self, attachment_ids, user=None, chatbot=None):
        return self.Document.with_user(user or self.user_a).upload_dropped_files(
            (chatbot or self.bot).id, attachment_ids
        )

    def bot_documents(self):
        return self.Document.search([("chatbot_id", "=", self.bot.id)])

    def assert_nothing_written(self, documents_before, outbox_before):
        self.assertEqual(self.bot_documents(), documents_before, "no document is created")
        self.assertEqual(self.env["chatbot.outbox"].search_count([]), outbox_before, "nothing is queued for the engine")

    # -- created, duplicates ---------------------------------------------------------------------------
    def test_drop_creates_documents_and_skips_duplicates(self):
        existing = self.create_document(self.bot, content=b"Returns within 30 days.", filename="returns.txt")
        self.create_document(self.bot_b, content=b"Shipping is free.", filename="ship.txt", user=self.user_b)
        ids = self.stage(
            [
                ("manual.pdf", PDF_BYTES),
                ("returns-copy.txt", b"Returns within 30 days."),  # the chatbot has it
                ("shipping.txt", b"Shipping is free."),  # another company's chatbot has it: not a duplicate here
                ("warranty.md", b"# Warranty\nTwo years."),
                ("warranty-again.md", b"# Warranty\nTwo years."),  # twice in this drop
            ]
        )
        self.assertTrue(self.Document.with_user(self.user_a).check_bulk_upload(self.bot.id, len(ids)))

        result = self.drop(ids)

        created = self.Document.browse(result["document_ids"])
        self.assertEqual(created.mapped("filename"), ["manual.pdf", "shipping.txt", "warranty.md"])
        self.assertEqual(created.mapped("chatbot_id"), self.bot)
        self.assertEqual(self.bot_documents(), created | existing)
        self.assertEqual(
            result["duplicates"],
            [
                {"file": "returns-copy.txt", "document": "returns.txt"},
                {"file": "warranty-again.md", "document": "warranty.md"},
            ],
        )
        self.assertEqual(
            result["message"],
            "3 documents created, 2 duplicates skipped. "
            "returns-copy.txt: same content as returns.txt, not uploaded again. "
            "warranty-again.md: same content as warranty.md, not uploaded again.",
        )
        self.assertFalse(self.env["ir.attachment"].browse(ids).exists(), "the staged copies are gone")
        self.assertEqual(created[0]._raw_content(), PDF_BYTES, "each document keeps its own copy")
        self.run_postcommit()
        prefix = "/internal/v1/chatbots/%s/sources/" % self.bot.uuid
        sent = {r["path"][len(prefix) :] for r in self.engine.requests if r["path"].startswith(prefix)}
        self.assertEqual(sent, set((created | existing).mapped("uuid")), "the duplicates are not ingested")

    def test_a_drop_of_only_duplicates_creates_nothing(self):
        self.create_document(self.bot, content=b"Returns within 30 days.", filename="returns.txt")
        result = self.drop(self.stage([("again.txt", b"Returns within 30 days.")]))
        self.assertEqual((result["document_ids"], len(result["duplicates"])), ([], 1))
        self.assertTrue(result["message"].startswith("0 documents created, 1 duplicates skipped."))

    # -- limits and errors: nothing written ----------------------------------------------------------
    def test_file_limit(self):
        check = self.Document.with_user(self.user_a).check_bulk_upload
        self.assertTrue(check(self.bot.id, MAX_UPLOAD_FILES))
        for count in (MAX_UPLOAD_FILES + 1, 0):
            with self.assertRaises(UserError), self.env.cr.savepoint():
                check(self.bot.id, count)
        before, outbox = self.bot_documents(), self.env["chatbot.outbox"].search_count([])
        ids = self.stage([("f%03d.txt" % i, b"file %d" % i) for i in range(MAX_UPLOAD_FILES + 1)])
        with self.assertRaisesRegex(UserError, "At most 200 files per upload \\(201 given\\)"), self.env.cr.savepoint():
            self.drop(ids)
        self.assert_nothing_written(before, outbox)
        with self.assertRaises(UserError), self.env.cr.savepoint():
            self.drop([])

    def test_a_refused_file_refuses_the_whole_drop(self):
        before, outbox = self.bot_documents(), self.env["chatbot.outbox"].search_count([])
        ids = self.stage([("good.txt", b"Fine text."), ("virus.exe", b"MZ"), ("late.md", b"# Later")])
        with self.assertRaisesRegex(ValidationError, "virus.exe: unsupported file type"), self.env.cr.savepoint():
            self.drop(ids)
        self.assert_nothing_written(before, outbox)
        ids = self.stage([("empty.txt", b"")])
        with self.assertRaisesRegex(ValidationError, "empty.txt is empty"), self.env.cr.savepoint():
            self.drop(ids)
        self.assert_nothing_written(before, outbox)

    def test_no_single_chatbot_is_refused(self):
        with self.assertRaisesRegex(UserError, "Choose the chatbot"), self.env.cr.savepoint():
            self.Document.with_user(self.user_a).check_bulk_upload(False, 1)
        with self.assertRaisesRegex(UserError, "Choose the chatbot"), self.env.cr.savepoint():
            self.Document.with_user(self.user_a).check_bulk_upload(self.bot.id + self.bot_b.id + 1000, 1)

    # -- access rights and companies -------------------------------------------------------------------
    def test_another_company_user_is_refused(self):
        before, outbox = self.bot_documents(), self.env["chatbot.outbox"].search_count([])
        with self.assertRaises(AccessError), self.env.cr.savepoint():
            self.Document.with_user(self.user_b).check_bulk_upload(self.bot.id, 1)
        with self.assertRaises(AccessError), self.env.cr.savepoint():
            self.stage([("b.txt", b"B's file")], user=self.user_b)  # cannot even stage a file on A's chatbot
        ids = self.stage([("a.txt", b"A's file")])
        with self.assertRaises(AccessError), self.env.cr.savepoint():
            self.drop(ids, user=self.user_b)
        self.assert_nothing_written(before, outbox)

    def test_user_without_chatbot_rights_is_refused(self):
        internal = new_test_user(
            self.env,
            login="bulk_internal_only",
            groups="base.group_user",
            company_id=self.company_a.id,
            company_ids=[(6, 0, self.company_a.ids)],
        )
        with self.assertRaises(AccessError), self.env.cr.savepoint():
            self.Document.with_user(internal).check_bulk_upload(self.bot.id, 1)
        ids = self.stage([("a.txt", b"A's file")])
        with self.assertRaises(AccessError), self.env.cr.savepoint():
            self.drop(ids, user=internal)
        self.assertFalse(self.bot_documents())

    def test_company_switched_off_is_refused(self):
        both = new_test_user(
            self.env,
            login="bulk_two_companies",
            groups="base.group_user,chatbot_platform.chatbot_platform_group_user",
            company_id=self.company_a.id,
            company_ids=[(6, 0, (self.company_a | self.company_b).ids)],
        )
        Document = self.Document.with_user(both)
        self.assertTrue(
            Document.with_context(allowed_company_ids=self.company_b.ids).check_bulk_upload(self.bot_b.id, 1)
        )
        with self.assertRaises(AccessError), self.env.cr.savepoint():
            Document.with_context(allowed_company_ids=self.company_a.ids).check_bulk_upload(self.bot_b.id, 1)

    def test_only_files_this_user_staged_on_this_chatbot(self):
        other_bot = self.env["chatbot.chatbot"].with_user(self.user_a).create({"name": "Second bot"})
        doc = self.create_document(self.bot, content=b"Private text.", filename="private.txt")
        stored = self.env["ir.attachment"].search(
            [("res_model", "=", "chatbot.document"), ("res_id", "=", doc.id), ("res_field", "=", "datas")]
        )
        self.assertEqual(len(stored), 1)
        colleague = new_test_user(
            self.env,
            login="bulk_colleague",
            groups="base.group_user,chatbot_platform.chatbot_platform_group_user",
            company_id=self.company_a.id,
            company_ids=[(6, 0, self.company_a.ids)],
        )
        for foreign in (
            stored.ids,  # a document's own file
            self.stage([("colleague.txt", b"Colleague's")], user=colleague),  # staged by someone else
            self.stage([("other.txt", b"For the other bot")], chatbot=other_bot),  # staged on another chatbot
        ):
            with self.assertRaisesRegex(UserError, "not received"), self.env.cr.savepoint():
                self.drop(self.stage([("mine.txt", b"Mine")]) + foreign)
        self.assertEqual(self.bot_documents(), doc)
