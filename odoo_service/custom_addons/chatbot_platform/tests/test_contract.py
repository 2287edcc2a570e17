"""The addon against the Odoo <-> engine contract: the golden files of contract/ (docs/contract.md).

The engine's tests load the same files (tests/engine/test_contract.py): a change to one half that
breaks the other fails one of the two suites.
"""

import base64
import json

from odoo.tests import BaseCase, HttpCase, tagged

from ..models import chatbot_document
from ..tools import allowed_domains, api_keys, engine_client, payloads, webhooks
from .common import TEST_SECRET, ChatbotCase, load_contract


@tagged("post_install", "-at_install")
class TestContractFormats(BaseCase):
    def test_request_envelope_matches_the_contract_vectors(self):
        contract = load_contract("request_signing.json")
        for vector in contract["vectors"]:
            body = vector["body"].encode()
            envelope = webhooks.request_envelope(vector["method"], vector["target"], body)
            self.assertEqual(envelope.decode(), vector["envelope"])
            signature = webhooks.sign(contract["secret"], vector["webhook_id"], vector["timestamp"], envelope)
            self.assertEqual(signature, vector["signature"])

    def test_api_keys_match_the_contract_vectors(self):
        contract = load_contract("api_keys.json")
        spec = contract["format"]
        self.assertEqual(api_keys.BASE62_ALPHABET, spec["alphabet"])
        self.assertEqual(api_keys.KIND_PREFIXES, spec["prefixes"])
        self.assertEqual(
            (api_keys.RANDOM_LENGTH, api_keys.CHECKSUM_LENGTH, api_keys.KEY_LENGTH, api_keys.DISPLAY_PREFIX_LENGTH),
            (spec["random_length"], spec["checksum_length"], spec["length"], spec["display_prefix_length"]),
        )
        for vector in contract["valid"]:
            key, kind = vector["key"], vector["kind"]
            prefix = spec["prefixes"][kind]
            random_part = key[len(prefix) : -spec["checksum_length"]]
            self.assertEqual(api_keys.assemble(kind, random_part), key)
            self.assertEqual(api_keys.checksum(prefix, random_part), vector["checksum"])
            self.assertEqual(api_keys.parse_kind(key), kind)
            self.assertEqual(api_keys.hash_key(key), vector["sha256"])
            self.assertEqual(api_keys.display_prefix(key), vector["prefix"])
        for vector in contract["invalid"]:
            self.assertIsNone(api_keys.parse_kind(vector["key"]), vector["why"])

    def test_allowed_domains_follow_the_contract_cases(self):
        contract = load_contract("allowed_domains.json")
        for entry in contract["accept"]:
            self.assertIsNone(allowed_domains.problem(entry), entry)
        # a URL is refused as invalid; the addon only words the message differently
        reasons = {allowed_domains.URL: "invalid"}
        for case in contract["reject"]:
            found = allowed_domains.problem(case["entry"])
            self.assertEqual(reasons.get(found, found), case["reason"], case["entry"])

    def test_addon_defaults_are_the_contract_defaults(self):
        defaults = load_contract("defaults.json")
        chatbot, limits = defaults["chatbot"], defaults["limits"]
        self.assertEqual(
            (
                payloads.DEFAULT_LANGUAGE,
                payloads.DEFAULT_SYSTEM_PROMPT,
                payloads.DEFAULT_USER_TEMPLATE,
                payloads.DEFAULT_TEMPERATURE,
                payloads.DEFAULT_MAX_TOKENS,
                payloads.DEFAULT_TOP_K,
                payloads.DEFAULT_WIDGET_COLOR,
                payloads.DEFAULT_WIDGET_WELCOME,
            ),
            (
                chatbot["language"],
                chatbot["system_prompt"],
                chatbot["user_template"],
                chatbot["temperature"],
                chatbot["max_tokens"],
                chatbot["top_k"],
                chatbot["widget_color"],
                chatbot["widget_welcome"],
            ),
        )
        self.assertEqual(
            (payloads.CRAWL_MAX_DEPTH, payloads.CRAWL_MAX_PAGES, payloads.MAX_DOCUMENT_BYTES),
            (limits["crawl_max_depth"], limits["crawl_max_pages"], limits["max_document_bytes"]),
        )
        self.assertEqual(chatbot_document.DEFAULT_MAX_MB * 1024 * 1024, limits["max_document_bytes"])
        bounds = defaults["chatbot_bounds"]
        self.assertEqual(
            [list(payloads.TEMPERATURE_RANGE), list(payloads.MAX_TOKENS_RANGE), list(payloads.TOP_K_RANGE)],
            [bounds["temperature"], bounds["max_tokens"], bounds["top_k"]],
        )
        self.assertEqual(webhooks.TOLERANCE_SECONDS, defaults["signing"]["timestamp_tolerance_seconds"])

    def test_engine_answers_are_classified_as_the_status_table_says(self):
        table = load_contract("status_codes.json")
        self.assertEqual(
            set(table["outcomes"]),
            {engine_client.DELIVERED, engine_client.SUPERSEDED, engine_client.PERMANENT, engine_client.RETRY},
        )
        for status, outcome in table["by_status"].items():
            self.assertEqual(engine_client.classify(int(status)), outcome, status)
        for reason, outcome in table["reasons"].items():
            body = {"applied": False, "reason": reason, "detail": "x"}
            self.assertEqual(engine_client.classify(200, body), outcome, reason)
        for answer in table["answers"]:
            if answer["status"] is not None:
                self.assertEqual(engine_client.classify(answer["status"], answer.get("body")), answer["outcome"])

    def test_payload_builders_produce_the_canonical_bodies(self):
        contract = load_contract("payloads.json")
        for name in ("chatbot_put", "chatbot_put_defaults"):
            body = contract[name]["body"]
            built = payloads.chatbot_payload(
                version=body["version"],
                tenant=body["tenant"],
                name=body["name"],
                active=body["active"],
                language=body["language"],
                system_prompt="" if name.endswith("defaults") else body["prompts"]["system"],
                user_template="" if name.endswith("defaults") else body["prompts"]["user_template"],
                model=body["generation"]["model"] or "",
                temperature=body["generation"]["temperature"],
                max_tokens=body["generation"]["max_tokens"],
                top_k=body["generation"]["top_k"],
                allowed_domains="\n".join(body["allowed_domains"]),
                api_keys=[
                    payloads.api_key_entry(
                        key["id"],
                        key["kind"],
                        key["prefix"],
                        key["sha256"],
                        payloads.parse_utc(key["expires_at"]),
                    )
                    for key in body["api_keys"]
                ],
                key_per_minute=body["rate_limits"]["key_per_minute"] or 0,
                ip_per_minute=body["rate_limits"]["ip_per_minute"] or 0,
                widget_title="" if name.endswith("defaults") else body["widget"]["title"],
                widget_color="" if name.endswith("defaults") else body["widget"]["color"],
                widget_welcome=body["widget"]["welcome"],
                widget_suggestions="\n".join(body["widget"]["suggestions"]),
                handoff_enabled=body["widget"]["handoff_enabled"],
                handoff_phrases="\n".join(body["widget"]["handoff_phrases"]),
                handoff_message=body["widget"]["handoff_message"],
            )
            self.assertEqual(built, body, name)
        document = contract["source_put_document"]["body"]
        built = payloads.document_payload(
            version=document["version"],
            name=document["name"],
            filename=document["document"]["filename"],
            mimetype=document["document"]["mimetype"],
            sha256=document["document"]["sha256"],
        )
        # the sender adds the file at delivery time (models/chatbot_outbox.py)
        built["document"]["content_base64"] = document["document"]["content_base64"]
        self.assertEqual(built, document)
        link = contract["source_put_link"]["body"]
        self.assertEqual(
            payloads.link_payload(version=link["version"], name=link["name"], **link["link"]),
            link,
        )
        for name in ("chatbot_delete", "source_delete"):
            self.assertEqual(payloads.delete_payload(contract[name]["body"]["version"]), contract[name]["body"])


@tagged("post_install", "-at_install")
class TestContractDelivery(ChatbotCase):
    """The outbox acts on each answer of the status table (the engine stand-in gives it)."""

    def test_each_answer_of_the_status_table_ends_the_row_as_its_outcome_says(self):
        table = load_contract("status_codes.json")
        expected = {
            "delivered": ("done", "synced"),
            "superseded": ("cancelled", "failed"),
            "permanent": ("failed", "failed"),
            "retry": ("retrying", "retrying"),
        }
        for answer in table["answers"]:
            if answer["status"] is None:
                continue
            with self.subTest(case=answer["case"]):
                bot = self.create_chatbot(name="Bot %s" % answer["case"])
                self.run_postcommit()
                self.assertEqual(bot.sync_state, "synced")
                doc = self.create_document(bot)
                if "error" in answer:
                    body = {"error": answer["error"], "detail": "the engine's words for %s" % answer["case"]}
                else:
                    body = dict(answer["body"], detail="the engine's words for %s" % answer["case"])
                self.engine.responses.append((answer["status"], body))
                self.run_postcommit()
                row_state, sync_state = expected[answer["outcome"]]
                self.assertEqual((self.rows(doc).state, doc.sync_state), (row_state, sync_state))
                if sync_state in ("failed", "retrying"):
                    self.assertIn("the engine's words for %s" % answer["case"], doc.sync_error)
                if sync_state == "failed":
                    self.assertEqual(doc.state, "failed", "the engine will never index it")

    def test_a_source_of_another_chatbot_shows_failed_with_the_engines_reason_on_its_form(self):
        answer = {a["case"]: a for a in load_contract("status_codes.json")["answers"]}["source_of_another_chatbot"]
        bot = self.create_chatbot()
        doc = self.create_document(bot)
        reason = "this source id belongs to another chatbot"
        self.engine.responses.extend(
            [(200, {"applied": True}), (answer["status"], {"error": answer["error"], "detail": reason})]
        )
        self.run_postcommit()
        self.assertEqual((doc.sync_state, doc.state), ("failed", "failed"))
        self.assertEqual(doc.sync_error, "HTTP %d: %s - %s" % (answer["status"], answer["error"], reason))
        form = self.env["chatbot.document"].get_view(view_type="form")["arch"]
        self.assertIn('<field name="sync_error"', form, "the reason is on the document form")


@tagged("post_install", "-at_install")
class TestContractStatusCallback(HttpCase):
    def test_the_canonical_status_callback_is_applied(self):
        self.env["ir.config_parameter"].sudo().set_param("chatbot_platform.webhook_secret", TEST_SECRET)
        secret = self.env["chatbot.outbox"]._webhook_secret()
        contract = load_contract("payloads.json")["status_callback"]
        expected = {a["case"]: a for a in load_contract("status_codes.json")["status_callback"]["answers"]}
        bot = self.env["chatbot.chatbot"].create({"name": "Contract bot"})
        doc = self.env["chatbot.document"].create(
            {"chatbot_id": bot.id, "filename": "w.txt", "datas": base64.b64encode(b"warranty")}
        )
        sample = contract["body"]
        payload = dict(sample, chatbot=bot.uuid, source=doc.uuid, version=doc.version)
        body = json.dumps(payload).encode()
        headers = webhooks.signed_headers(secret, webhooks.new_message_id(), body)
        headers["Content-Type"] = "application/json"
        response = self.url_open(contract["path"], data=body, headers=headers)
        self.assertEqual(response.status_code, expected["applied"]["status"])
        self.assertEqual(response.json(), expected["applied"]["body"])
        doc.invalidate_recordset()
        self.assertEqual(doc.state, sample["state"])
        self.assertEqual(
            (doc.progress_done, doc.progress_total), (sample["progress"]["done"], sample["progress"]["total"])
        )
        unknown = dict(payload, source="00000000-0000-4000-8000-000000000000")
        body = json.dumps(unknown).encode()
        headers = webhooks.signed_headers(secret, webhooks.new_message_id(), body)
        response = self.url_open(contract["path"], data=body, headers=headers)
        self.assertEqual(response.status_code, expected["unknown_source"]["status"])
        self.assertEqual(response.json()["error"], expected["unknown_source"]["error"])
