"""odoo_service/local/demo.py against the real engine: a demo that cannot be completed leaves
nothing behind (no chatbot in the engine, no state file), so the next start tries again cleanly."""

from __future__ import annotations

import base64
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import REPO, EngineProcess
from tests.support.signing import get_signed

pytestmark = pytest.mark.slow

DEMO = REPO / "odoo_service" / "local" / "demo.py"


@pytest.fixture
def small_body_engine(tmp_path: Path, pg_state_dir: Path) -> Iterator[tuple[EngineProcess, str]]:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    engine = EngineProcess(
        {
            "WEBHOOK_SECRET": secret,
            "STATE_DIR": str(pg_state_dir / "state"),
            "LLM_BACKEND": "none",
            "ENVIRONMENT": "local",
            # the chatbot's PUT fits, every sample document's does not: the third request fails
            "WEBHOOK_MAX_BODY_BYTES": "4096",
        },
        tmp_path / "engine.log",
    )
    try:
        engine.start(timeout=180)
        yield engine, secret
    finally:
        engine.stop()


def test_a_demo_the_engine_refuses_half_way_is_removed(small_body_engine: tuple[EngineProcess, str], tmp_path: Path):
    engine, secret = small_body_engine
    state = tmp_path / "demo-engine.json"
    done = subprocess.run(
        [sys.executable, str(DEMO), "engine", str(state), engine.url, secret],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("demo: engine refused PUT /internal/v1/chatbots/"), done.stderr
    assert " 413 " in lines[0], lines[0]
    assert done.stdout == "" and not state.exists()
    bot = re.search(r"/internal/v1/chatbots/([0-9a-f-]{36})/sources/", lines[0]).group(1)
    listed = get_signed(f"{engine.url}/internal/v1/chatbots/{bot}/sources", secret=secret)
    # the chatbot was deleted again: the engine knows it no more, or knows it without sources
    assert listed.status_code == 404 or listed.json() == [], listed.text


def test_the_demo_refuses_a_wrong_secret_and_creates_nothing(small_body_engine: tuple[EngineProcess, str], tmp_path):
    engine, _secret = small_body_engine
    state = tmp_path / "demo-engine.json"
    wrong = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    done = subprocess.run(
        [sys.executable, str(DEMO), "engine", str(state), engine.url, wrong],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1 and " 401 " in done.stderr and not state.exists(), done
