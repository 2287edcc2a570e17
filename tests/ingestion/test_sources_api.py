"""The internal source API: versions, tombstones, replays, unknown/deleted chatbots, listing."""

import uuid

from tests.engine.test_internal_chatbots import chatbot_payload
from tests.ingestion.helpers import (
    delete_source,
    document,
    list_sources,
    prose,
    put_source,
    wait_jobs_idle,
    wait_settled,
)
from tests.support.signing import send_signed, signed

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def marked(version: int, words: int = 300) -> bytes:
    return (f"zebra{version}marker appears here. " + prose(words, seed=version)).encode()


async def chunk_rows(db, src):
    return await db.fetch("SELECT * FROM chunks WHERE source_id = $1 ORDER BY ordinal", src)


async def test_put_answers_202_with_a_job_and_the_document_becomes_searchable_chunks(client, db):
    bot, src = uuid.uuid4(), uuid.uuid4()
    await send_signed(client, "PUT", f"/internal/v1/chatbots/{bot}", chatbot_payload(1))
    r = await put_source(client, bot, src, document(1, prose(600).encode(), "guide.txt"))
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["applied"] is True and isinstance(body["job"], int)
    row = await wait_settled(db, src, 1)
    assert row["state"] == "ready", row["error"]
    chunks = await chunk_rows(db, src)
    assert len(chunks) == row["chunk_count"] > 1
    assert {c["chatbot_id"] for c in chunks} == {bot}
    assert {c["source_version"] for c in chunks} == {1}
    assert chunks[0]["metadata"]["title"] == "guide.txt"
    assert all(c["tsv"] for c in chunks)  # keyword index filled alongside the vectors
    listed = await list_sources(client, bot)
    assert listed.status_code == 200
    [entry] = listed.json()
    assert (entry["source"], entry["version"], entry["state"], entry["chunks"], entry["error"]) == (
        str(src),
        1,
        "ready",
        len(chunks),
        None,
    )


async def test_update_arriving_before_create_wins(client, db):
    bot, src = uuid.uuid4(), uuid.uuid4()
    assert (await put_source(client, bot, src, document(2, marked(2)))).status_code == 202
    late = await put_source(client, bot, src, document(1, marked(1)))
    assert late.status_code == 200
    assert late.json()["applied"] is False and "stale" in late.json()["detail"]
    await wait_settled(db, src, 2)
    await wait_jobs_idle(db)
    chunks = await chunk_rows(db, src)
    assert chunks and {c["source_version"] for c in chunks} == {2}
    assert "zebra2marker" in chunks[0]["content"]


async def test_delete_removes_chunks_and_a_stale_put_cannot_resurrect(client, db):
    bot, src = uuid.uuid4(), uuid.uuid4()
    await put_source(client, bot, src, document(1, marked(1)))
    await wait_settled(db, src, 1)
    assert await chunk_rows(db, src)
    r = await delete_source(client, bot, src, 3)
    assert r.status_code == 200 and r.json()["applied"] is True
    assert await chunk_rows(db, src) == []
    stale = await put_source(client, bot, src, document(2, marked(2)))
    assert stale.status_code == 200 and stale.json()["applied"] is False
    row = await db.fetchrow("SELECT deleted, version, content FROM sources WHERE id = $1", src)
    assert row["deleted"] and row["version"] == 3 and row["content"] is None
    assert (await list_sources(client, bot)).json() == []
    await wait_jobs_idle(db)
    assert await chunk_rows(db, src) == []
    newer = await put_source(client, bot, src, document(4, marked(4)))
    assert newer.status_code == 202  # a genuinely newer version may recreate it
    await wait_settled(db, src, 4)


async def test_delete_of_an_unknown_source_leaves_a_tombstone(client, db):
    bot, src = uuid.uuid4(), uuid.uuid4()
    assert (await delete_source(client, bot, src, 5)).json()["applied"] is True
    assert (await put_source(client, bot, src, document(4, marked(4)))).json()["applied"] is False
    await wait_jobs_idle(db)
    assert await chunk_rows(db, src) == []


async def test_delete_while_the_job_runs_leaves_no_chunks(client, db):
    bot, src = uuid.uuid4(), uuid.uuid4()
    await put_source(client, bot, src, document(1, prose(4000).encode()))
    await delete_source(client, bot, src, 2)
    await wait_jobs_idle(db)
    assert await chunk_rows(db, src) == []
    assert await db.fetchval("SELECT deleted FROM sources WHERE id = $1", src)


async def test_five_rapid_versions_end_at_the_newest(client, db):
    bot, src = uuid.uuid4(), uuid.uuid4()
    for v in [3, 1, 5, 2, 4]:
        await put_source(client, bot, src, document(v, marked(v)))
    row = await wait_settled(db, src, 5)
    await wait_jobs_idle(db)
    assert row["state"] == "ready" and row["indexed_version"] == 5
    chunks = await chunk_rows(db, src)
    assert {c["source_version"] for c in chunks} == {5}
    assert "zebra5marker" in chunks[0]["content"]
    assert not any("zebra3marker" in c["content"] for c in chunks)
    jobs = await db.fetch("SELECT args, status FROM procrastinate_jobs ORDER BY id")
    assert [j["args"]["version"] for j in jobs] == [3, 5]  # v1, v2 and v4 were stale on arrival
    assert {j["status"] for j in jobs} == {"succeeded"}


async def test_replayed_delivery_is_a_no_op(client, db):
    bot, src = uuid.uuid4(), uuid.uuid4()
    request = signed("PUT", f"http://engine.test/internal/v1/chatbots/{bot}/sources/{src}", document(1, marked(1)))
    assert (await client.send(request)).status_code == 202
    replay = signed(
        "PUT",
        str(request.url),
        document(1, marked(1)),
        msg_id=request.headers["webhook-id"],
    )
    r = await client.send(replay)
    assert r.status_code == 200
    assert r.json() == {"applied": False, "reason": "duplicate_delivery", "job": None, "detail": "duplicate delivery"}
    await wait_jobs_idle(db)
    assert await db.fetchval("SELECT count(*) FROM procrastinate_jobs") == 1


async def test_source_of_a_deleted_chatbot_is_ignored(client, db):
    bot, src = uuid.uuid4(), uuid.uuid4()
    await send_signed(client, "PUT", f"/internal/v1/chatbots/{bot}", chatbot_payload(1))
    await send_signed(client, "DELETE", f"/internal/v1/chatbots/{bot}", {"version": 2})
    r = await put_source(client, bot, src, document(1, marked(1)))
    assert r.status_code == 200 and r.json()["applied"] is False and "deleted" in r.json()["detail"]
    assert await db.fetchval("SELECT count(*) FROM sources") == 0
    assert await db.fetchval("SELECT count(*) FROM procrastinate_jobs") == 0


async def test_source_of_a_not_yet_known_chatbot_is_stored_and_indexed(client, db):
    bot, src = uuid.uuid4(), uuid.uuid4()
    assert (await put_source(client, bot, src, document(1, marked(1)))).status_code == 202
    row = await wait_settled(db, src, 1)
    assert row["state"] == "ready" and row["chatbot_id"] == bot
    assert await db.fetchval("SELECT count(*) FROM chatbots") == 0
    # When the chatbot arrives and is later deleted, its sources go with it.
    await send_signed(client, "PUT", f"/internal/v1/chatbots/{bot}", chatbot_payload(1))
    await send_signed(client, "DELETE", f"/internal/v1/chatbots/{bot}", {"version": 2})
    assert await chunk_rows(db, src) == []


async def test_a_failed_new_version_leaves_the_previous_chunks_serving(client, db):
    bot, src = uuid.uuid4(), uuid.uuid4()
    await put_source(client, bot, src, document(1, marked(1)))
    first = await wait_settled(db, src, 1)
    before = [(c["id"], c["content"]) for c in await chunk_rows(db, src)]
    await put_source(client, bot, src, document(2, PNG, "picture.pdf"))
    row = await wait_settled(db, src, 2)
    assert row["state"] == "failed" and "PNG image" in row["error"]
    assert row["indexed_version"] == 1 and row["chunk_count"] == first["chunk_count"]
    assert [(c["id"], c["content"]) for c in await chunk_rows(db, src)] == before
    [entry] = (await list_sources(client, bot)).json()
    assert entry["state"] == "failed" and "PNG image" in entry["error"] and entry["version"] == 2


async def test_oversize_and_corrupted_documents_are_recorded_as_failed_without_a_job(app_factory, db_url, db):
    from tests.conftest import make_settings

    client = await app_factory(make_settings(database_url=db_url, max_document_bytes=1000))
    bot, big, bad = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    r = await put_source(client, bot, big, document(1, b"x" * 5000))
    assert r.status_code == 202 and r.json()["job"] is None and "limit is 1,000" in r.json()["detail"]
    payload = document(1, b"hello world")
    payload["document"]["sha256"] = "0" * 64
    r = await put_source(client, bot, bad, payload)
    assert r.json()["job"] is None and "sha256" in r.json()["detail"]
    states = {row["id"]: (row["state"], row["content"]) for row in await db.fetch("SELECT * FROM sources")}
    assert states == {big: ("failed", None), bad: ("failed", None)}
    assert await db.fetchval("SELECT count(*) FROM procrastinate_jobs") == 0


async def test_malformed_payloads_are_422_with_nothing_written(client, db):
    bot, src = uuid.uuid4(), uuid.uuid4()
    bad_b64 = document(1, b"hello")
    bad_b64["document"]["content_base64"] = "not base64!!"
    no_doc = {"version": 1, "kind": "document", "name": "x"}
    for payload in (bad_b64, no_doc, {"version": 0, "kind": "link", "link": {"url": "https://example.com"}}):
        r = await put_source(client, bot, src, payload)
        assert r.status_code == 422, r.text
    assert await db.fetchval("SELECT count(*) FROM sources") == 0
    # each refused delivery's webhook-id is spent (internal/auth.py); nothing else is written
    assert await db.fetchval("SELECT count(*) FROM webhook_receipts") == 3


async def test_a_source_id_cannot_move_to_another_chatbot(client, db):
    src = uuid.uuid4()
    await put_source(client, uuid.uuid4(), src, document(1, marked(1)))
    r = await put_source(client, uuid.uuid4(), src, document(2, marked(2)))
    assert r.status_code == 409
    assert await db.fetchval("SELECT version FROM sources WHERE id = $1", src) == 1


async def test_non_http_links_are_recorded_as_failed(client, db):
    bot, src = uuid.uuid4(), uuid.uuid4()
    payload = {"version": 1, "kind": "link", "name": "f", "link": {"url": "file:///etc/passwd"}}
    r = await put_source(client, bot, src, payload)
    assert r.status_code == 202 and r.json()["job"] is None
    row = await db.fetchrow("SELECT state, error FROM sources WHERE id = $1", src)
    assert row["state"] == "failed" and "http" in row["error"]
