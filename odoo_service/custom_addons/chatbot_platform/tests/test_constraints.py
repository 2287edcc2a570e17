import base64

from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from .common import PDF_BYTES, ChatbotCase


@tagged("post_install", "-at_install")
class TestConstraints(ChatbotCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bot = cls.env["chatbot.chatbot"].with_user(cls.user_a).create({"name": "Constraints"})

    def assert_invalid(self, message_part, func):
        with self.assertRaises(ValidationError) as caught, self.env.cr.savepoint():
            func()
            self.env.flush_all()
        self.assertIn(message_part, str(caught.exception))

    def link(self, **vals):
        vals.setdefault("url", "https://example.com")
        return self.env["chatbot.link"].with_user(self.user_a).create(dict(vals, chatbot_id=self.bot.id))

    def test_link_url_scheme_host_and_credentials(self):
        self.assert_invalid("only http:// and https://", lambda: self.link(url="ftp://example.com/file"))
        self.assert_invalid("only http:// and https://", lambda: self.link(url="javascript:alert(1)"))
        self.assert_invalid("has no host name", lambda: self.link(url="https://"))
        self.assert_invalid("contains credentials", lambda: self.link(url="https://user:pw@example.com"))
        self.assertTrue(self.link(url="http://docs.example.com/a?b=c"))

    def test_link_limits(self):
        # the engine's limits (CRAWL_MAX_DEPTH=3, CRAWL_MAX_PAGES=200): Odoo no longer accepts 5 / 1000
        self.assert_invalid("Max depth must be between 0 and 3", lambda: self.link(max_depth=4))
        self.assert_invalid("Max depth", lambda: self.link(max_depth=5))
        self.assert_invalid("Max pages must be between 1 and 200", lambda: self.link(max_pages=201))
        self.assert_invalid("Max pages", lambda: self.link(max_pages=1000))
        self.assert_invalid("Max pages", lambda: self.link(max_pages=0))
        self.assert_invalid("Refresh interval", lambda: self.link(refresh_hours=-1))
        self.assertTrue(self.link(max_depth=3, max_pages=200, refresh_hours=168))

    def test_allowed_domains_syntax(self):
        for bad, message in (
            ("https://example.com", "bare host name"),
            ("example.com/path", "bare host name"),
            ("exa mple.com", "not a valid host name"),
            ("-bad.com", "not a valid host name"),
            ("*example.com", "not a valid host name"),
            ("127.0.0.1:99999", "not a valid host name"),
            ("*.127.0.0.1", "an IP address has no subdomains"),
            # wildcards over a public suffix would let every site under it embed the chatbot
            ("*.com", "public suffix"),
            ("*.co.uk", "public suffix"),
            ("*.github.io", "public suffix"),
        ):
            self.assert_invalid(message, lambda bad=bad: self.bot.write({"allowed_domains": bad}))
        self.bot.write(
            {
                "allowed_domains": "example.com\n*.example.org\nlocalhost:8069\nShop.Example.co.uk\n"
                "*.shop.example.co.uk\n127.0.0.1:8170\n10.0.0.7"
            }
        )

    def test_generation_settings_and_colour(self):
        self.assert_invalid("Temperature", lambda: self.bot.write({"temperature": 2.5}))
        self.assert_invalid("Max tokens", lambda: self.bot.write({"max_tokens": 0}))
        self.assert_invalid("top k", lambda: self.bot.write({"top_k": 51}))
        self.assert_invalid("Rate limits", lambda: self.bot.write({"rate_ip_per_minute": -1}))
        self.assert_invalid("#1A2B3C", lambda: self.bot.write({"widget_color": "red"}))

    def document(self, content, filename):
        return (
            self.env["chatbot.document"]
            .with_user(self.user_a)
            .create({"chatbot_id": self.bot.id, "filename": filename, "datas": base64.b64encode(content)})
        )

    def test_document_type_and_size(self):
        self.assert_invalid("unsupported file type", lambda: self.document(b"MZ\x90\x00", "setup.exe"))
        self.assert_invalid("is not a PDF", lambda: self.document(b"hello", "fake.pdf"))
        self.assert_invalid("is not a DOCX", lambda: self.document(b"hello", "fake.docx"))
        self.env["ir.config_parameter"].sudo().set_param("chatbot_platform.max_document_mb", "1")
        self.assert_invalid("larger than the 1 MB limit", lambda: self.document(b"a" * (1024 * 1024 + 1), "big.txt"))
        doc = self.document(PDF_BYTES, "ok.PDF")
        self.assertEqual((doc.mimetype, doc.name), ("application/pdf", "ok.PDF"))
        self.assertEqual(self.document(b"# Title", "notes.md").mimetype, "text/markdown")

    def test_sources_cannot_move_between_chatbots(self):
        other = self.env["chatbot.chatbot"].with_user(self.user_a).create({"name": "Other"})
        link = self.link()
        with self.assertRaises(UserError), self.env.cr.savepoint():
            link.write({"chatbot_id": other.id})
