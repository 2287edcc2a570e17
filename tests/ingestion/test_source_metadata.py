"""A new version that changes only metadata (a rename) is not re-ingested: same chunks, no job."""

import uuid

import numpy as np

from tests.engine.test_internal_chatbots import chatbot_payload
from tests.ingestion.helpers import document, list_sources, prose, put_source, wait_jobs_idle, wait_settled
from tests.support.signing import send_signed

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def chunk_ids(db, src):
    return [r["id"] for r in await db.fetch("SELECT id FROM chunks WHERE source_id = $1 ORDER BY ordinal", src)]


async def jobs(db, src):
    return await db.fetchval("SELECT count(*) FROM procrastinate_jobs WHERE args->>'source' = $1", str(src))


async def test_a_rename_updates_metadata_without_re_embedding(client, db):
    bot, src = uuid.uuid4(), uuid.uuid4()
    await send_signed(client, "PUT", f"/internal/v1/chatbots/{bot}", chatbot_payload(1))
    data = prose(600).encode()
    await put_source(client, bot, src, document(1, data, "guide.txt"))
    first = await wait_settled(db, src, 1)
    assert first["state"] == "ready"
    ids = await chunk_ids(db, src)
    assert len(ids) > 1

    r = await put_source(client, bot, src, document(2, data, "guide.txt", name="Guide (renamed)"))
    assert r.status_code == 202, r.text
    assert r.json()["applied"] is True and r.json()["job"] is None
    row = await db.fetchrow("SELECT * FROM sources WHERE id = $1", src)
    assert (row["version"], row["indexed_version"], row["state"], row["name"]) == (2, 2, "ready", "Guide (renamed)")
    assert (row["chunk_count"], row["indexed_at"]) == (first["chunk_count"], first["indexed_at"])
    assert await chunk_ids(db, src) == ids, "the same chunk rows keep serving: nothing was re-embedded"
    assert await jobs(db, src) == 1, "no ingestion job for the rename"
    [entry] = (await list_sources(client, bot)).json()
    assert (entry["version"], entry["state"], entry["chunks"]) == (2, "ready", len(ids))


async def test_new_content_is_re_ingested(client, db):
    bot, src = uuid.uuid4(), uuid.uuid4()
    await send_signed(client, "PUT", f"/internal/v1/chatbots/{bot}", chatbot_payload(1))
    await put_source(client, bot, src, document(1, prose(600, seed=1).encode(), "guide.txt"))
    await wait_settled(db, src, 1)
    ids = await chunk_ids(db, src)
    r = await put_source(client, bot, src, document(2, prose(600, seed=2).encode(), "guide.txt"))
    assert isinstance(r.json()["job"], int)
    row = await wait_settled(db, src, 2)
    assert row["state"] == "ready"
    assert set(await chunk_ids(db, src)).isdisjoint(ids)


async def test_a_renamed_file_name_or_a_failed_source_goes_through_ingestion(client, db):
    bot, src, failed = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await send_signed(client, "PUT", f"/internal/v1/chatbots/{bot}", chatbot_payload(1))
    data = prose(300).encode()
    await put_source(client, bot, src, document(1, data, "guide.txt"))
    await wait_settled(db, src, 1)
    r = await put_source(client, bot, src, document(2, data, "guide.md"))
    assert isinstance(r.json()["job"], int), "another file name may parse differently"

    await put_source(client, bot, failed, document(1, PNG, "logo.png"))
    assert (await wait_settled(db, failed, 1))["state"] == "failed"
    r = await put_source(client, bot, failed, document(2, PNG, "logo.png", name="Logo"))
    assert isinstance(r.json()["job"], int), "a failed source is retried, not relabelled ready"
    await wait_jobs_idle(db)


async def test_with_contextual_chunks_a_rename_re_embeds_under_the_new_title(app_factory, db_url, db, embedder):
    """The name is the title of a document without one of its own, embedded with each chunk."""
    from tests.conftest import make_settings

    client = await app_factory(make_settings(database_url=db_url, contextual_chunks=True))
    bot, src = uuid.uuid4(), uuid.uuid4()
    await send_signed(client, "PUT", f"/internal/v1/chatbots/{bot}", chatbot_payload(1))
    data = prose(600).encode()
    await put_source(client, bot, src, document(1, data, "guide.txt", name="Guide"))
    assert (await wait_settled(db, src, 1))["state"] == "ready"
    ids = await chunk_ids(db, src)
    r = await put_source(client, bot, src, document(2, data, "guide.txt", name="Returns policy"))
    assert r.json()["job"] is not None
    assert (await wait_settled(db, src, 2))["state"] == "ready"
    assert set(await chunk_ids(db, src)).isdisjoint(ids)
    row = await db.fetchrow(
        "SELECT content, embedding::real[] AS embedding FROM chunks WHERE source_id = $1 ORDER BY ordinal LIMIT 1", src
    )
    assert not row["content"].startswith("Returns policy")  # the text stays the document's
    vector = await embedder.embed_one(f"Returns policy\n\n{row['content']}")
    assert float(vector @ np.array(row["embedding"])) > 0.999  # embedded with the new title in front
