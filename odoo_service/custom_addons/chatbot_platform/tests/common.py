"""Shared test fixtures: two companies with their users, and a real HTTP engine stand-in.

``EngineServer`` is a real HTTP server thread on 127.0.0.1 (no mocks of ``requests``): the addon
talks to it over TCP exactly as it talks to the engine, and it verifies every signature.
"""

import base64
import importlib.util
import json
import os
import shutil
import socket
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from odoo import fields
from odoo.tests import TransactionCase, new_test_user

from ..tools import webhooks

# The repository's contract/ directory (docs/contract.md): golden files the engine's tests load too.
CONTRACT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), *[os.pardir] * 4, "contract")


def load_contract(name):
    """One golden file of contract/; the addon's tests run from a checkout of the repository."""
    path = os.path.join(CONTRACT_DIR, name)
    if not os.path.isfile(path):
        raise AssertionError("contract file %s not found: run the tests from the repository" % path)
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


TEST_SECRET = "whsec_" + base64.b64encode(b"chatbot-platform-test-secret-32b").decode()
PDF_BYTES = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


class EngineServer:
    """Records requests; answers with queued responses (default 200 ``{"applied": true}``)."""

    def __init__(self, secret_getter):
        self.secret_getter = secret_getter
        self.requests = []
        self.responses = deque()
        self.json_routes = {}  # (method, path) -> (status, body) for GETs
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    envelope = webhooks.request_envelope(self.command, self.path, body)
                    webhooks.verify(server.secret_getter(), self.headers, envelope)
                    signed = True
                except (webhooks.WebhookVerificationError, ValueError):
                    signed = False
                path, _sep, query = self.path.partition("?")
                server.requests.append(
                    {
                        "method": self.command,
                        "path": path,
                        "query": query,
                        "headers": dict(self.headers),
                        "body": body,
                        "json": json.loads(body) if body else None,
                        "signed": signed,
                    }
                )
                public = path.startswith("/v1/")  # the public API is authenticated by API key
                if not signed and not public:
                    status, payload = 401, {"error": "unauthorized", "detail": "bad signature"}
                elif (self.command, path) in server.json_routes:
                    status, payload = server.json_routes[(self.command, path)]
                elif server.responses:
                    status, payload = server.responses.popleft()
                else:
                    status, payload = 200, {"applied": True}
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_PUT = do_DELETE = do_POST = _handle

            def log_message(self, *args):
                pass  # keep the test log clean

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def clear(self):
        self.requests.clear()
        self.responses.clear()
        self.json_routes.clear()


CHROME_NAMES = ("google-chrome", "chromium", "chromium-browser", "google-chrome-stable")
TOUR_TIMEOUT = 240  # seconds for a whole tour, on a loaded machine


def require_browser(case):
    """Skip the running test unless Chrome/Chromium and websocket-client are there (Odoo's browser
    tests need both)."""
    if not importlib.util.find_spec("websocket") or not any(shutil.which(n) for n in CHROME_NAMES):
        case.skipTest("needs Chrome/Chromium and the websocket-client package")


def closed_port_url():
    """A 127.0.0.1 URL on which nothing listens: the engine is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return "http://127.0.0.1:%d" % port


class ChatbotCase(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        icp = cls.env["ir.config_parameter"].sudo()
        icp.set_param("chatbot_platform.webhook_secret", TEST_SECRET)
        cls.outbox_model = cls.env["chatbot.outbox"]
        cls.engine = EngineServer(lambda: cls.secret).start()
        cls.addClassCleanup(cls.engine.stop)
        icp.set_param("chatbot_platform.engine_url", cls.engine.url)
        # WEBHOOK_SECRET in the environment wins over the parameter; sign with whatever is used
        cls.secret = cls.env["chatbot.outbox"]._webhook_secret()

        cls.company_a = cls.env["res.company"].create({"name": "Tenant A"})
        cls.company_b = cls.env["res.company"].create({"name": "Tenant B"})
        cls.user_a = new_test_user(
            cls.env,
            login="chatbot_user_a",
            groups="base.group_user,chatbot_platform.chatbot_platform_group_user",
            company_id=cls.company_a.id,
            company_ids=[(6, 0, cls.company_a.ids)],
        )
        cls.user_b = new_test_user(
            cls.env,
            login="chatbot_user_b",
            groups="base.group_user,chatbot_platform.chatbot_platform_group_user",
            company_id=cls.company_b.id,
            company_ids=[(6, 0, cls.company_b.ids)],
        )
        cls.manager = new_test_user(
            cls.env,
            login="chatbot_manager",
            groups="base.group_user,chatbot_platform.chatbot_platform_group_manager",
            company_id=cls.company_a.id,
            company_ids=[(6, 0, cls.company_a.ids)],
        )

    def setUp(self):
        super().setUp()
        self.engine.clear()

    # -- helpers ----------------------------------------------------------------------------------
    def create_chatbot(self, user=None, **vals):
        user = user or self.user_a
        vals.setdefault("name", "Support bot")
        return self.env["chatbot.chatbot"].with_user(user).create(vals)

    def create_document(self, chatbot, content=PDF_BYTES, filename="manual.pdf", user=None, **vals):
        user = user or self.user_a
        vals.update(chatbot_id=chatbot.id, filename=filename, datas=base64.b64encode(content))
        return self.env["chatbot.document"].with_user(user).create(vals)

    def rows(self, record):
        return self.env["chatbot.outbox"].search([("resource_uuid", "=", record.uuid)], order="id")

    def pending_rows(self, record):
        return self.rows(record).filtered(lambda r: r.state in ("pending", "retrying"))

    def commit_hooks(self):
        """What COMMIT runs around the transaction: flush and the precommit hooks (which trigger the
        delivery cron), then the postcommit hooks (Odoo's NOTIFY to the cron workers)."""
        self.env.flush_all()
        self.env.cr.flush()
        self.env.cr.postcommit.run()

    def due_delivery_triggers(self):
        cron = self.env.ref("chatbot_platform.ir_cron_chatbot_outbox_deliver")
        return (
            self.env["ir.cron.trigger"]
            .sudo()
            .search([("cron_id", "=", cron.id), ("call_at", "<=", fields.Datetime.now())])
        )

    def run_postcommit(self):
        """What follows a COMMIT: the commit hooks, then the delivery cron run that a due trigger
        wakes (a cron thread, outside tests). Nothing is sent unless the transaction triggered it."""
        self.commit_hooks()
        triggers = self.due_delivery_triggers()
        if triggers:
            triggers.unlink()
            self.run_cron()
        self.env.invalidate_all()

    def run_cron(self):
        self.env["chatbot.outbox"]._cron_deliver()
        self.env.invalidate_all()

    def make_due(self):
        """Pretend the backoff delays have elapsed."""
        self.env["chatbot.outbox"].search([("state", "=", "retrying")]).write(
            {"next_attempt_at": "2000-01-01 00:00:00"}
        )
