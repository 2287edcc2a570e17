"""Bulk upload by drag and drop in the real web client: a tenant admin drops files on a chatbot's
documents list, then on its kanban (tours in static/tests/tours/document_drop_tour.js, headless
Chromium); each new file becomes a document of that chatbot, a duplicate by SHA-256 is only
reported. Dropped on the documents of no single chatbot, nothing is uploaded and the user is told
where to drop them."""

import base64

from odoo.tests import HttpCase, new_test_user, tagged

from .common import TOUR_TIMEOUT, closed_port_url, require_browser


@tagged("post_install", "-at_install")
class TestBulkUploadInTheBrowser(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["ir.config_parameter"].sudo().set_param("chatbot_platform.engine_url", closed_port_url())
        cls.company = cls.env["res.company"].create({"name": "Drop tenant"})
        cls.admin = new_test_user(
            cls.env,
            login="drop_admin",
            groups="base.group_user,chatbot_platform.chatbot_platform_group_admin",
            company_id=cls.company.id,
            company_ids=[(6, 0, cls.company.ids)],
        )
        cls.bot = cls.env["chatbot.chatbot"].with_user(cls.admin).create({"name": "Drop bot"})
        cls.existing = (
            cls.env["chatbot.document"]
            .with_user(cls.admin)
            .create(
                {
                    "chatbot_id": cls.bot.id,
                    "filename": "returns.txt",
                    "datas": base64.b64encode(b"Returns within 30 days."),
                }
            )
        )

    def setUp(self):
        super().setUp()
        require_browser(self)

    def documents(self):
        return self.env["chatbot.document"].search([("chatbot_id", "=", self.bot.id)], order="id")

    def test_drop_on_the_list_then_on_the_kanban(self):
        self.start_tour(
            "/odoo/action-chatbot_platform.chatbot_action/%d" % self.bot.id,
            "chatbot_platform_drop_upload",
            login="drop_admin",
            timeout=TOUR_TIMEOUT,
        )
        documents = self.documents()
        self.assertEqual(documents.mapped("filename"), ["returns.txt", "handbook.md", "faq.txt", "pricing.csv"])
        self.assertEqual(documents.mapped("company_id"), self.company)
        self.assertEqual(documents[1]._raw_content(), b"# Handbook\nReturns are free.")
        staged = self.env["ir.attachment"].search([("res_model", "=", "chatbot.chatbot"), ("res_id", "=", self.bot.id)])
        self.assertFalse(staged, "the staged copies of the dropped files are gone")

    def test_drop_on_the_documents_of_no_single_chatbot(self):
        self.start_tour(
            "/odoo/action-chatbot_platform.chatbot_document_action",
            "chatbot_platform_drop_no_chatbot",
            login="drop_admin",
            timeout=TOUR_TIMEOUT,
        )
        self.assertEqual(self.documents(), self.existing)
        self.assertFalse(self.env["ir.attachment"].search([("name", "=", "orphan.txt")]))
