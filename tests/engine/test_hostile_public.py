"""Hostile public requests against a real engine process (issue #13, public API)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator

import httpx
import pytest

from app.keys.format import generate_key
from tests.answering.helpers import key_entry
from tests.engine.test_hostile_internal import bot_payload, permanent
from tests.ingestion.helpers import document
from tests.support.rss import GIB, peak_rss_bytes, rss_bytes
from tests.support.server import EngineProcess
from tests.support.signing import TEST_SECRET, signed

METRICS_TOKEN = "metrics-token-for-the-hostile-tests"
AUTH_FAILURES = 5


@pytest.fixture(scope="module")
def engine(pg_cluster, tmp_path_factory) -> Iterator[EngineProcess]:
    db_url = pg_cluster.uri(asyncio.run(pg_cluster.create_database()))
    process = EngineProcess(
        {
            "DATABASE_URL": db_url,
            "WEBHOOK_SECRET": TEST_SECRET,
            "ENVIRONMENT": "test",
            "LLM_BACKEND": "none",
            "METRICS_TOKEN": METRICS_TOKEN,
            "RATE_LIMIT_AUTH_FAILURES": f"{AUTH_FAILURES}/minute",
            # the throttle test's client comes "from" its own address through a trusted proxy
            "TRUSTED_PROXIES": "127.0.0.1/32",
        },
        tmp_path_factory.mktemp("hostile-public") / "engine.log",
    )
    process.start(timeout=180)
    yield process
    assert process.proc is not None
    peak = peak_rss_bytes(process.proc.pid)
    process.stop()
    assert peak < GIB, f"engine peaked at {peak / 2**20:.0f} MiB"


@pytest.fixture(scope="module")
def secret_key(engine) -> str:
    raw = generate_key("secret")
    bot = uuid.uuid4()
    payload = bot_payload(1, api_keys=[key_entry(raw, "secret")])
    with httpx.Client(timeout=30) as http:
        assert http.send(signed("PUT", f"{engine.url}/internal/v1/chatbots/{bot}", payload)).json()["applied"]
    return raw


@pytest.fixture
def http(engine) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.url, timeout=60) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat", {"message": "a\u0000b"}),
        ("/v1/search", {"query": "a\u0000b"}),
        ("/v1/feedback", {"message_id": str(uuid.uuid4()), "rating": "up", "comment": "a\u0000b"}),
    ],
)
def test_nul_in_public_fields_is_a_422(http, secret_key, path, body):
    r = http.post(path, json=body, headers={"Authorization": f"Bearer {secret_key}"})
    assert r.status_code == 422, r.text
    assert set(r.json()) == {"error", "detail"}


def test_a_declared_huge_body_is_refused_before_it_is_read(http):
    r = http.post("/v1/search", content=b"{}", headers={"content-length": "2", "x-fake": "1"})
    assert r.status_code in (401, 422)  # a small body reaches the key check
    big = http.post("/v1/search", content=b"x" * (65 * 1024), headers={"content-type": "application/json"})
    assert big.status_code == 413 and big.json()["error"] == "payload_too_large"


def test_unauthenticated_chunked_bodies_do_not_grow_the_engine(http, engine):
    """8 x 150 MB chunked POSTs without a key, in parallel: each is cut at the public cap."""
    assert engine.proc is not None
    before = rss_bytes(engine.proc.pid)
    chunk = b"[" * (1024 * 1024)
    statuses: list[int] = []

    def post() -> None:
        def body() -> Iterator[bytes]:
            for _ in range(150):
                yield chunk

        try:
            with httpx.Client(base_url=engine.url, timeout=60) as client:
                statuses.append(client.post("/v1/search", content=body()).status_code)
        except httpx.HTTPError:
            statuses.append(413)  # the engine answered and closed while we were still sending

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [413] * 8
    grown = rss_bytes(engine.proc.pid) - before
    assert grown < 100 * 2**20, f"engine grew by {grown / 2**20:.0f} MiB"


def test_internal_routes_keep_their_own_larger_cap(http):
    bot, src = uuid.uuid4(), uuid.uuid4()
    put = signed("PUT", f"{http.base_url}/internal/v1/chatbots/{bot}/sources/{src}", document(1, b"word " * 40_000))
    r = http.send(put)
    assert len(put.content) > 64 * 1024 and r.status_code == 202, r.text


def test_oversized_widget_suggestion_is_refused(http):
    payload = bot_payload(1)
    payload["widget"] = {"title": "t", "color": "#112233", "welcome": "w", "suggestions": ["s" * 1_000_000]}
    r = http.send(signed("PUT", f"{http.base_url}/internal/v1/chatbots/{uuid.uuid4()}", payload))
    permanent(r)
    assert "suggestions" in r.json()["detail"]


def test_metrics_need_the_token_and_internal_routes_are_not_in_the_public_schema(http):
    assert http.get("/metrics").status_code == 401
    assert http.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert ok.status_code == 200 and "http_request_duration_seconds" in ok.text
    paths = http.get("/openapi.json").json()["paths"]
    assert "/v1/chat" in paths
    assert not [p for p in paths if p.startswith("/internal")]


def test_repeated_failed_keys_from_one_ip_really_back_off(http, secret_key):
    """Past the failure budget even the right key is refused (no lookup), until the window passes."""
    guesser = {"X-Forwarded-For": "203.0.113.7"}
    other = {"X-Forwarded-For": "198.51.100.9"}
    codes = []
    for i in range(AUTH_FAILURES + 3):
        r = http.post(
            "/v1/search", json={"query": "q"}, headers={**guesser, "Authorization": f"Bearer cbp_sk_guess{i}"}
        )
        codes.append(r.status_code)
    assert codes == [401] * AUTH_FAILURES + [429] * 3
    right = http.post("/v1/search", json={"query": "q"}, headers={**guesser, "Authorization": f"Bearer {secret_key}"})
    assert right.status_code == 429 and int(right.headers["retry-after"]) >= 1
    assert set(right.json()) == {"error", "detail"}
    elsewhere = http.post("/v1/search", json={"query": "q"}, headers={**other, "Authorization": f"Bearer {secret_key}"})
    assert elsewhere.status_code == 200, elsewhere.text
