import base64
import json
import os

from odoo.exceptions import AccessError, UserError
from odoo.tests import HttpCase, tagged

from ..tools import webhooks
from .common import TEST_SECRET, ChatbotCase, load_contract

# The engine's answers as the contract gives them (contract/payloads.json; the engine's tests check a
# real answer has the same keys: tests/engine/test_contract.py).
PAYLOADS = load_contract("payloads.json")
SESSIONS = PAYLOADS["sessions_report"]["answer"]
TRANSCRIPT = PAYLOADS["transcript_report"]["answer"]
UNANSWERED = PAYLOADS["unanswered_report"]["answer"]
DAILY = PAYLOADS["daily_report"]["answer"]


def daily(*days):
    return {**DAILY, "days": list(days)}


def day(date, questions, unanswered=0, up=0, down=0, p50=100, **mix):
    return {
        **DAILY["days"][0],
        "day": date,
        "questions": questions,
        "sessions": max(1, questions // 2),
        "unanswered": unanswered,
        "thumbs_up": up,
        "thumbs_down": down,
        "p50_latency_ms": p50,
        "generators": mix or {"extractive": questions},
    }


@tagged("post_install", "-at_install")
class TestOperations(ChatbotCase):
    """Conversations, unanswered questions, analytics and bulk upload, two companies."""

    def test_conversations_are_read_page_by_page_with_filters(self):
        bot = self.create_chatbot(name="Shop bot")
        path = "/internal/v1/chatbots/%s/sessions" % bot.uuid
        self.engine.json_routes[("GET", path)] = (200, SESSIONS)
        action = bot.with_user(self.user_a).action_view_conversations()
        browser = self.env["chatbot.conversation.browser"].with_user(self.user_a).browse(action["res_id"])
        request = self.engine.requests[-1]
        self.assertTrue(request["signed"])
        self.assertEqual(request["path"], path)
        self.assertIn("limit=50", request["query"])
        self.assertIn("offset=0", request["query"])
        self.assertIn("since=", request["query"])
        (line,) = browser.line_ids
        self.assertEqual((line.turns, line.thumbs_up, line.unanswered_count, line.generators), (2, 1, 1, "extractive"))
        self.assertTrue(line.has_unanswered)
        self.assertEqual(str(line.last_active_at), "2026-11-20 10:05:00")
        self.assertEqual(browser.page_label, "1-1 of 51")
        self.assertFalse(self.env["chatbot.conversation"].sudo().search_count([("browser_id", "!=", browser.id)]))

        browser.write({"rating": "down", "unanswered": "yes"})
        browser.action_next()
        query = self.engine.requests[-1]["query"]
        for part in ("offset=50", "rating=down", "unanswered=true"):
            self.assertIn(part, query)
        browser.write({"unanswered": "no", "rating": "none"})
        browser.action_search()
        query = self.engine.requests[-1]["query"]
        for part in ("offset=0", "rating=none", "unanswered=false"):
            self.assertIn(part, query)

        browser.date_to = browser.date_from.replace(year=browser.date_from.year - 1)
        with self.assertRaises(UserError):
            browser.action_search()

        self.engine.json_routes[("GET", path)] = (503, {"error": "unavailable", "detail": "database down"})
        browser.date_to = False
        with self.assertRaises(UserError) as caught:
            browser.action_search()
        self.assertIn("database down", str(caught.exception))

    def test_transcript_shows_sources_feedback_and_unanswered_turns_escaped(self):
        bot = self.create_chatbot()
        session = TRANSCRIPT["session_id"]
        self.engine.json_routes[("GET", "/internal/v1/chatbots/%s/sessions/%s" % (bot.uuid, session))] = (
            200,
            TRANSCRIPT,
        )
        action = self.env["chatbot.conversation.transcript"].with_user(self.user_a)._open(bot, session)
        transcript = self.env["chatbot.conversation.transcript"].with_user(self.user_a).browse(action["res_id"])
        html = str(transcript.transcript_html)
        for expected in ("Handbook.pdf, p. 3", "return within 30 days", "👎", "wanted the address", "Unanswered"):
            self.assertIn(expected, html)
        self.assertIn("How do &lt;b&gt;returns&lt;/b&gt; work?", html)
        self.assertNotIn("<script>", html)
        self.assertEqual(transcript.handoff_reason, "button")
        self.engine.json_routes[("GET", "/internal/v1/chatbots/%s/sessions/%s" % (bot.uuid, session))] = (
            404,
            {"error": "not_found", "detail": "no such session"},
        )
        with self.assertRaises(UserError):
            self.env["chatbot.conversation.transcript"].with_user(self.user_a)._open(bot, session)

    def test_another_company_cannot_read_a_chatbots_conversations(self):
        bot = self.create_chatbot()  # company A
        self.engine.json_routes[("GET", "/internal/v1/chatbots/%s/sessions" % bot.uuid)] = (200, SESSIONS)
        with self.assertRaises(AccessError):
            bot.with_user(self.user_b).action_view_conversations()
        with self.assertRaises(AccessError):
            self.env["chatbot.conversation.transcript"].with_user(self.user_b)._open(
                bot.with_user(self.user_b), TRANSCRIPT["session_id"]
            )
        with self.assertRaises(AccessError):
            self.env["chatbot.unanswered.report"].with_user(self.user_b).create({"chatbot_id": bot.id}).action_load()
        self.assertFalse(
            [r for r in self.engine.requests if r["path"].startswith("/internal/v1/chatbots/%s/" % bot.uuid)]
        )
        # user A's page is not visible to user B (transient records belong to their creator)
        action = bot.with_user(self.user_a).action_view_conversations()
        browsers = (
            self.env["chatbot.conversation.browser"].with_user(self.user_b).search([("id", "=", action["res_id"])])
        )
        self.assertFalse(browsers)

    def test_unanswered_questions_mark_handled_and_qa_document(self):
        bot = self.create_chatbot()
        self.run_postcommit()
        base = "/internal/v1/chatbots/%s/unanswered" % bot.uuid
        self.engine.json_routes[("GET", base)] = (200, UNANSWERED)
        self.engine.json_routes[("POST", base + "/handled")] = (200, {"handled": 2})
        action = bot.with_user(self.user_a).action_view_unanswered()
        report = self.env["chatbot.unanswered.report"].with_user(self.user_a).browse(action["res_id"])
        self.assertEqual(report.group_ids.mapped("question"), ["Can I bring my dog?", "Who won the 1998 World Cup?"])
        dogs, cup = report.group_ids
        self.assertEqual((dogs.count, dogs.variant_count), (3, 2))
        self.assertIn("Are dogs allowed?", dogs.variants)

        cup.action_mark_handled()
        request = self.engine.requests[-1]
        self.assertEqual((request["method"], request["path"]), ("POST", base + "/handled"))
        self.assertTrue(request["signed"])
        self.assertEqual(request["json"], {"questions": ["Who won the 1998 World Cup?"]})
        self.assertEqual(report.group_ids, dogs)

        wizard_action = dogs.action_create_qa()
        wizard = (
            self.env["chatbot.qa.wizard"]
            .with_user(self.user_a)
            .with_context(wizard_action["context"])
            .create({"answer": "Yes: dogs on a leash are welcome in every store."})
        )
        self.engine.clear()
        self.engine.json_routes[("POST", base + "/handled")] = (200, {"handled": 2})
        doc_action = wizard.action_create()
        document = self.env["chatbot.document"].browse(doc_action["res_id"])
        text = base64.b64decode(document.datas).decode()
        self.assertEqual(
            text, "# Can I bring my dog? / Are dogs allowed?\n\nYes: dogs on a leash are welcome in every store.\n"
        )
        self.assertEqual(
            (document.chatbot_id, document.qa_question, document.mimetype),
            (bot, "Can I bring my dog?", "text/markdown"),
        )
        self.assertFalse(report.group_ids)
        self.assertFalse(self.engine.requests, "nothing is sent before the commit")
        self.run_postcommit()
        sent = {(r["method"], r["path"]): r for r in self.engine.requests}
        self.assertEqual(
            sent[("POST", base + "/handled")]["json"], {"questions": ["Can I bring my dog?", "Are dogs allowed?"]}
        )
        put = sent[("PUT", "/internal/v1/chatbots/%s/sources/%s" % (bot.uuid, document.uuid))]
        self.assertEqual(put["json"]["document"]["mimetype"], "text/markdown")  # indexed like any document

        with self.assertRaises(UserError):
            self.env["chatbot.qa.wizard"].with_user(self.user_a).create(
                {"chatbot_id": bot.id, "question": "Q?", "answer": "   "}
            ).action_create()
        self.engine.json_routes[("POST", base + "/handled")] = (
            422,
            {"error": "invalid_request", "detail": "questions: empty"},
        )
        self.engine.json_routes[("GET", base)] = (200, UNANSWERED)
        report.action_load()
        self.assertEqual(len(report.group_ids), 2)
        with self.assertRaises(UserError) as caught:
            report.group_ids[:1].action_mark_handled()
        self.assertIn("questions: empty", str(caught.exception))

    def test_analytics_rows_per_chatbot_and_company(self):
        bot_a = self.create_chatbot(name="A bot")
        bot_b = self.create_chatbot(name="B bot", user=self.user_b)
        self.engine.json_routes[("GET", "/internal/v1/chatbots/%s/daily" % bot_a.uuid)] = (
            200,
            daily(
                day("2026-11-19", 10, unanswered=2, up=3, down=1, p50=120), day("2026-11-20", 4, ollama=3, extractive=1)
            ),
        )
        self.engine.json_routes[("GET", "/internal/v1/chatbots/%s/daily" % bot_b.uuid)] = (
            200,
            daily(day("2026-11-20", 7)),
        )
        Usage = self.env["chatbot.usage.daily"]
        action = Usage.with_user(self.user_a).action_refresh_and_open()
        self.assertEqual(action["res_model"], "chatbot.usage.daily")
        self.assertEqual(
            {r["path"] for r in self.engine.requests}, {"/internal/v1/chatbots/%s/daily" % bot_a.uuid}
        )  # only the user's companies are asked for
        rows = Usage.with_user(self.user_a).search([])
        self.assertEqual(rows.chatbot_id, bot_a)
        first = rows.filtered(lambda r: str(r.day) == "2026-11-19")
        self.assertEqual((first.questions, first.unanswered, first.thumbs_up, first.thumbs_down), (10, 2, 3, 1))
        self.assertAlmostEqual(first.unanswered_rate, 20.0)
        self.assertEqual(first.p50_latency_ms, 120)
        second = rows - first
        self.assertEqual((second.ollama_answers, second.extractive_answers, second.openai_answers), (3, 1, 0))

        Usage.with_user(self.user_b).action_refresh_and_open()
        self.assertEqual(Usage.with_user(self.user_b).search([]).chatbot_id, bot_b)
        self.assertEqual(Usage.with_user(self.user_a).search([]).chatbot_id, bot_a)  # B's rows stay hidden from A
        groups = Usage.with_user(self.manager).read_group([], ["questions:sum"], ["company_id"])
        self.assertEqual(
            {g["company_id"][0]: g["questions"] for g in groups}, {self.company_a.id: 14, self.company_b.id: 7}
        )
        # a refresh replaces the window: no duplicates, vanished days go
        self.engine.json_routes[("GET", "/internal/v1/chatbots/%s/daily" % bot_a.uuid)] = (
            200,
            daily(day("2026-11-20", 5)),
        )
        bot_a.with_user(self.user_a).action_view_usage()
        rows = Usage.with_user(self.user_a).search([])
        self.assertEqual([(str(r.day), r.questions) for r in rows], [("2026-11-20", 5)])
        with self.assertRaises(AccessError):
            bot_b.with_user(self.user_a).action_view_usage()

    def test_bulk_upload_flags_duplicates_by_sha256(self):
        bot = self.create_chatbot()
        self.create_document(bot, content=b"Returns within 30 days.", filename="returns.txt")
        other_company_bot = self.create_chatbot(name="Other", user=self.user_b)
        self.create_document(other_company_bot, content=b"Shipping is free.", filename="ship.txt", user=self.user_b)

        def attachment(name, raw):
            return self.env["ir.attachment"].with_user(self.user_a).create({"name": name, "raw": raw})

        files = (
            attachment("returns-copy.txt", b"Returns within 30 days.")
            | attachment("shipping.txt", b"Shipping is free.")  # same as another company's: not a duplicate here
            | attachment("warranty.md", b"# Warranty\nTwo years.")
            | attachment("warranty-again.md", b"# Warranty\nTwo years.")
        )
        wizard = (
            self.env["chatbot.document.upload.wizard"]
            .with_user(self.user_a)
            .create({"chatbot_id": bot.id, "attachment_ids": [(6, 0, files.ids)]})
        )
        wizard.action_upload()
        self.assertEqual(sorted(wizard.document_ids.mapped("filename")), ["shipping.txt", "warranty.md"])
        html = str(wizard.result_html)
        self.assertIn("2 documents created, 2 duplicates skipped", html)
        self.assertIn("returns-copy.txt: same content as returns.txt", html)
        self.assertIn("warranty-again.md: same content as warranty.md", html)
        self.assertEqual(len(bot.document_ids), 3)
        self.assertFalse(files.exists())
        self.run_postcommit()
        prefix = "/internal/v1/chatbots/%s/sources/" % bot.uuid
        puts = [r for r in self.engine.requests if r["method"] == "PUT" and r["path"].startswith(prefix)]
        self.assertEqual(len(puts), 3)  # the new two and the first document, each once

        bad = (
            self.env["chatbot.document.upload.wizard"]
            .with_user(self.user_a)
            .create({"chatbot_id": bot.id, "attachment_ids": [(6, 0, attachment("virus.exe", b"MZ").ids)]})
        )
        with self.assertRaises(Exception):  # noqa: B017 - the document's own ValidationError
            with self.env.cr.savepoint():
                bad.action_upload()
        self.assertEqual(len(bot.document_ids), 3, "a refused file creates nothing")
        mine = self.env["ir.attachment"].with_user(self.user_b).create({"name": "b.txt", "raw": b"B's file"})
        with self.assertRaises(AccessError):
            self.env["chatbot.document.upload.wizard"].with_user(self.user_b).create(
                {"chatbot_id": bot.id, "attachment_ids": [(6, 0, mine.ids)]}
            ).action_upload()


@tagged("post_install", "-at_install")
class TestHandoff(HttpCase):
    """The engine's handoff notice becomes an activity for the chatbot's owner (no CRM here)."""

    URL = "/chatbot_platform/hooks/handoff"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["ir.config_parameter"].sudo().set_param("chatbot_platform.webhook_secret", TEST_SECRET)
        cls.secret = os.environ.get("WEBHOOK_SECRET") or TEST_SECRET
        cls.company_a = cls.env["res.company"].create({"name": "Handoff A"})
        cls.owner = cls.env["res.users"].create(
            {
                "name": "Owner A",
                "login": "handoff_owner_a",
                "company_id": cls.company_a.id,
                "company_ids": [(6, 0, cls.company_a.ids)],
                "groups_id": [(6, 0, [cls.env.ref("chatbot_platform.chatbot_platform_group_user").id])],
            }
        )
        cls.bot = cls.env["chatbot.chatbot"].create(
            {"name": "Help bot", "company_id": cls.company_a.id, "user_id": cls.owner.id}
        )
        cls.other = cls.env["chatbot.chatbot"].create({"name": "Other bot"})

    def notice(self, **overrides):
        # the contract's canonical notice (contract/payloads.json handoff_notice), for this chatbot
        payload = dict(load_contract("payloads.json")["handoff_notice"]["body"], chatbot=self.bot.uuid)
        payload.update(overrides)
        return payload

    def post(self, payload, secret=None, raw=None):
        body = raw if raw is not None else json.dumps(payload).encode()
        headers = webhooks.signed_headers(secret or self.secret, webhooks.new_message_id(), body)
        headers["Content-Type"] = "application/json"
        return self.url_open(self.URL, data=body, headers=headers)

    def test_a_notice_creates_one_activity_with_the_transcript(self):
        self.assertIsNone(self.env.get("crm.lead"), "crm is a stub in this Odoo tree: the activity path runs")
        response = self.post(self.notice())
        self.assertEqual(
            response.status_code, load_contract("payloads.json")["handoff_notice"]["status"], response.text
        )
        handoff = self.env["chatbot.handoff"].search([("session_uuid", "=", self.notice()["session"])])
        self.assertEqual(len(handoff), 1)
        activity = handoff.activity_id
        self.assertEqual(
            (activity.res_model, activity.res_id, activity.user_id), ("chatbot.chatbot", self.bot.id, self.owner)
        )
        self.assertIn("asks for a person", activity.summary)
        self.assertIn(self.notice()["note"], str(activity.note))
        self.assertIn("Where is my parcel?", str(activity.note))
        attachment = handoff.attachment_id
        self.assertEqual(activity.attachment_ids, attachment)
        self.assertIn(b"Visitor: Where is my parcel?", base64.b64decode(attachment.datas))
        self.assertEqual(handoff.company_id, self.company_a)

        # a retried delivery: the same handoff, no second activity
        self.assertEqual(self.post(self.notice()).status_code, 200)
        self.assertEqual(self.env["chatbot.handoff"].search_count([("session_uuid", "=", self.notice()["session"])]), 1)
        self.assertEqual(len(self.bot.activity_ids), 1)

        # the owner (company A) sees it; a user of another company sees neither it, its transcript
        # file nor the activity
        self.assertEqual(self.env["chatbot.handoff"].with_user(self.owner).search([]), handoff)
        company_b = self.env["res.company"].create({"name": "Handoff B"})
        outsider = self.env["res.users"].create(
            {
                "name": "User B",
                "login": "handoff_user_b",
                "company_id": company_b.id,
                "company_ids": [(6, 0, company_b.ids)],
                "groups_id": [(6, 0, [self.env.ref("chatbot_platform.chatbot_platform_group_user").id])],
            }
        )
        self.assertFalse(self.env["chatbot.handoff"].with_user(outsider).search([]))
        with self.assertRaises(AccessError):
            handoff.with_user(outsider).read(["transcript"])
        with self.assertRaises(AccessError):
            attachment.with_user(outsider).read(["datas"])
        self.assertFalse(self.env["mail.activity"].with_user(outsider).search([("id", "=", activity.id)]))

    def test_bad_notices_are_refused(self):
        self.assertEqual(self.post(self.notice(), secret="whsec_" + "A" * 44).status_code, 401)
        self.assertEqual(self.post(None, raw=b"{not json").status_code, 400)
        self.assertEqual(self.post({"chatbot": self.bot.uuid}).status_code, 400)
        self.assertEqual(self.post(self.notice(transcript="text")).status_code, 400)
        self.assertEqual(self.post(self.notice(chatbot="5e0d0000-0000-4000-8000-000000000000")).status_code, 404)
        self.assertEqual(self.post(None, raw=b"x" * (600 * 1024)).status_code, 413)
        self.assertFalse(self.env["chatbot.handoff"].search([]))
