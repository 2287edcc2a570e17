"""The ready demo of `./start.sh --local`: a "Demo" chatbot over the project's own docs, and a key.

  python odoo_service/local/demo.py odoo   STATE_FILE ODOO_URL DB LOGIN PASSWORD
  python odoo_service/local/demo.py engine STATE_FILE ENGINE_URL WEBHOOK_SECRET

With Odoo, the chatbot, its documents and a publishable key are created through Odoo's JSON-RPC
API (the ORM, so the addon's outbox delivers them to the engine as for any user). Without Odoo
they are sent to the engine's signed internal API exactly as Odoo sends them, built by the addon's
own payload, key and signing helpers (odoo_service/custom_addons/chatbot_platform/tools).

STATE_FILE (JSON: the publishable key and the chatbot's UUID) is written once the key exists; a
second run with the same STATE_FILE creates nothing and only waits. The command waits until every
document is `ready` (DEMO_TIMEOUT seconds, default 600) and prints the publishable key as its last
line. Exit 1 with a one-line reason when a document fails or the wait times out.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.util
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "odoo_service" / "custom_addons" / "chatbot_platform" / "tools"
CHATBOT_NAME = "Demo"
ALLOWED_DOMAINS = "127.0.0.1\nlocalhost"
SUGGESTIONS = "How do I start the platform without Docker?\nHow are documents chunked?\nHow do I back up the data?"
WELCOME = "Hi! Ask me anything about the chatbot platform's own documentation."
TENANT = "local-demo"  # engine-only demo: no Odoo database, so no `<database uuid>:<company>` tenant


class DemoError(Exception):
    pass


def sample_documents() -> list[Path]:
    """The bundled sample: the project's docs/*.md, without the benchmark tables."""
    docs = sorted(p for p in (ROOT / "docs").glob("*.md") if not p.name.startswith("benchmarks"))
    if not docs:
        raise DemoError(f"no sample documents in {ROOT / 'docs'}")
    return docs


def load_state(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DemoError(f"unreadable demo state {path}: {exc}") from exc


def save_state(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(state, handle)
    tmp.replace(path)


def wait_ready(states, timeout: float) -> None:
    """Poll `states()` -> {name: (state, error)} until all are ready; DemoError on failure/timeout."""
    deadline = time.monotonic() + timeout
    last: dict = {}
    while time.monotonic() < deadline:
        last = states()
        failed = {name: err for name, (state, err) in last.items() if state == "failed"}
        if failed:
            name, err = next(iter(failed.items()))
            raise DemoError(f"demo document {name} failed to ingest: {err}")
        if last and all(state == "ready" for state, _err in last.values()):
            return
        time.sleep(1.0)
    pending = sorted(name for name, (state, _err) in last.items() if state != "ready")
    raise DemoError(f"demo documents not ready after {timeout:.0f}s: {', '.join(pending) or 'none listed'}")


# --- through Odoo -------------------------------------------------------------------------------


class OdooRpc:
    def __init__(self, url: str, db: str, login: str, password: str) -> None:
        self.url, self.db, self.password = url.rstrip("/"), db, password
        self.uid = self.rpc("common", "login", db, login, password)
        if not self.uid:
            raise DemoError(f"Odoo refused the login of {login!r} on database {db!r}")

    def rpc(self, service: str, method: str, *args):
        body = {"jsonrpc": "2.0", "method": "call", "params": {"service": service, "method": method, "args": args}}
        request = urllib.request.Request(  # noqa: S310 - our own Odoo on 127.0.0.1
            self.url + "/jsonrpc", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
                data = json.load(response)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise DemoError(f"Odoo JSON-RPC {service}.{method} failed: {exc}") from exc
        if "error" in data:
            error = data["error"].get("data", {}).get("message") or data["error"].get("message")
            raise DemoError(f"Odoo refused {service}.{method}: {error}")
        return data["result"]

    def call(self, model: str, method: str, *args, **kwargs):
        return self.rpc("object", "execute_kw", self.db, self.uid, self.password, model, method, list(args), kwargs)


def seed_odoo(state_file: Path, url: str, db: str, login: str, password: str, timeout: float) -> str:
    odoo = OdooRpc(url, db, login, password)
    state = load_state(state_file)
    if state is None:
        bot_id = odoo.call(
            "chatbot.chatbot",
            "create",
            {
                "name": CHATBOT_NAME,
                "allowed_domains": ALLOWED_DOMAINS,
                "widget_welcome": WELCOME,
                "widget_suggestions": SUGGESTIONS,
            },
        )
        try:
            odoo.call(
                "chatbot.document",
                "create",
                [
                    {"chatbot_id": bot_id, "filename": p.name, "datas": base64.b64encode(p.read_bytes()).decode()}
                    for p in sample_documents()
                ],
            )
            wizard = odoo.call(
                "chatbot.api.key.wizard",
                "create",
                {"chatbot_id": bot_id, "name": "Demo widget", "kind": "publishable"},
            )
            key = odoo.call("chatbot.api.key.wizard", "action_generate", [wizard])["context"]["default_plain_key"]
            bot_uuid = odoo.call("chatbot.chatbot", "read", [bot_id], ["uuid"])[0]["uuid"]
            state = {"via": "odoo", "chatbot_id": bot_id, "chatbot_uuid": bot_uuid, "key": key}
            save_state(state_file, state)
        except (DemoError, OSError, KeyboardInterrupt):
            # no half demo: without its state file the next start would create a second one
            with contextlib.suppress(DemoError):  # the original error is the one to report
                odoo.call("chatbot.chatbot", "unlink", [bot_id])
            raise
    bot_id = state["chatbot_id"]

    def states():
        rows = odoo.call("chatbot.document", "search_read", [("chatbot_id", "=", bot_id)], ["name", "state", "error"])
        return {row["name"]: (row["state"], row["error"]) for row in rows}

    wait_ready(states, timeout)
    return state["key"]


# --- straight to the engine, as Odoo would ------------------------------------------------------


def addon_tools():
    """The addon's plain-Python tools package (payloads, api_keys, webhooks), without Odoo."""
    spec = importlib.util.spec_from_file_location(
        "chatbot_platform_tools", TOOLS / "__init__.py", submodule_search_locations=[str(TOOLS)]
    )
    package = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = package
    spec.loader.exec_module(package)
    return {name: importlib.import_module(f"{spec.name}.{name}") for name in ("payloads", "api_keys", "webhooks")}


class SignedEngine:
    def __init__(self, url: str, secret: str) -> None:
        self.url, self.secret = url.rstrip("/"), secret
        self.tools = addon_tools()

    def send(self, method: str, path: str, payload: dict | None = None):
        webhooks = self.tools["webhooks"]
        body = json.dumps(payload, separators=(",", ":")).encode() if payload is not None else b""
        # signed as the addon's engine_client signs: method + path as sent + body
        envelope = webhooks.request_envelope(method, path, body)
        headers = webhooks.signed_headers(self.secret, webhooks.new_message_id(), envelope)
        if body:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(  # noqa: S310 - our own engine on 127.0.0.1
            self.url + path, data=body or None, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise DemoError(f"engine refused {method} {path}: {exc.code} {exc.read()[:300].decode(errors='replace')}")
        except (urllib.error.URLError, OSError) as exc:
            raise DemoError(f"engine unreachable for {method} {path}: {exc}") from exc
        return json.loads(raw) if raw else None


def seed_engine(state_file: Path, url: str, secret: str, timeout: float) -> str:
    engine = SignedEngine(url, secret)
    payloads, api_keys = engine.tools["payloads"], engine.tools["api_keys"]
    state = load_state(state_file)
    if state is None:
        bot_uuid = str(uuid.uuid4())
        key = api_keys.generate("publishable")
        entry = payloads.api_key_entry(
            str(uuid.uuid4()), "publishable", api_keys.display_prefix(key), api_keys.hash_key(key), None
        )
        version = time.time_ns() // 1000  # increases across runs, as Odoo's version sequence does
        engine.send(
            "PUT",
            f"/internal/v1/chatbots/{bot_uuid}",
            payloads.chatbot_payload(
                version=version,
                tenant=TENANT,
                name=CHATBOT_NAME,
                active=True,
                language="en",
                system_prompt="",
                user_template="",
                model="",
                temperature=0.2,
                max_tokens=512,
                top_k=5,
                allowed_domains=ALLOWED_DOMAINS,
                api_keys=[entry],
                key_per_minute=0,
                ip_per_minute=0,
                widget_title="",
                widget_color="",
                widget_welcome=WELCOME,
                widget_suggestions=SUGGESTIONS,
            ),
        )
        try:
            for offset, path in enumerate(sample_documents(), start=1):
                raw = path.read_bytes()
                body = payloads.document_payload(
                    version=version + offset,
                    name=path.name,
                    filename=path.name,
                    mimetype="text/markdown",
                    sha256=hashlib.sha256(raw).hexdigest(),
                )
                body["document"]["content_base64"] = base64.b64encode(raw).decode()
                engine.send("PUT", f"/internal/v1/chatbots/{bot_uuid}/sources/{uuid.uuid4()}", body)
            state = {"via": "engine", "chatbot_uuid": bot_uuid, "key": key}
            save_state(state_file, state)
        except (DemoError, OSError, KeyboardInterrupt):
            # no half demo: the chatbot and what it got so far go, as Odoo's delete would do it
            with contextlib.suppress(DemoError):  # the original error is the one to report
                engine.send("DELETE", f"/internal/v1/chatbots/{bot_uuid}", payloads.delete_payload(version + 10_000))
            raise

    def states():
        items = engine.send("GET", f"/internal/v1/chatbots/{state['chatbot_uuid']}/sources") or []
        return {item.get("name") or item["source"]: (item["state"], item.get("error")) for item in items}

    wait_ready(states, timeout)
    return state["key"]


def main(argv: list[str]) -> int:
    timeout = float(os.environ.get("DEMO_TIMEOUT", "600"))
    try:
        if len(argv) == 6 and argv[0] == "odoo":
            key = seed_odoo(Path(argv[1]), argv[2], argv[3], argv[4], argv[5], timeout)
        elif len(argv) == 4 and argv[0] == "engine":
            key = seed_engine(Path(argv[1]), argv[2], argv[3], timeout)
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C while waiting: start.sh is stopping everything
        return 130
    print(key)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
