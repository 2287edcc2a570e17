"""End to end: `./start.sh --local` on a copy of the repository, as a newcomer runs it.

With ODOO_SRC: the engine and Odoo 18 on one embedded PostgreSQL; Odoo's login page and the
engine's /readyz answer; the Demo chatbot (created through Odoo) answers /v1/chat with sources
from the bundled sample; the printed admin logs in to Odoo (JSON-RPC /web/session/authenticate)
and sees the Demo chatbot with its documents ready; Ctrl-C (SIGINT to the process group, as a
terminal sends it) leaves no process behind; a second start reinstalls nothing and keeps the data.
Without ODOO_SRC the same start gives the engine alone and its demo through the signed API.

The copy uses the virtualenvs tests/run.sh built (VENV, ODOO_VENV); the engine install is
skipped through CHATBOT_INSTALL_CMD, Odoo's install_local.sh runs for real (and finds it done).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.support.server import REPO, free_port
from tests.support.signing import get_signed

pytestmark = pytest.mark.slow

SAMPLE = sorted(p.name for p in (REPO / "docs").glob("*.md") if not p.name.startswith("benchmarks"))
QUESTION = "How do I rotate the webhook secret?"
READY_MARKER = "Press Ctrl-C to stop."


def repo_copy(dest: Path) -> Path:
    """The repository's files as a clean clone has them (tracked and new, not ignored ones)."""
    listing = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=False,
    )
    if listing.returncode != 0:  # not a git checkout (e.g. an unpacked archive): everything but state
        ignore = shutil.ignore_patterns(".git", ".venv*", ".env", "__pycache__", "*.pyc")
        shutil.copytree(REPO, dest, ignore=ignore, symlinks=True)
        return dest
    for name in filter(None, (item.decode() for item in listing.stdout.split(b"\0"))):
        source = REPO / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def _default_signals() -> None:
    # As in a terminal: a suite started in the background of a non-interactive shell inherits
    # SIGINT/SIGQUIT ignored, and bash can neither trap nor reset signals ignored at its start.
    for signum in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


class Start:
    """One `./start.sh --local` run in its own session, its output collected by a thread."""

    def __init__(self, repo: Path, env: dict[str, str]) -> None:
        self.began = time.monotonic()
        self.proc = subprocess.Popen(
            ["bash", str(repo / "start.sh"), "--local"],
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=_default_signals,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.ready_after = 0.0

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(line for line in self.lines if not line.startswith("{"))  # engine JSON logs left out

    def wait_ready(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(READY_MARKER in line for line in self.lines):
                self.ready_after = time.monotonic() - self.began
                return self.text()
            if self.proc.poll() is not None:
                self.reader.join(5)
                raise AssertionError(f"start.sh exited with {self.proc.returncode}:\n{self.text()[-6000:]}")
            time.sleep(0.5)
        raise AssertionError(f"start.sh not ready after {timeout}s:\n{self.text()[-6000:]}")

    def session_processes(self) -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter(["pid"]):
            try:
                if os.getsid(proc.pid) == self.proc.pid:
                    found.append(proc)
            except (ProcessLookupError, PermissionError):
                continue
        return found

    def ctrl_c(self) -> int:
        os.killpg(self.proc.pid, signal.SIGINT)
        code = self.proc.wait(timeout=120)
        self.reader.join(10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(30)


def processes_using(path: Path) -> list[str]:
    """Command lines of live processes that mention PATH (postgres -D <pgdata>, odoo -c <conf>)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(path) in cmdline:
            found.append(f"{proc.pid}: {cmdline}")
    return found


def assert_port_free(port: int) -> None:
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def stop_and_check(start: Start, state_dir: Path, ports: list[int]) -> None:
    assert start.ctrl_c() == 130, start.text()[-3000:]
    deadline = time.monotonic() + 10  # children reaped by their parents a moment after exiting
    while (start.session_processes() or processes_using(state_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert start.session_processes() == [], start.text()[-3000:]
    assert processes_using(state_dir) == []
    for port in ports:
        assert_port_free(port)


def env_value(env_file: Path, name: str) -> str:
    for line in env_file.read_text().splitlines():
        if line.startswith(name + "="):
            return line.split("=", 1)[1]
    raise AssertionError(f"{name} missing from {env_file}")


def chat(engine: str, key: str) -> dict[str, Any]:
    response = httpx.post(
        engine + "/v1/chat",
        json={"message": QUESTION},
        headers={"Authorization": "Bearer " + key, "Origin": engine},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    return response.json()


class OdooSession:
    def __init__(self, url: str, login: str, password: str) -> None:
        self.url = url
        self.client = httpx.Client(timeout=60)
        result = self.post("/web/session/authenticate", {"db": "odoo", "login": login, "password": password})
        assert result["uid"], result

    def post(self, path: str, params: dict[str, Any]) -> Any:
        response = self.client.post(self.url + path, json={"jsonrpc": "2.0", "method": "call", "params": params})
        response.raise_for_status()
        body = response.json()
        assert "error" not in body, body["error"]
        return body["result"]

    def call(self, model: str, method: str, *args: Any, **kwargs: Any) -> Any:
        params = {"model": model, "method": method, "args": list(args), "kwargs": kwargs}
        return self.post("/web/dataset/call_kw", params)


@pytest.fixture
def local_env(tmp_path: Path, pg_state_dir: Path) -> Iterator[dict[str, Any]]:
    repo = repo_copy(tmp_path / "clone")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ODOO_DB_", "PG"))}
    for name in ("DATABASE_URL", "WEBHOOK_SECRET", "STATE_DIR", "XDG_DATA_HOME", "ODOO_BIN"):
        env.pop(name, None)
    env.update(
        HOME=str(tmp_path / "home"),
        VENV=sys.prefix,  # the engine's virtualenv running these tests
        CHATBOT_INSTALL_CMD=shutil.which("true") or "/bin/true",
        STATE_DIR=str(pg_state_dir / "state"),
        PORT=str(free_port()),
        ODOO_PORT=str(free_port()),
        LLM_BACKEND="none",
        START_TIMEOUT="900",
    )
    env.setdefault("ODOO_VENV", str(REPO / ".venv-odoo"))
    (tmp_path / "home").mkdir()
    starts: list[Start] = []
    yield {"repo": repo, "env": env, "starts": starts, "state": pg_state_dir / "state"}
    for start in starts:
        start.kill()


def test_local_mode_with_odoo_end_to_end(local_env: dict[str, Any]) -> None:
    if not os.environ.get("ODOO_SRC"):
        pytest.skip("ODOO_SRC is not set (an Odoo 18 source tree); tests/run.sh sets it up from there")
    repo, env, state = local_env["repo"], local_env["env"], local_env["state"]
    engine, odoo_url = f"http://127.0.0.1:{env['PORT']}", f"http://127.0.0.1:{env['ODOO_PORT']}"

    first = Start(repo, env)
    local_env["starts"].append(first)
    output = first.wait_ready(timeout=1500)
    password = env_value(repo / ".env", "ODOO_ADMIN_USER_PASSWORD")
    assert re.fullmatch(r"[A-Za-z0-9_-]{24,}", password)
    assert f"{odoo_url}/web" in output and password in output, output
    assert "First start of Odoo" in output
    keys = re.findall(rf"{re.escape(engine)}/demo\?key=(cbp_pk_[A-Za-z0-9]+)", output)
    assert len(keys) == 1, output
    key = keys[0]

    login_page = httpx.get(odoo_url + "/web/login", timeout=30)
    assert login_page.status_code == 200 and 'name="login"' in login_page.text
    assert httpx.get(engine + "/readyz", timeout=10).status_code == 200

    odoo = OdooSession(odoo_url, "admin", password)
    bots = odoo.call("chatbot.chatbot", "search_read", [("name", "=", "Demo")], ["id", "uuid", "sync_state"])
    assert len(bots) == 1 and bots[0]["sync_state"] == "synced", bots
    docs = odoo.call(
        "chatbot.document", "search_read", [("chatbot_id", "=", bots[0]["id"])], ["filename", "state", "uuid"]
    )
    assert sorted(d["filename"] for d in docs) == SAMPLE
    assert {d["state"] for d in docs} == {"ready"}, docs
    # the default admin/admin login of a fresh database is gone
    assert (
        httpx.post(
            odoo_url + "/web/session/authenticate",
            json={"jsonrpc": "2.0", "method": "call", "params": {"db": "odoo", "login": "admin", "password": "admin"}},
            timeout=30,
        )
        .json()
        .get("error")
    )

    answer = chat(engine, key)
    doc_uuids = {d["uuid"] for d in docs}
    assert answer["sources"] and {s["source"] for s in answer["sources"]} <= doc_uuids, answer
    assert any("webhook" in s["snippet"].lower() for s in answer["sources"]), answer

    stop_and_check(first, state, [int(env["PORT"]), int(env["ODOO_PORT"])])

    second = Start(repo, env)
    local_env["starts"].append(second)
    output2 = second.wait_ready(timeout=900)
    print(f"local mode: first start ready after {first.ready_after:.0f}s, second after {second.ready_after:.0f}s")
    assert "First start of Odoo" not in output2 and "Creating the Demo chatbot" not in output2, output2
    assert f"{engine}/demo?key={key}" in output2
    odoo = OdooSession(odoo_url, "admin", password)
    again = odoo.call("chatbot.chatbot", "search_read", [("name", "=", "Demo")], ["id"])
    assert [b["id"] for b in again] == [bots[0]["id"]]
    docs2 = odoo.call("chatbot.document", "search_read", [("chatbot_id", "=", bots[0]["id"])], ["uuid", "state"])
    assert {d["uuid"] for d in docs2} == doc_uuids and {d["state"] for d in docs2} == {"ready"}
    assert {s["source"] for s in chat(engine, key)["sources"]} <= doc_uuids
    stop_and_check(second, state, [int(env["PORT"]), int(env["ODOO_PORT"])])


def test_local_mode_without_odoo_serves_the_demo_through_the_signed_api(local_env: dict[str, Any]) -> None:
    repo, env, state = local_env["repo"], local_env["env"], local_env["state"]
    env.pop("ODOO_SRC", None)
    engine = f"http://127.0.0.1:{env['PORT']}"

    start = Start(repo, env)
    local_env["starts"].append(start)
    output = start.wait_ready(timeout=900)
    hints = [line for line in output.splitlines() if "ODOO_SRC" in line]
    assert len(hints) == 1 and "Odoo is not running" in hints[0], output
    assert "/web" not in output
    keys = re.findall(rf"{re.escape(engine)}/demo\?key=(cbp_pk_[A-Za-z0-9]+)", output)
    assert len(keys) == 1, output

    demo = json.loads((state / "demo-engine.json").read_text())
    assert demo["via"] == "engine" and demo["key"] == keys[0]
    secret = env_value(repo / ".env", "WEBHOOK_SECRET")
    sources = get_signed(f"{engine}/internal/v1/chatbots/{demo['chatbot_uuid']}/sources", secret=secret).json()
    assert sorted(s["name"] for s in sources) == SAMPLE and {s["state"] for s in sources} == {"ready"}
    answer = chat(engine, keys[0])
    assert answer["sources"] and {s["source"] for s in answer["sources"]} <= {s["source"] for s in sources}
    # the key is bound to its allowed domains: another origin is refused
    refused = httpx.post(
        engine + "/v1/chat",
        json={"message": QUESTION},
        headers={"Authorization": "Bearer " + keys[0], "Origin": "https://elsewhere.example"},
        timeout=30,
    )
    assert refused.status_code in (401, 403), refused.text
    stop_and_check(start, state, [int(env["PORT"])])
