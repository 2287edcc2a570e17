import hashlib
import random
import re
import string
import zlib
from datetime import datetime

from odoo.tests import BaseCase, tagged

from ..tools import api_keys, backoff, payloads, webhooks

SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
KEY_RE = re.compile(r"^cbp_(pk|sk)_[0-9A-Za-z]{32}[0-9A-Za-z]{6}$")


@tagged("post_install", "-at_install")
class TestWebhookSigning(BaseCase):
    def test_standard_webhooks_test_vector(self):
        self.assertEqual(webhooks.sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY), SPEC_SIGNATURE)
        headers = {"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TS), "webhook-signature": SPEC_SIGNATURE}
        self.assertEqual(webhooks.verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TS + 10), SPEC_ID)

    def test_verify_rejects_tampering_wrong_secret_and_stale_timestamps(self):
        headers = webhooks.signed_headers(SPEC_SECRET, "msg_1", b"{}", timestamp=1000)
        self.assertEqual(webhooks.verify(SPEC_SECRET, headers, b"{}", now=1000), "msg_1")
        with self.assertRaises(webhooks.WebhookVerificationError):
            webhooks.verify(SPEC_SECRET, headers, b'{"x":1}', now=1000)
        other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
        with self.assertRaises(webhooks.WebhookVerificationError):
            webhooks.verify(other, headers, b"{}", now=1000)
        self.assertEqual(webhooks.verify(SPEC_SECRET, headers, b"{}", now=1300), "msg_1")
        for now in (1301, 699):  # more than 300 s late, or from the future
            with self.assertRaises(webhooks.WebhookVerificationError):
                webhooks.verify(SPEC_SECRET, headers, b"{}", now=now)
        with self.assertRaises(webhooks.WebhookVerificationError):
            webhooks.verify(SPEC_SECRET, {"webhook-id": "msg_1"}, b"{}", now=1000)

    def test_signed_headers_do_not_verify_for_another_method_or_path(self):
        body = b'{"version":2}'
        envelope = webhooks.request_envelope("DELETE", "/internal/v1/chatbots/B/sources/S", body)
        headers = webhooks.signed_headers(SPEC_SECRET, "msg_3", envelope, timestamp=1000)
        self.assertEqual(webhooks.verify(SPEC_SECRET, headers, envelope, now=1000), "msg_3")
        for method, target in (("DELETE", "/internal/v1/chatbots/A"), ("PUT", "/internal/v1/chatbots/B/sources/S")):
            with self.assertRaises(webhooks.WebhookVerificationError):
                webhooks.verify(SPEC_SECRET, headers, webhooks.request_envelope(method, target, body), now=1000)

    def test_verify_accepts_any_of_several_signatures_and_any_header_case(self):
        good = webhooks.signed_headers(SPEC_SECRET, "msg_2", b"[]", timestamp=50)
        headers = {
            "Webhook-Id": "msg_2",
            "Webhook-Timestamp": "50",
            "Webhook-Signature": "v1,bm9wZQ== " + good["webhook-signature"],
        }
        self.assertEqual(webhooks.verify(SPEC_SECRET, headers, b"[]", now=60), "msg_2")

    def test_secret_format(self):
        for bad in ("", "abc", "whsec_!!!", "whsec_" + "QUJD"):
            with self.assertRaises(ValueError):
                webhooks.secret_bytes(bad)


@tagged("post_install", "-at_install")
class TestApiKeyFormat(BaseCase):
    def test_generated_keys_follow_the_contract(self):
        seen = set()
        for kind, prefix in (("publishable", "cbp_pk_"), ("secret", "cbp_sk_")):
            for _ in range(50):
                key = api_keys.generate(kind)
                self.assertRegex(key, KEY_RE)
                self.assertTrue(key.startswith(prefix))
                random_part, check = key[7:39], key[39:]
                # checksum recomputed from the contract: base62(crc32(prefix + random)), 6 chars
                crc = zlib.crc32((prefix + random_part).encode())
                alphabet = string.digits + string.ascii_uppercase + string.ascii_lowercase
                digits = ""
                while crc:
                    crc, rem = divmod(crc, 62)
                    digits = alphabet[rem] + digits
                self.assertEqual(check, digits.rjust(6, "0"))
                self.assertEqual(api_keys.parse_kind(key), kind)
                self.assertEqual(api_keys.display_prefix(key), key[:12])
                seen.add(key)
        self.assertEqual(len(seen), 100)

    def test_parse_rejects_typos_and_foreign_strings(self):
        key = api_keys.generate("secret")
        flipped = key[:20] + ("A" if key[20] != "A" else "B") + key[21:]
        self.assertIsNone(api_keys.parse_kind(flipped))
        self.assertIsNone(api_keys.parse_kind(key[:-1]))
        self.assertIsNone(api_keys.parse_kind("cbp_xx_" + key[7:]))
        self.assertIsNone(api_keys.parse_kind(None))

    def test_hash_is_sha256_hex_of_the_full_key(self):
        self.assertEqual(api_keys.hash_key("cbp_pk_abc"), hashlib.sha256(b"cbp_pk_abc").hexdigest())
        self.assertEqual(len(api_keys.hash_key(api_keys.generate("secret"))), 64)

    def test_derived_keys_are_deterministic_and_well_formed(self):
        one = api_keys.derive("secret", b"k" * 32, "label")
        self.assertEqual(one, api_keys.derive("secret", b"k" * 32, "label"))
        self.assertNotEqual(one, api_keys.derive("secret", b"k" * 32, "other"))
        self.assertNotEqual(one, api_keys.derive("secret", b"j" * 32, "label"))
        self.assertEqual(api_keys.parse_kind(one), "secret")


@tagged("post_install", "-at_install")
class TestBackoffAndClassification(BaseCase):
    def test_schedule_doubles_until_the_cap_with_bounded_jitter(self):
        rng = random.Random(42)
        for attempt, ceiling in [(1, 30), (2, 60), (3, 120), (4, 240), (10, 15360), (11, 21600)]:
            for _ in range(20):
                delay = backoff.retry_delay(attempt, rng)
                self.assertGreaterEqual(delay, ceiling / 2)
                self.assertLessEqual(delay, ceiling)
        for attempt in (12, 50, 10_000):
            self.assertLessEqual(backoff.retry_delay(attempt, rng), backoff.CAP_SECONDS)
            self.assertGreaterEqual(backoff.retry_delay(attempt, rng), backoff.CAP_SECONDS / 2)
        draws = {round(backoff.retry_delay(5, rng), 3) for _ in range(20)}
        self.assertGreater(len(draws), 10, "jitter must spread retries")

    def test_payload_helpers(self):
        self.assertEqual(payloads.split_lines(" a.com,\n\nb.com\na.com "), ["a.com", "b.com"])
        self.assertEqual(payloads.split_lines_only("Hi, there?\n\nWhy?"), ["Hi, there?", "Why?"])
        self.assertIsNone(payloads.iso_utc(False))

    def test_engine_timestamps_become_naive_utc(self):
        expected = datetime(2026, 11, 20, 9, 15, 30)
        for text in ("2026-11-20T09:15:30Z", "2026-11-20T09:15:30.999+00:00", "2026-11-20T10:15:30+01:00"):
            self.assertEqual(payloads.parse_utc(text), expected, text)
        for bad in (None, "", "yesterday", 42):
            self.assertIsNone(payloads.parse_utc(bad))
