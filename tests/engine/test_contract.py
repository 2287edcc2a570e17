"""The engine against the Odoo <-> engine contract: the golden files of contract/ (docs/contract.md).

The addon's tests load the same files (odoo_service/custom_addons/chatbot_platform/tests/
test_contract.py): a change to one half that breaks the other fails one of the two suites.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from app.chatbots import domains
from app.chatbots.schemas import ChatbotPut, Generation, VersionOnly
from app.config import Settings
from app.conversations.schemas import MarkHandled
from app.errors import ServiceUnavailable, Unprocessable
from app.generation import prompt
from app.handoff import service as handoff_service
from app.ingestion import callbacks
from app.keys import format as key_format
from app.sources.schemas import SourcePut, SourceStatus
from app.webhooks.signing import request_envelope, sign_headers
from tests.conftest import make_settings
from tests.support.signing import send_signed, signed

REPO = Path(__file__).resolve().parents[2]
CONTRACT = REPO / "contract"
WIDGET_JS = REPO / "fastapi_service" / "app" / "widget" / "static" / "widget.js"


def load(name: str) -> Any:
    return json.loads((CONTRACT / name).read_text(encoding="utf-8"))


PAYLOADS = load("payloads.json")
STATUS = load("status_codes.json")
DEFAULTS = load("defaults.json")
ANSWERS = {answer["case"]: answer for answer in STATUS["answers"]}


def path_of(endpoint: dict[str, Any], chatbot: str | None = None) -> str:
    ids = {**PAYLOADS["ids"], **({"chatbot": chatbot} if chatbot else {})}
    return endpoint["path"].format(**ids)


def settings_default(field: str) -> Any:
    return Settings.model_fields[field].get_default(call_default_factory=True)


# --- signing ---------------------------------------------------------------------------------------


def test_engine_signing_matches_the_contract_vectors() -> None:
    contract = load("request_signing.json")
    for vector in contract["vectors"]:
        envelope = request_envelope(vector["method"], vector["target"], vector["body"].encode())
        assert envelope.decode() == vector["envelope"]
        headers = sign_headers(contract["secret"], envelope, msg_id=vector["webhook_id"], timestamp=vector["timestamp"])
        assert headers["webhook-signature"] == vector["signature"]


# --- API keys --------------------------------------------------------------------------------------


def test_api_key_format_matches_the_contract() -> None:
    contract = load("api_keys.json")
    spec = contract["format"]
    assert key_format.BASE62 == spec["alphabet"]
    assert {prefix: kind for kind, prefix in spec["prefixes"].items()} == key_format.PREFIXES
    assert (key_format.RANDOM_LEN, key_format.CHECKSUM_LEN) == (spec["random_length"], spec["checksum_length"])
    for vector in contract["valid"]:
        key = vector["key"]
        assert len(key) == spec["length"]
        assert key_format.parse_key(key) == vector["kind"], key
        prefix = spec["prefixes"][vector["kind"]]
        assert key_format.checksum(prefix, key[len(prefix) : -spec["checksum_length"]]) == vector["checksum"]
        assert key_format.key_hash(key) == vector["sha256"]
        assert key[: spec["display_prefix_length"]] == vector["prefix"]
    for vector in contract["invalid"]:
        assert key_format.parse_key(vector["key"]) is None, vector["why"]
    for kind in ("publishable", "secret"):
        assert key_format.parse_key(key_format.generate_key(kind)) == kind


def test_the_widget_checks_the_contract_key_shape() -> None:
    """widget.js and /demo accept exactly the well-shaped publishable keys (no checksum check)."""
    contract = load("api_keys.json")
    found = re.findall(r"/\^(cbp_pk_[^/$]*)\$/\.test\(KEY\)", WIDGET_JS.read_text(encoding="utf-8"))
    assert found == [key_format.PUBLISHABLE_SHAPE.pattern], "widget.js checks another key shape than the engine"
    cases = [(v["key"], v["kind"] == "publishable") for v in contract["valid"]]
    cases += [(v["key"], v["publishable_shape"]) for v in contract["invalid"]]
    for key, shaped in cases:
        assert bool(key_format.PUBLISHABLE_SHAPE.fullmatch(key)) is shaped, repr(key)


# --- allowed domains -------------------------------------------------------------------------------

REASONS = {domains.INVALID: "invalid", domains.IP_WILDCARD: "ip_wildcard", domains.PUBLIC_SUFFIX: "public_suffix"}


def chatbot_with_domains(entries: list[str]) -> ChatbotPut:
    return ChatbotPut.model_validate({"version": 1, "name": "x", "allowed_domains": entries})


def test_allowed_domains_accepted_by_the_contract_are_accepted() -> None:
    contract = load("allowed_domains.json")
    for entry in contract["accept"]:
        assert chatbot_with_domains([entry]).allowed_domains == [entry.strip().lower()], entry


def test_allowed_domains_refused_by_the_contract_are_refused_for_its_reason() -> None:
    contract = load("allowed_domains.json")
    assert set(REASONS.values()) == set(contract["reasons"])
    for case in contract["reject"]:
        entry = case["entry"]
        with pytest.raises(ValidationError):
            chatbot_with_domains([entry])
        assert REASONS[domains.domain_problem(entry.strip().lower()) or ""] == case["reason"], entry


# --- defaults --------------------------------------------------------------------------------------


def test_engine_defaults_are_the_contract_defaults() -> None:
    chatbot = DEFAULTS["chatbot"]
    bare = ChatbotPut.model_validate({"version": 1, "name": "x"})
    assert bare.language == chatbot["language"]
    assert (bare.generation.temperature, bare.generation.max_tokens, bare.generation.top_k) == (
        chatbot["temperature"],
        chatbot["max_tokens"],
        chatbot["top_k"],
    )
    assert (bare.widget.color, bare.widget.welcome) == (chatbot["widget_color"], chatbot["widget_welcome"])
    assert (prompt.DEFAULT_SYSTEM, prompt.DEFAULT_USER_TEMPLATE) == (chatbot["system_prompt"], chatbot["user_template"])
    # widget.js falls back to the same colour when the config has none (or a bad one)
    fallbacks = re.findall(r"'--cbp-color',[^;]*'(#[0-9a-fA-F]{6})'\)", WIDGET_JS.read_text(encoding="utf-8"))
    assert fallbacks and set(fallbacks) == {chatbot["widget_color"]}


def test_generation_bounds_are_the_contract_bounds() -> None:
    def bounds(field: str) -> list[float]:
        metadata = Generation.model_fields[field].metadata
        low = next(m.ge for m in metadata if getattr(m, "ge", None) is not None)
        high = next(m.le for m in metadata if getattr(m, "le", None) is not None)
        return [low, high]

    for field in ("temperature", "max_tokens", "top_k"):
        assert bounds(field) == DEFAULTS["chatbot_bounds"][field], field


def test_engine_limits_are_the_contract_limits() -> None:
    limits, signing = DEFAULTS["limits"], DEFAULTS["signing"]
    for name in ("crawl_max_depth", "crawl_max_pages", "max_document_bytes"):
        assert settings_default(name) == limits[name], name
    assert settings_default("webhook_tolerance_seconds") == signing["timestamp_tolerance_seconds"]
    assert settings_default("webhook_read_tolerance_seconds") == signing["read_timestamp_tolerance_seconds"]


# --- endpoints and status codes --------------------------------------------------------------------


def test_canonical_bodies_match_the_engine_schemas() -> None:
    body = PAYLOADS["chatbot_put"]["body"]
    assert ChatbotPut.model_validate(body).model_dump(mode="json") == body, "a field is dropped or reshaped"
    ChatbotPut.model_validate(PAYLOADS["chatbot_put_defaults"]["body"])
    for name in ("chatbot_delete", "source_delete"):
        VersionOnly.model_validate(PAYLOADS[name]["body"])
    for name in ("source_put_document", "source_put_link"):
        SourcePut.model_validate(PAYLOADS[name]["body"])
    assert list(SourceStatus.model_fields) == PAYLOADS["sources_list"]["item_keys"]
    handled = PAYLOADS["unanswered_handled"]["body"]
    assert MarkHandled.model_validate(handled).model_dump() == handled


def expect(response: httpx.Response, case: str) -> dict[str, Any]:
    answer = ANSWERS[case]
    assert response.status_code == answer["status"], (case, response.text)
    body = response.json()
    if "error" in answer:
        assert body["error"] == answer["error"] and body["detail"], (case, body)
    for key, value in answer.get("body", {}).items():
        assert body[key] == value, (case, body)
    return body


@pytest.fixture
async def engine(app_factory: Any, db_url: str) -> httpx.AsyncClient:
    return await app_factory(make_settings(database_url=db_url, workers_in_process=False))  # type: ignore[no-any-return]


async def test_the_engine_answers_every_canonical_request_as_the_status_table_says(engine: httpx.AsyncClient) -> None:
    bot = PAYLOADS["chatbot_put"]
    put = signed("PUT", str(engine.base_url.join(path_of(bot))), bot["body"])
    expect(await engine.send(put), "applied")
    assert bot["status"] == ANSWERS["applied"]["status"]
    replay = httpx.Request("PUT", put.url, content=put.content, headers=put.headers)
    expect(await engine.send(replay), "duplicate_delivery")
    expect(await send_signed(engine, "PUT", path_of(bot), bot["body"]), "stale_version")

    for name in ("source_put_document", "source_put_link"):
        endpoint = PAYLOADS[name]
        response = await send_signed(engine, "PUT", path_of(endpoint), endpoint["body"])
        assert endpoint["status"] == ANSWERS["source_queued"]["status"]
        assert isinstance(expect(response, "source_queued")["job"], int)

    listing = await send_signed(engine, "GET", path_of(PAYLOADS["sources_list"]), None)
    assert listing.status_code == PAYLOADS["sources_list"]["status"]
    assert [sorted(item) for item in listing.json()] == [sorted(PAYLOADS["sources_list"]["item_keys"])] * 2

    document = PAYLOADS["source_put_document"]
    other_bot = str(uuid.uuid4())
    newer = {**document["body"], "version": document["body"]["version"] + 1}
    moved = signed("PUT", str(engine.base_url.join(path_of(document, chatbot=other_bot))), newer)
    refusal = expect(await engine.send(moved), "source_of_another_chatbot")
    again = httpx.Request("PUT", moved.url, content=moved.content, headers=moved.headers)
    assert ANSWERS["refused_before"]["outcome"] == ANSWERS["source_of_another_chatbot"]["outcome"]
    assert expect(await engine.send(again), "source_of_another_chatbot")["detail"].endswith(refusal["detail"])

    invalid = {**bot["body"], "version": bot["body"]["version"] + 1, "widget": {"color": "blue"}}
    expect(await send_signed(engine, "PUT", path_of(bot), invalid), "invalid_body")
    forged = signed("PUT", str(engine.base_url.join(path_of(bot))), bot["body"], secret="whsec_" + "A" * 44)
    expect(await engine.send(forged), "bad_signature")

    for name in ("source_delete", "chatbot_delete"):
        endpoint = PAYLOADS[name]
        response = await send_signed(engine, "DELETE", path_of(endpoint), endpoint["body"])
        assert response.status_code == endpoint["status"]
        expect(response, "applied")
    late = {**document["body"], "version": PAYLOADS["chatbot_delete"]["body"]["version"] + 5}
    other_source = path_of(document).rsplit("/", 1)[0] + f"/{uuid.uuid4()}"
    expect(await send_signed(engine, "PUT", other_source, late), "chatbot_deleted")


async def test_a_body_over_the_cap_is_answered_as_the_status_table_says(app_factory: Any, db_url: str) -> None:
    small = await app_factory(make_settings(database_url=db_url, workers_in_process=False, webhook_max_body_bytes=1024))
    body = {**PAYLOADS["chatbot_put"]["body"], "name": "x" * 2000}
    expect(await send_signed(small, "PUT", path_of(PAYLOADS["chatbot_put"]), body), "body_too_large")


def test_the_answers_not_provoked_above_use_the_contract_error_kinds() -> None:
    # An unexpected error (500) and an engine not ready (503) cannot be caused on purpose here:
    # their error kinds are the ones app/errors.py renders.
    assert ANSWERS["unavailable"]["error"] == ServiceUnavailable.error
    assert ANSWERS["invalid_body"]["error"] == Unprocessable.error
    assert ANSWERS["engine_error"]["error"] == "internal_error"
    assert {a["outcome"] for a in STATUS["answers"]} <= set(STATUS["outcomes"])


async def test_status_callbacks_have_the_contract_shape(db: Any) -> None:
    callback = PAYLOADS["status_callback"]
    settings = make_settings(odoo_url="http://odoo.test")
    sample = callback["body"]
    await callbacks.record_status(
        db,
        settings,
        chatbot_id=uuid.UUID(sample["chatbot"]),
        source_id=uuid.UUID(sample["source"]),
        version=sample["version"],
        state=sample["state"],
        progress=(sample["progress"]["done"], sample["progress"]["total"]),
    )
    stored = await db.fetchval(
        "SELECT payload FROM source_status_outbox WHERE source_id = $1", uuid.UUID(sample["source"])
    )
    sent = {**stored, "seq": 42}  # deliver_due adds the outbox row id as seq
    assert sent == sample
    assert set(callback["keys"]) <= set(sent) <= set(callback["keys"]) | set(callback["optional_keys"])
    assert callbacks.CALLBACK_PATH == callback["path"]


# --- WEBHOOK_TOLERANCE_SECONDS -------------------------------------------------------------------


async def test_webhook_tolerance_seconds_bounds_the_age_of_a_signed_write(app_factory: Any, db_url: str) -> None:
    strict = await app_factory(
        make_settings(database_url=db_url, workers_in_process=False, webhook_tolerance_seconds=60)
    )
    bot = PAYLOADS["chatbot_put"]
    old = int(time.time()) - 120
    stale = signed("PUT", str(strict.base_url.join(path_of(bot))), bot["body"], timestamp=old)
    response = await strict.send(stale)
    assert response.status_code == 401 and "60 s" in response.json()["detail"]
    fresh = signed("PUT", str(strict.base_url.join(path_of(bot))), bot["body"], timestamp=int(time.time()) - 30)
    assert (await strict.send(fresh)).json()["applied"] is True


def test_webhook_tolerance_seconds_cannot_exceed_the_libraries_window() -> None:
    with pytest.raises(ValidationError):
        make_settings(webhook_tolerance_seconds=301)


async def test_handoff_notices_have_the_contract_shape(app_factory: Any, db_url: str, db: Any) -> None:
    from tests.answering.helpers import create_bot

    notice = PAYLOADS["handoff_notice"]
    client = await app_factory(
        make_settings(database_url=db_url, workers_in_process=False, odoo_url="http://odoo.test")
    )
    bot = await create_bot(client, widget={"handoff_enabled": True})
    r = await client.post("/v1/chat", json={"message": "Where is my parcel?"}, headers=bot.pk_headers())
    session = r.json()["session_id"]
    r = await client.post(
        "/v1/handoff", json={"session_id": session, "note": "jane@example.com"}, headers=bot.pk_headers()
    )
    assert r.status_code == 200, r.text
    queued = await db.fetchval("SELECT payload FROM handoff_outbox WHERE session_id = $1", uuid.UUID(session))
    assert sorted(queued) == sorted(notice["keys"]) == sorted(notice["body"])
    assert queued["reason"] in notice["reasons"] and queued["note"] == notice["body"]["note"]
    assert [sorted(m) for m in queued["transcript"]] == [sorted(m) for m in notice["body"]["transcript"]]
    assert handoff_service.CALLBACK_PATH == notice["path"]


async def test_the_engine_answers_the_canonical_handled_request(engine: httpx.AsyncClient) -> None:
    endpoint = PAYLOADS["unanswered_handled"]
    response = await send_signed(engine, "POST", path_of(endpoint), endpoint["body"])
    assert response.status_code == endpoint["status"], response.text
    assert response.json() == endpoint["answer"]


# --- operations reports: the engine's answers have the keys of the bodies the addon's tests serve ----


def same_keys(real: Any, sample: Any, where: str = "answer", maps: frozenset[str] = frozenset()) -> None:
    """`real` has exactly the keys of `sample`, recursively. A list item matches one of the sample's
    items (a user message has fewer keys than an answer); null on either side matches anything;
    a key named in `maps` holds a name -> count map, whatever the names."""
    if real is None or sample is None:
        return
    if where.rsplit(".", 1)[-1] in maps:
        assert isinstance(real, dict) and all(isinstance(v, int) for v in real.values()), (where, real)
        return
    if isinstance(sample, dict):
        assert isinstance(real, dict) and set(real) == set(sample), (where, sorted(real), sorted(sample))
        for key in sample:
            same_keys(real[key], sample[key], f"{where}.{key}", maps)
    elif isinstance(sample, list) and sample and isinstance(sample[0], dict):
        assert isinstance(real, list), where
        for n, item in enumerate(real):
            keyed = [s for s in sample if set(s) == set(item)]
            assert keyed, (f"{where}[{n}]", sorted(item), [sorted(s) for s in sample])
            same_keys(item, keyed[0], f"{where}[{n}]", maps)


async def test_operations_reports_have_the_keys_of_the_contract_bodies(
    app_factory: Any, db_url: str, db: Any, embedder: Any
) -> None:
    from tests.answering.helpers import HANDBOOK, create_bot, insert_chunks, signed_get

    client = await app_factory(make_settings(database_url=db_url, workers_in_process=False))
    bot = await create_bot(client, widget={"handoff_enabled": True})
    await insert_chunks(db, embedder, bot.id, HANDBOOK)
    answered = (
        await client.post("/v1/chat", json={"message": "How do I return a product?"}, headers=bot.pk_headers())
    ).json()
    assert answered["sources"], answered
    session = answered["session_id"]
    r = await client.post(
        "/v1/feedback",
        json={"message_id": answered["message_id"], "rating": "down", "comment": "wanted the address"},
        headers=bot.pk_headers(),
    )
    assert r.status_code == 200, r.text
    unanswered = {"message": "Who won the 1998 World Cup?", "session_id": session}
    assert (await client.post("/v1/chat", json=unanswered, headers=bot.pk_headers())).status_code == 200
    r = await client.post("/v1/handoff", json={"session_id": session}, headers=bot.pk_headers())
    assert r.status_code == 200, r.text

    base = f"/internal/v1/chatbots/{bot.id}"
    reports: dict[str, Any] = {}
    for name, path in (
        ("sessions_report", "/sessions"),
        ("transcript_report", f"/sessions/{session}"),
        ("unanswered_report", "/unanswered"),
        ("daily_report", "/daily"),
    ):
        endpoint = PAYLOADS[name]
        assert endpoint["path"].format(chatbot=bot.id, session=session) == base + path, name
        r = await signed_get(client, base + path)
        assert r.status_code == endpoint["status"], (name, r.text)
        same_keys(r.json(), endpoint["answer"], name, frozenset(endpoint.get("maps", [])))
        reports[name] = r.json()
    # every list was compared item by item: none is empty
    assert len(reports["sessions_report"]["sessions"]) == 1
    assert [m["role"] for m in reports["transcript_report"]["messages"]] == ["user", "assistant"] * 2
    assert reports["transcript_report"]["messages"][1]["sources"] and reports["transcript_report"]["handoff_at"]
    assert reports["unanswered_report"]["groups"][0]["questions"] and reports["daily_report"]["days"]


def test_engine_languages_are_the_contract_languages() -> None:
    from app import languages

    contract = load("languages.json")
    assert languages.LANGUAGE_CODE.pattern == contract["code_pattern"]
    assert languages.FALLBACK_CONFIG == contract["fallback"]
    assert languages.TEXT_SEARCH_CONFIGS == contract["text_search"]
    defaults = load("defaults.json")["chatbot"]
    assert languages.language_problem(defaults["language"]) is None
    assert languages.language_problem(load("payloads.json")["chatbot_put"]["body"]["language"]) is None
    for code in contract["invalid_examples"]:
        assert languages.language_problem(code), code
        with pytest.raises(ValidationError, match="ISO 639"):
            ChatbotPut.model_validate({"version": 1, "name": "x", "language": code})


def test_odoos_language_selection_offers_only_valid_codes() -> None:
    """The addon's `LANGUAGES` selection (read from its source: the engine cannot import Odoo)."""
    import ast

    from app import languages

    model = REPO / "odoo_service" / "custom_addons" / "chatbot_platform" / "models" / "chatbot_chatbot.py"
    tree = ast.parse(model.read_text(encoding="utf-8"))
    [selection] = [
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["LANGUAGES"]
    ]
    codes = [code for code, _label in selection]
    assert "en" in codes
    for code in codes:
        assert languages.language_problem(code) is None, code
        # every language Odoo offers has its stemmer (none silently falls back to `simple`)
        assert code in load("languages.json")["text_search"], code
