from lxml import etree
from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged
from odoo.tools.safe_eval import safe_eval

from .common import ChatbotCase


@tagged("post_install", "-at_install")
class TestTenantAdminAndSourceForms(ChatbotCase):
    """Two tenants (companies A and B), and a third company C that a user of A and B cannot see."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_c = cls.env["res.company"].create({"name": "Tenant C"})
        cls.admin_a = new_test_user(
            cls.env,
            login="chatbot_admin_a",
            groups="base.group_user,chatbot_platform.chatbot_platform_group_admin",
            company_id=cls.company_a.id,
            company_ids=[(6, 0, cls.company_a.ids)],
        )
        cls.user_ab = new_test_user(
            cls.env,
            login="chatbot_user_ab",
            groups="base.group_user,chatbot_platform.chatbot_platform_group_user",
            company_id=cls.company_a.id,
            company_ids=[(6, 0, (cls.company_a | cls.company_b).ids)],
        )
        cls.bot_a = cls.env["chatbot.chatbot"].with_user(cls.user_a).create({"name": "Bot A"})
        cls.bot_b = cls.env["chatbot.chatbot"].with_user(cls.user_b).create({"name": "Bot B"})
        cls.bot_c = cls.env["chatbot.chatbot"].create({"name": "Bot C", "company_id": cls.company_c.id})

    def _form_field(self, model, user, companies):
        """The chatbot_id field of `model`'s form as the web client gets it for `user`."""
        env = self.env(user=user, context={"allowed_company_ids": companies.ids})
        views = env[model].get_views([(False, "form")])
        arch = etree.fromstring(views["views"]["form"]["arch"])
        (node,) = arch.xpath("//field[@name='chatbot_id']")
        return env, node, views["models"][model]["fields"]["chatbot_id"]

    def test_new_source_form_offers_the_chatbots_of_the_users_companies_and_creates_none(self):
        for model in ("chatbot.document", "chatbot.link"):
            env, node, field = self._form_field(model, self.user_ab, self.company_a | self.company_b)
            # a new record: no company yet (it follows the chatbot)
            domain = safe_eval(
                node.get("domain") or field.get("domain") or "[]",
                {"allowed_company_ids": (self.company_a | self.company_b).ids, "company_id": False, "id": False},
            )
            offered = env["chatbot.chatbot"].search(domain)
            self.assertIn(self.bot_a, offered, model)
            self.assertIn(self.bot_b, offered, model)
            self.assertNotIn(self.bot_c, offered, model)
            # creating a chatbot from that field is not offered
            options = safe_eval(node.get("options") or "{}")
            self.assertTrue(options.get("no_create") and options.get("no_quick_create"), model)
            # only the companies the user has switched on
            env, node, field = self._form_field(model, self.user_ab, self.company_b)
            domain = safe_eval(
                node.get("domain") or field.get("domain") or "[]",
                {"allowed_company_ids": self.company_b.ids, "company_id": False, "id": False},
            )
            self.assertEqual(env["chatbot.chatbot"].search(domain), self.bot_b, model)

    def test_source_in_another_allowed_company_gets_that_company(self):
        doc = (
            self.env["chatbot.document"]
            .with_user(self.user_ab)
            .with_context(allowed_company_ids=(self.company_a | self.company_b).ids)
            .create({"chatbot_id": self.bot_b.id, "filename": "b.txt", "datas": "QQ=="})
        )
        self.assertEqual(doc.company_id, self.company_b)

    def test_name_is_optional_and_filled_from_the_file_name_or_url(self):
        for model in ("chatbot.document", "chatbot.link"):
            env, _node, _field = self._form_field(model, self.user_a, self.company_a)
            self.assertFalse(env[model].fields_get(["name"])["name"]["required"], model)
            arch = etree.fromstring(env[model].get_views([(False, "form")])["views"]["form"]["arch"])
            self.assertNotIn(arch.xpath("//field[@name='name']")[0].get("required"), ("1", "True"), model)
        doc = (
            self.env["chatbot.document"]
            .with_user(self.user_a)
            .create({"chatbot_id": self.bot_a.id, "filename": "Price list.txt", "datas": "QQ=="})
        )
        link = (
            self.env["chatbot.link"]
            .with_user(self.user_a)
            .create({"chatbot_id": self.bot_a.id, "url": " https://a.example.com/faq "})
        )
        self.assertEqual((doc.name, link.name), ("Price list.txt", "https://a.example.com/faq"))

    def test_tenant_admin_has_full_control_inside_its_companies_only(self):
        admin = self.admin_a
        bots = self.env["chatbot.chatbot"].with_user(admin).search([])
        self.assertEqual(bots, self.bot_a)
        with self.assertRaises(AccessError):
            self.bot_b.with_user(admin).read(["name"])
        # deliveries of its own company, not of others; it may retry them
        rows = self.env["chatbot.outbox"].with_user(admin).search([])
        self.assertTrue(rows)
        self.assertEqual(set(rows.mapped("company_id").ids), {self.company_a.id})
        rows.filtered(lambda r: r.state == "pending").write({"state": "failed"})
        rows.action_retry()
        self.assertEqual(set(rows.mapped("state")), {"pending"})
        # the reconcile button and the deliveries menu are there for it, not for a plain user
        form = self.env["chatbot.chatbot"].with_user(admin).get_views([(False, "form")])["views"]["form"]["arch"]
        self.assertIn("action_reconcile", form)
        user_form = (
            self.env["chatbot.chatbot"].with_user(self.user_a).get_views([(False, "form")])["views"]["form"]["arch"]
        )
        self.assertNotIn("action_reconcile", user_form)
        menu = self.env.ref("chatbot_platform.chatbot_outbox_menu")
        self.assertIn(menu.id, self.env["ir.ui.menu"].with_user(admin)._visible_menu_ids())
        self.assertNotIn(menu.id, self.env["ir.ui.menu"].with_user(self.user_a)._visible_menu_ids())
        # it deletes its own chatbots, prompts and keys, never another company's
        key, _plain = self.env["chatbot.api.key"].with_user(admin)._generate(self.bot_a, "secret", "ops")
        key.with_user(admin).unlink()
        with self.assertRaises(AccessError), self.env.cr.savepoint():
            self.bot_b.with_user(admin).unlink()
        self.bot_a.with_user(admin).unlink()
        self.assertFalse(self.bot_a.exists())
        self.assertTrue(self.bot_b.exists())
        # a plain user still cannot delete a chatbot; the platform operator sees every company
        with self.assertRaises(AccessError), self.env.cr.savepoint():
            self.bot_b.with_user(self.user_b).unlink()
        self.assertIn(self.bot_c, self.env["chatbot.chatbot"].with_user(self.manager).search([]))
