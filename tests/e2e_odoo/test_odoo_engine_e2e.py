"""End to end over 127.0.0.1: real Odoo 18 with chatbot_platform + the real engine.

Create a chatbot and a secret key in Odoo, upload a PDF, wait until the engine's status callback
marks it ready in Odoo, ask `/v1/chat` with the key, see a source id of that chatbot refused under
another chatbot (409, shown failed in Odoo), delete the document, and check that the engine no
longer has it. Skipped (with the reason) when Odoo 18 or PostgreSQL for Odoo is unavailable, or
when the engine cannot be started here.
"""

from __future__ import annotations

import base64
import os
import secrets
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import REPO, EngineProcess, free_port

pytestmark = pytest.mark.slow

ADDONS = REPO / "odoo_service" / "custom_addons"
FACT = "The Zorblax 3000 warranty lasts 37 months and covers accidental water damage."
QUESTION = "How long does the Zorblax 3000 warranty last?"


def odoo_command() -> list[str] | None:
    raw = os.environ.get("ODOO_BIN") or shutil.which("odoo-bin")
    return shlex.split(raw) if raw else None


def db_args() -> tuple[list[str], list[str], dict[str, str]]:
    """Odoo CLI args, psql args and env for the PostgreSQL server Odoo uses."""
    user = os.environ.get("ODOO_DB_USER") or os.environ.get("USER") or "root"
    port = os.environ.get("ODOO_DB_PORT", "5432")
    host = os.environ.get("ODOO_DB_HOST", "")
    odoo = [f"--db_port={port}", f"--db_user={user}"]
    psql = ["-p", port, "-U", user]
    env = dict(os.environ)
    for word in odoo_command() or []:
        if word.endswith("/setup/odoo"):  # release layout: `odoo` is imported from the checkout
            checkout = str(Path(word).resolve().parent.parent)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [checkout, env.get("PYTHONPATH")]))
    if host:
        odoo.append(f"--db_host={host}")
        psql += ["-h", host]
    if os.environ.get("ODOO_DB_PASSWORD"):
        odoo.append(f"--db_password={os.environ['ODOO_DB_PASSWORD']}")
        env["PGPASSWORD"] = os.environ["ODOO_DB_PASSWORD"]
    return odoo, psql, env


def pdf_bytes() -> bytes:
    fpdf = pytest.importorskip("fpdf")
    doc = fpdf.FPDF()
    doc.set_title("Zorblax handbook")
    doc.set_font("helvetica", size=12)
    doc.add_page()
    doc.multi_cell(0, 7, "Zorblax 3000 product handbook.\n\n" + FACT + "\n\nKeep the receipt for claims.")
    return bytes(doc.output())


class Odoo:
    """One Odoo server on a throw-away database, driven through JSON-RPC."""

    def __init__(self, cmd: list[str], workdir: Path, engine_url: str, secret: str) -> None:
        self.cmd = cmd
        self.workdir = workdir
        self.db = f"cbp_e2e_{uuid.uuid4().hex[:10]}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "odoo.log"
        self.odoo_db_args, self.psql_args, self.env = db_args()
        self.env.update(WEBHOOK_SECRET=secret, ENGINE_URL=engine_url)
        self.proc: subprocess.Popen[bytes] | None = None
        self.uid = 0
        self.data_dir = ""

    def addons_path(self) -> str:
        conf = self.workdir / "probe.conf"
        subprocess.run(
            [*self.cmd, "-c", str(conf), "-s", "--stop-after-init", *self.odoo_db_args],
            env=self.env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        lines = conf.read_text().splitlines() if conf.exists() else []
        base = next((ln.split("=", 1)[1].strip() for ln in lines if ln.startswith("addons_path")), "")
        self.data_dir = next((ln.split("=", 1)[1].strip() for ln in lines if ln.startswith("data_dir")), "")
        if not base:
            pytest.skip(f"{shlex.join(self.cmd)} does not run Odoo here")
        return f"{base},{ADDONS}"

    def install_and_start(self) -> None:
        common = [*self.odoo_db_args, "-d", self.db, f"--addons-path={self.addons_path()}", "--without-demo=all"]
        with self.log.open("ab") as log:
            done = subprocess.run(
                [*self.cmd, *common, "-i", "chatbot_platform", "--stop-after-init"],
                env=self.env,
                stdout=log,
                stderr=log,
                timeout=900,
                check=False,
            )
        assert done.returncode == 0, f"Odoo install failed: {self.tail()}"
        log = self.log.open("ab")
        self.proc = subprocess.Popen(
            [
                *self.cmd,
                *common,
                f"--db-filter=^{self.db}$",
                "--http-interface=127.0.0.1",
                f"--http-port={self.port}",
                "--max-cron-threads=1",
            ],
            env=self.env,
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"Odoo exited: {self.tail()}"
            try:
                if httpx.get(self.url + "/web/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise AssertionError(f"Odoo did not answer /web/health: {self.tail()}")
        self.uid = self.rpc("common", "login", self.db, "admin", "admin")
        assert self.uid, "admin/admin login failed on the fresh database"

    def rpc(self, service: str, method: str, *args: Any) -> Any:
        body = {"jsonrpc": "2.0", "method": "call", "params": {"service": service, "method": method, "args": args}}
        response = httpx.post(self.url + "/jsonrpc", json=body, timeout=120)
        response.raise_for_status()
        data = response.json()
        assert "error" not in data, data.get("error")
        return data["result"]

    def call(self, model: str, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.rpc("object", "execute_kw", self.db, self.uid, "admin", model, method, list(args), kwargs)

    def read_one(self, model: str, rec_id: int, fields: list[str]) -> dict[str, Any]:
        return self.call(model, "read", [rec_id], fields)[0]

    def tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        subprocess.run(
            ["dropdb", *self.psql_args, "--if-exists", self.db], env=self.env, capture_output=True, check=False
        )
        if self.data_dir:
            shutil.rmtree(Path(self.data_dir) / "filestore" / self.db, ignore_errors=True)


def wait_for(what: str, probe: Any, timeout: float, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


@pytest.fixture
def stack(tmp_path: Path, pg_state_dir: Path) -> Iterator[tuple[Odoo, EngineProcess, str]]:
    cmd = odoo_command()
    if not cmd:
        pytest.skip("no Odoo 18 install: set ODOO_BIN or put odoo-bin on PATH")
    _odoo_args, psql_args, env = db_args()
    if (
        shutil.which("psql") is None
        or subprocess.run(
            ["psql", *psql_args, "-d", "postgres", "-Atqc", "select 1"], env=env, capture_output=True, check=False
        ).returncode
    ):
        pytest.skip("no PostgreSQL reachable for Odoo (see ODOO_DB_HOST/PORT/USER/PASSWORD)")
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    odoo_port = free_port()
    engine = EngineProcess(
        {
            "WEBHOOK_SECRET": secret,
            "ODOO_URL": f"http://127.0.0.1:{odoo_port}",
            "STATE_DIR": str(pg_state_dir / "state"),  # pytest tmp is 0700: pgserver runs as its own user
            "LLM_BACKEND": "none",
            "ENVIRONMENT": "local",
        },
        tmp_path / "engine.log",
    )
    try:
        engine.start(timeout=180)
    except (RuntimeError, TimeoutError) as exc:
        engine.stop()
        pytest.skip(f"the engine could not be started here: {str(exc)[:500]}")
    paths = httpx.get(engine.url + "/openapi.json", timeout=10).json().get("paths", {})
    needed = ["/v1/chat"]  # internal routes are left out of the public schema (app/main.py)
    missing = [p for p in needed if p not in paths]
    if missing:
        engine.stop()
        pytest.skip(f"engine endpoints not available yet: {missing}")
    odoo = Odoo(cmd, tmp_path, engine.url, secret)
    odoo.port, odoo.url = odoo_port, f"http://127.0.0.1:{odoo_port}"
    try:
        odoo.install_and_start()
        yield odoo, engine, secret
    finally:
        odoo.stop()
        engine.stop()


def engine_sources(engine: EngineProcess, secret: str, chatbot_uuid: str) -> list[dict[str, Any]]:
    from tests.support.signing import signed

    request = signed("GET", f"{engine.url}/internal/v1/chatbots/{chatbot_uuid}/sources", None, secret=secret)
    response = httpx.Client(timeout=10).send(request)
    response.raise_for_status()
    return response.json()


def test_document_lifecycle_through_odoo_and_engine(stack: tuple[Odoo, EngineProcess, str]) -> None:
    odoo, engine, secret = stack

    bot_id = odoo.call("chatbot.chatbot", "create", {"name": "E2E handbook bot"})
    bot = odoo.read_one("chatbot.chatbot", bot_id, ["uuid"])
    wizard_id = odoo.call("chatbot.api.key.wizard", "create", {"chatbot_id": bot_id, "name": "e2e", "kind": "secret"})
    action = odoo.call("chatbot.api.key.wizard", "action_generate", [wizard_id])
    key = action["context"]["default_plain_key"]
    assert key.startswith("cbp_sk_") and len(key) == 45

    doc_id = odoo.call(
        "chatbot.document",
        "create",
        {"chatbot_id": bot_id, "filename": "zorblax.pdf", "datas": base64.b64encode(pdf_bytes()).decode()},
    )
    doc = odoo.read_one("chatbot.document", doc_id, ["uuid"])

    def synced() -> bool:
        state = odoo.read_one("chatbot.chatbot", bot_id, ["sync_state", "sync_error"])
        assert state["sync_state"] != "failed", state
        return state["sync_state"] == "synced"

    wait_for("the chatbot to reach the engine", synced, 90)

    def ready() -> dict[str, Any] | None:
        state = odoo.read_one("chatbot.document", doc_id, ["state", "chunk_count", "error", "sync_error"])
        assert state["state"] != "failed", state
        return state if state["state"] == "ready" else None

    ready_state = wait_for("the engine's callback to mark the PDF ready in Odoo", ready, 240, interval=2)
    assert ready_state["chunk_count"] > 0

    def ask() -> dict[str, Any]:
        response = httpx.post(
            engine.url + "/v1/chat",
            json={"message": QUESTION},
            headers={"Authorization": "Bearer " + key},
            timeout=120,
        )
        assert response.status_code == 200, response.text
        return response.json()

    answer = ask()
    assert answer["session_id"] and answer["message_id"]
    assert doc["uuid"] in [s["source"] for s in answer["sources"]], answer
    assert "37" in answer["answer"] or any("37 months" in s["snippet"] for s in answer["sources"]), answer

    # A source id the engine already holds under another chatbot is refused with 409 (the only 409
    # the engine answers, contract/status_codes.json): Odoo shows it failed with the engine's
    # reason, never "synced".
    other_bot_id = odoo.call("chatbot.chatbot", "create", {"name": "E2E other bot"})
    link_id = odoo.call(
        "chatbot.link",
        "create",
        {"chatbot_id": other_bot_id, "url": "https://docs.example.com/", "uuid": doc["uuid"]},
    )

    def refused() -> dict[str, Any] | None:
        state = odoo.read_one("chatbot.link", link_id, ["sync_state", "sync_error", "state"])
        assert state["sync_state"] != "synced", state
        return state if state["sync_state"] == "failed" else None

    refusal = wait_for("Odoo to show the refused link as failed", refused, 90)
    assert refusal["sync_error"] == "HTTP 409: conflict - this source id belongs to another chatbot", refusal
    assert refusal["state"] == "failed"
    assert [i["source"] for i in engine_sources(engine, secret, bot["uuid"])] == [doc["uuid"]]

    odoo.call("chatbot.document", "unlink", [doc_id])

    def gone() -> bool:
        items = {i["source"]: i for i in engine_sources(engine, secret, bot["uuid"])}
        item = items.get(doc["uuid"])
        return item is None or item["state"] == "deleted"

    wait_for("the engine to drop the deleted document", gone, 90)
    assert doc["uuid"] not in [s["source"] for s in ask()["sources"]]
