"""Status callbacks to Odoo: signed, versioned, retried from the durable outbox."""

import asyncio
import json
import time
import uuid

import pytest

from app.webhooks.signing import InvalidSignature, verify
from tests.conftest import make_settings
from tests.ingestion.helpers import document, prose, put_source, wait_settled
from tests.ingestion.http_server import LocalServer
from tests.support.signing import TEST_SECRET

HOOK = "/chatbot_platform/hooks/source-status"


class Odoo:
    """Plays Odoo's webhook controller: verifies each signature, fails the first N deliveries
    (of statuses in `fail_state`, when given)."""

    def __init__(self, fail_first: int = 0, fail_state: str | None = None) -> None:
        self.fail_first = fail_first
        self.fail_state = fail_state
        self.statuses: list[dict] = []
        self.rejected = 0
        self.server = LocalServer({HOOK: self.receive}).start()

    def receive(self, seen):
        try:
            verify(TEST_SECRET, seen.body, seen.headers)
        except InvalidSignature:
            self.rejected += 1
            return 401, {}, b"bad signature"
        if self.fail_first > 0 and self.fail_state in (None, json.loads(seen.body)["state"]):
            self.fail_first -= 1
            return 503, {}, b"busy"
        self.statuses.append({**json.loads(seen.body), "_id": seen.headers["webhook-id"]})
        return 200, {"content-type": "application/json"}, b"{}"


@pytest.fixture
def odoo():
    server = Odoo()
    yield server
    server.server.stop()


async def wait_outbox_empty(db, timeout=60.0):
    deadline = time.monotonic() + timeout
    while await db.fetchval("SELECT count(*) FROM source_status_outbox"):
        assert time.monotonic() < deadline, await db.fetch("SELECT * FROM source_status_outbox")
        import asyncio

        await asyncio.sleep(0.1)


async def test_ready_and_failed_statuses_reach_odoo_signed_and_versioned(app_factory, db_url, db, odoo):
    client = await app_factory(make_settings(database_url=db_url, odoo_url=odoo.server.url, worker_poll_seconds=0.1))
    bot, good, bad = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await put_source(client, bot, good, document(1, prose(400).encode()))
    await put_source(client, bot, bad, document(3, b"", "empty.txt"))
    ready = await wait_settled(db, good, 1)
    await wait_settled(db, bad, 3)
    await wait_outbox_empty(db)
    final = {s["source"]: s for s in odoo.statuses}
    assert isinstance(final[str(good)]["seq"], int)  # the order Odoo applies statuses in
    assert final[str(good)] | {"_id": None, "indexed_at": None, "seq": None} == {
        "chatbot": str(bot),
        "source": str(good),
        "version": 1,
        "state": "ready",
        "chunks": ready["chunk_count"],
        "error": None,
        "indexed_at": None,
        "_id": None,
        "seq": None,
    }
    assert final[str(good)]["indexed_at"].startswith(ready["indexed_at"].date().isoformat())
    assert final[str(bad)]["state"] == "failed" and final[str(bad)]["version"] == 3
    assert "empty" in final[str(bad)]["error"]
    assert odoo.rejected == 0
    # Earlier states may have been collapsed, but order is preserved for each source.
    states = [s["state"] for s in odoo.statuses if s["source"] == str(good)]
    assert states[-1] == "ready" and set(states) <= {"queued", "processing", "ready"}


async def test_a_failing_odoo_gets_the_status_again_with_backoff(app_factory, db_url, db):
    # The final status is refused: an earlier one may be replaced in the outbox by a newer status
    # before its retry (a new row, a new webhook-id), the last one never is.
    odoo = Odoo(fail_first=2, fail_state="ready")
    try:
        client = await app_factory(
            make_settings(database_url=db_url, odoo_url=odoo.server.url, worker_poll_seconds=0.1)
        )
        bot, src = uuid.uuid4(), uuid.uuid4()
        await put_source(client, bot, src, document(1, prose(100).encode()))
        await wait_settled(db, src, 1)
        await wait_outbox_empty(db, timeout=30)
        assert odoo.statuses[-1]["state"] == "ready"
        attempts = [r for r in odoo.server.requests if r.path == HOOK]
        assert len(attempts) >= len(odoo.statuses) + 2  # the two refused deliveries were retried
        # A retried delivery keeps its webhook-id, so Odoo can deduplicate it.
        ids = [r.headers["webhook-id"] for r in attempts]
        assert len(set(ids)) < len(ids)
    finally:
        odoo.server.stop()


async def test_without_odoo_url_no_status_is_queued(client, db):
    bot, src = uuid.uuid4(), uuid.uuid4()
    await put_source(client, bot, src, document(1, prose(100).encode()))
    await wait_settled(db, src, 1)
    assert await db.fetchval("SELECT count(*) FROM source_status_outbox") == 0


async def test_a_status_survives_in_the_outbox_until_delivered(app_factory, db_url, db):
    """Odoo is down: the status waits in PostgreSQL (not in memory) with its error and next attempt."""
    from tests.support.server import free_port

    down = f"http://127.0.0.1:{free_port()}"
    client = await app_factory(make_settings(database_url=db_url, odoo_url=down, worker_poll_seconds=0.1))
    bot, src = uuid.uuid4(), uuid.uuid4()
    await put_source(client, bot, src, document(1, prose(100).encode()))
    await wait_settled(db, src, 1)
    deadline = time.monotonic() + 20
    while True:
        row = await db.fetchrow("SELECT * FROM source_status_outbox WHERE source_id = $1", src)
        if row and row["payload"]["state"] == "ready" and row["attempts"] >= 1 and row["last_error"]:
            break
        assert time.monotonic() < deadline, row
        import asyncio

        await asyncio.sleep(0.1)
    assert "ConnectError" in row["last_error"]
    assert row["version"] == 1


async def test_a_links_status_carries_the_pages_indexed_and_skipped(app_factory, db_url, db, odoo):
    from tests.ingestion.helpers import link
    from tests.ingestion.http_server import html, text

    site = LocalServer().start()
    try:
        site.routes.update(
            {
                "/robots.txt": text(b"User-agent: *\nDisallow: /private\n"),
                "/": html(
                    b"<html><body><main><p>Home page text.</p><a href='/a'>a</a> <a href='/private/x'>x</a>"
                    b" <a href='/missing'>m</a></main></body></html>"
                ),
                "/a": html(b"<html><body><main><p>Page A text.</p></main></body></html>"),
            }
        )
        settings = make_settings(
            database_url=db_url, odoo_url=odoo.server.url, worker_poll_seconds=0.1, fetch_allow_private_networks=True
        )
        client = await app_factory(settings)
        bot, src = uuid.uuid4(), uuid.uuid4()
        await put_source(client, bot, src, link(1, site.url + "/", max_depth=1, max_pages=10))
        assert (await wait_settled(db, src, 1))["state"] == "ready"
        await wait_outbox_empty(db)
    finally:
        site.stop()
    final = [s for s in odoo.statuses if s["source"] == str(src)][-1]
    # / and /a indexed; /private/x refused by robots.txt and /missing a 404: two skipped
    assert final["state"] == "ready" and final["pages"] == {"indexed": 2, "skipped": 2}


async def test_processing_statuses_carry_the_embedding_progress(app_factory, db_url, db, odoo):
    """While a job embeds, `processing` statuses carry {done, total}: one when embedding starts and one
    after the last batch, with none in between when PROGRESS_CALLBACK_SECONDS has not elapsed; the
    final state carries none. The chunks table is share-locked so the job's commit waits (it swaps
    chunks) until the test has seen the done == total status: the order is forced, not raced."""
    settings = make_settings(
        database_url=db_url,
        odoo_url=odoo.server.url,
        worker_poll_seconds=0.1,
        ingest_batch_chunks=2,
        progress_callback_seconds=3600,
    )
    client = await app_factory(settings)
    bot, src = uuid.uuid4(), uuid.uuid4()
    hold = db.transaction()
    await hold.start()
    try:
        await db.execute("LOCK TABLE chunks IN SHARE MODE")
        await put_source(client, bot, src, document(1, prose(2500).encode()))
        deadline = time.monotonic() + 120
        while True:
            progress = [s for s in odoo.statuses if s["source"] == str(src) and "progress" in s]
            if any(p["progress"]["done"] == p["progress"]["total"] for p in progress):
                break
            assert time.monotonic() < deadline, odoo.statuses
            await asyncio.sleep(0.1)
    finally:
        await hold.commit()
    ready = await wait_settled(db, src, 1)
    await wait_outbox_empty(db)
    total = ready["chunk_count"]
    assert total > 2 * settings.ingest_batch_chunks  # several batches, so throttling had work to do
    assert all(p["state"] == "processing" and p["version"] == 1 for p in progress)
    assert {p["progress"]["total"] for p in progress} == {total}
    assert {p["progress"]["done"] for p in progress} <= {0, total}  # nothing queued in between
    mine = [s for s in odoo.statuses if s["source"] == str(src)]
    assert mine[-1]["state"] == "ready" and "progress" not in mine[-1]
    assert mine.index(progress[-1]) < len(mine) - 1  # the progress came before ready
    seqs = [s["seq"] for s in mine]  # Odoo orders statuses by seq: strictly increasing as recorded
    assert seqs == sorted(set(seqs)), seqs


async def test_every_batch_reports_progress_when_the_interval_allows(app_factory, db_url, db, odoo):
    """With PROGRESS_CALLBACK_SECONDS=0 each batch queues a status (the outbox coalesces them to one row
    per source, so each one is counted by the ids it consumed; the swap is held back as above)."""
    settings = make_settings(
        database_url=db_url,
        odoo_url=odoo.server.url,
        worker_poll_seconds=0.1,
        ingest_batch_chunks=1,
        progress_callback_seconds=0,
    )
    client = await app_factory(settings)
    bot, src = uuid.uuid4(), uuid.uuid4()
    hold = db.transaction()
    await hold.start()
    try:
        await db.execute("LOCK TABLE chunks IN SHARE MODE")
        await put_source(client, bot, src, document(1, prose(2500).encode()))
        deadline = time.monotonic() + 120
        while True:
            done = {s["progress"]["done"] for s in odoo.statuses if "progress" in s}
            total = {s["progress"]["total"] for s in odoo.statuses if "progress" in s}
            if total and max(done) == max(total):
                break
            assert time.monotonic() < deadline, odoo.statuses
            await asyncio.sleep(0.1)
        # Every batch wrote its status: the outbox ids consumed by this source's rows cover them all.
        rows = await db.fetchval("SELECT last_value FROM source_status_outbox_id_seq")
    finally:
        await hold.commit()
    ready = await wait_settled(db, src, 1)
    assert ready["chunk_count"] == max(total)
    # queued? + processing (claim) + one per batch and the start: at least chunks + 2 rows
    assert rows >= ready["chunk_count"] + 2


async def test_a_superseded_or_deleted_versions_progress_queues_nothing(app_factory, db_url, db):
    """A job still embedding an old version must not replace the newer version's undelivered status
    in the outbox (one row per source), nor report progress for a deleted source."""
    import asyncpg

    from app.db.pool import init_connection
    from app.ingestion.service import IngestionContext, report_progress
    from tests.ingestion.helpers import delete_source
    from tests.support.server import free_port

    down = f"http://127.0.0.1:{free_port()}"  # undelivered statuses stay in the outbox
    settings = make_settings(database_url=db_url, odoo_url=down, worker_poll_seconds=0.1)
    client = await app_factory(settings)
    bot, src = uuid.uuid4(), uuid.uuid4()
    await put_source(client, bot, src, document(1, prose(100).encode()))
    await put_source(client, bot, src, document(2, prose(120, seed=1).encode()))
    await wait_settled(db, src, 2)
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2, init=init_connection)
    try:
        ctx = IngestionContext(settings=settings, pool=pool, embedder=None, fetcher=None)  # type: ignore[arg-type]
        before = await db.fetch("SELECT id, payload FROM source_status_outbox WHERE source_id = $1", src)
        await report_progress(ctx, {"id": src, "chatbot_id": bot, "version": 1}, 3, 10, callback=True)
        after = await db.fetch("SELECT id, payload FROM source_status_outbox WHERE source_id = $1", src)
        assert [r["id"] for r in after] == [r["id"] for r in before] and after[0]["payload"]["version"] == 2
        assert (await db.fetchval("SELECT chunks_total FROM sources WHERE id = $1", src)) is None

        assert (await delete_source(client, bot, src, 3)).status_code < 300
        await db.execute("DELETE FROM source_status_outbox")
        await report_progress(ctx, {"id": src, "chatbot_id": bot, "version": 3}, 3, 10, callback=True)
        assert await db.fetchval("SELECT count(*) FROM source_status_outbox") == 0
    finally:
        await pool.close()
