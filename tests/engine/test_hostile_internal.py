"""Hostile signed requests against a real engine process (issue #13, internal API).

Each attack used to answer 500 (which the addon's outbox retries for ever) or was accepted against
the wrong target. Every answer must now be a 4xx `{error, detail}` that the addon classifies as
permanent, on a connection that stays open, with engine memory bounded.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.webhooks.signing import request_envelope, sign_headers
from tests.engine.test_internal_chatbots import chatbot_payload
from tests.ingestion.helpers import document
from tests.support.rss import GIB, peak_rss_bytes
from tests.support.server import EngineProcess
from tests.support.signing import TEST_SECRET, signed

REPO = Path(__file__).resolve().parents[2]
PERMANENT = json.loads((REPO / "contract" / "status_codes.json").read_text())["by_status"]


@pytest.fixture(scope="module")
def engine(pg_cluster, tmp_path_factory) -> Iterator[EngineProcess]:
    db_url = pg_cluster.uri(asyncio.run(pg_cluster.create_database()))
    process = EngineProcess(
        {"DATABASE_URL": db_url, "WEBHOOK_SECRET": TEST_SECRET, "ENVIRONMENT": "test", "LLM_BACKEND": "none"},
        tmp_path_factory.mktemp("hostile") / "engine.log",
    )
    process.start(timeout=180)
    yield process
    assert process.proc is not None
    peak = peak_rss_bytes(process.proc.pid)
    process.stop()
    assert peak < GIB, f"engine peaked at {peak / 2**20:.0f} MiB"


@pytest.fixture
def http(engine) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.url, timeout=30) as client:
        yield client


def permanent(response: httpx.Response) -> None:
    """What contract/status_codes.json calls permanent (the addon's outbox marks it failed)."""
    assert PERMANENT.get(str(response.status_code)) == "permanent", response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and body["detail"], body
    assert response.headers.get("connection") != "close"


def bot_payload(version: int, **overrides: object) -> dict:
    """chatbot_payload with a key of its own: bots of this module share one database."""
    key = {"id": str(uuid.uuid4()), "kind": "secret", "prefix": "cbp_sk_x", "sha256": uuid.uuid4().hex * 2}
    return chatbot_payload(version, **{"api_keys": [{**key, "expires_at": None}], **overrides})


def put_bot(http: httpx.Client, bot: uuid.UUID, payload: dict) -> httpx.Response:
    return http.send(signed("PUT", f"{http.base_url}/internal/v1/chatbots/{bot}", payload))


def still_alive(http: httpx.Client) -> None:
    bot = uuid.uuid4()
    assert put_bot(http, bot, bot_payload(1)).json()["applied"] is True


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_versions_beyond_int64_are_refused(http, method):
    bot = uuid.uuid4()
    payload = bot_payload(2**63) if method == "PUT" else {"version": 2**63}
    permanent(http.send(signed(method, f"{http.base_url}/internal/v1/chatbots/{bot}", payload)))
    source = signed("PUT", f"{http.base_url}/internal/v1/chatbots/{bot}/sources/{uuid.uuid4()}", document(2**63, b"hi"))
    permanent(http.send(source))
    still_alive(http)


def test_conversation_offset_beyond_int64_is_refused(http):
    url = f"{http.base_url}/internal/v1/chatbots/{uuid.uuid4()}/conversations?offset={2**63}"
    permanent(http.send(signed("GET", url, None)))


NUL = "a\u0000b"
NUL_FIELDS = {
    "name": {"name": NUL},
    "tenant": {"tenant": NUL},
    "language": {"language": NUL},
    "key prefix": {
        "api_keys": [{"id": str(uuid.uuid4()), "kind": "secret", "prefix": NUL, "sha256": "b" * 64, "expires_at": None}]
    },
    "widget title": {"widget": {"title": NUL, "color": "#112233", "welcome": "Hi", "suggestions": []}},
    "widget suggestion": {"widget": {"title": "t", "color": "#112233", "welcome": "Hi", "suggestions": [NUL]}},
    "system prompt": {"prompts": {"system": NUL, "user_template": ""}},
    "ignored extra key": {"extra\u0000key": 1},
}


@pytest.mark.parametrize("field", sorted(NUL_FIELDS))
def test_nul_in_any_text_or_json_field_is_refused(http, field):
    bot = uuid.uuid4()
    r = put_bot(http, bot, bot_payload(1, **NUL_FIELDS[field]))
    permanent(r)
    assert "NUL" in r.json()["detail"]
    still_alive(http)


def test_nul_in_source_fields_is_refused(http):
    bot, src = uuid.uuid4(), uuid.uuid4()
    body = document(1, b"hello")
    body["name"] = NUL
    permanent(http.send(signed("PUT", f"{http.base_url}/internal/v1/chatbots/{bot}/sources/{src}", body)))


def test_two_keys_with_one_id_are_refused(http):
    key_id = str(uuid.uuid4())
    keys = [
        {"id": key_id, "kind": "secret", "prefix": "cbp_sk_a", "sha256": "c" * 64, "expires_at": None},
        {"id": key_id, "kind": "secret", "prefix": "cbp_sk_b", "sha256": "d" * 64, "expires_at": None},
    ]
    r = put_bot(http, uuid.uuid4(), bot_payload(1, api_keys=keys))
    permanent(r)
    assert "api_keys" in r.json()["detail"]


@pytest.mark.parametrize("shared", ["id", "sha256"])
def test_a_key_of_another_chatbot_is_refused_and_left_with_its_owner(http, shared):
    first, second = uuid.uuid4(), uuid.uuid4()
    mine = {"id": str(uuid.uuid4()), "kind": "secret", "prefix": "cbp_sk_m", "sha256": uuid.uuid4().hex * 2}
    assert put_bot(http, first, bot_payload(1, api_keys=[{**mine, "expires_at": None}])).json()["applied"]
    theirs = {"id": str(uuid.uuid4()), "kind": "publishable", "prefix": "cbp_pk_t", "sha256": uuid.uuid4().hex * 2}
    theirs[shared] = mine[shared]
    r = put_bot(http, second, bot_payload(1, api_keys=[{**theirs, "expires_at": None}]))
    permanent(r)
    assert "another chatbot" in r.json()["detail"]
    # the refused delivery wrote nothing: version 1 of the second chatbot is still new to the engine
    assert put_bot(http, second, bot_payload(1)).json()["applied"] is True


def test_json_nested_100k_deep_is_refused(http):
    bot = uuid.uuid4()
    body = b'{"version": 1, "name": "x", "widget": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    url = f"/internal/v1/chatbots/{bot}"
    headers = {"content-type": "application/json", **sign_headers(TEST_SECRET, request_envelope("PUT", url, body))}
    r = http.put(url, content=body, headers=headers)
    permanent(r)
    assert "nested" in r.json()["detail"]
    moderately = b'{"version": 1, "name": "x", "widget": ' + b"[" * 40 + b"]" * 40 + b"}"
    headers = {
        "content-type": "application/json",
        **sign_headers(TEST_SECRET, request_envelope("PUT", url, moderately)),
    }
    permanent(http.put(url, content=moderately, headers=headers))
    still_alive(http)


def test_an_oversized_webhook_id_is_refused(http):
    bot = uuid.uuid4()
    r = http.send(signed("PUT", f"{http.base_url}/internal/v1/chatbots/{bot}", bot_payload(1), msg_id="m" * 3200))
    permanent(r)
    assert "webhook-id" in r.json()["detail"]
    still_alive(http)


# --- the signature is bound to method and path -------------------------------------------------


def test_signed_headers_for_one_route_are_refused_on_another(http):
    a, b = uuid.uuid4(), uuid.uuid4()
    good = signed("GET", f"{http.base_url}/internal/v1/chatbots/{a}/sources", None)
    assert http.send(good).status_code == 200
    moved = httpx.Request("GET", f"{http.base_url}/internal/v1/chatbots/{b}/conversations", headers=good.headers)
    r = http.send(moved)
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    query = httpx.Request("GET", f"{http.base_url}/internal/v1/chatbots/{a}/sources?x=1", headers=good.headers)
    assert http.send(query).status_code == 401


def test_a_refused_delete_cannot_be_replayed_as_a_chatbot_delete(http, engine):
    a, b = uuid.uuid4(), uuid.uuid4()
    assert put_bot(http, a, bot_payload(1)).json()["applied"]
    assert put_bot(http, b, bot_payload(1)).json()["applied"]
    a_source = uuid.uuid4()
    put = signed("PUT", f"{http.base_url}/internal/v1/chatbots/{a}/sources/{a_source}", document(1, b"hello"))
    assert http.send(put).status_code == 202
    refused = signed("DELETE", f"{http.base_url}/internal/v1/chatbots/{b}/sources/{a_source}", {"version": 9})
    assert http.send(refused).status_code == 409
    replay = httpx.Request(
        "DELETE", f"{http.base_url}/internal/v1/chatbots/{a}", content=refused.content, headers=refused.headers
    )
    r = http.send(replay)
    assert r.status_code == 401
    # chatbot A is intact, and the refused delivery keeps its refusal: replayed verbatim, it gets it again
    assert put_bot(http, a, bot_payload(1)).json() == {
        "applied": False,
        "reason": "stale_version",
        "detail": "stale version 1 <= 1",
    }
    again = http.send(httpx.Request("DELETE", refused.url, content=refused.content, headers=refused.headers))
    assert again.status_code == 409 and again.json()["detail"].startswith("this delivery was refused before")


def test_a_refused_delivery_presented_again_is_refused_again_not_acknowledged(http):
    """Odoo's manual retry resends an outbox row with its webhook-id: it must not read as delivered."""
    bot = uuid.uuid4()
    bad = signed("PUT", f"{http.base_url}/internal/v1/chatbots/{bot}", bot_payload(1, name="a\u0000b"))
    first = http.send(bad)
    permanent(first)
    retry = signed("PUT", str(bad.url), json.loads(bad.content), msg_id=bad.headers["webhook-id"])
    second = http.send(retry)
    permanent(second)
    assert second.status_code == first.status_code and "NUL" in second.json()["detail"]


def test_signed_reads_have_a_short_window_and_writes_the_standard_one(http):
    bot = uuid.uuid4()
    old = int(time.time()) - 120
    read = signed("GET", f"{http.base_url}/internal/v1/chatbots/{bot}/sources", None, timestamp=old)
    assert http.send(read).status_code == 401
    write = signed("PUT", f"{http.base_url}/internal/v1/chatbots/{bot}", bot_payload(1), timestamp=old)
    assert http.send(write).json()["applied"] is True
