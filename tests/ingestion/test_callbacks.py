"""Status callbacks to Odoo: signed, versioned, retried from the durable outbox."""

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
    """Plays Odoo's webhook controller: verifies each signature, fails the first N deliveries."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.statuses: list[dict] = []
        self.rejected = 0
        self.server = LocalServer({HOOK: self.receive}).start()

    def receive(self, seen):
        try:
            verify(TEST_SECRET, seen.body, seen.headers)
        except InvalidSignature:
            self.rejected += 1
            return 401, {}, b"bad signature"
        if self.fail_first > 0:
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
    assert final[str(good)] | {"_id": None, "indexed_at": None} == {
        "chatbot": str(bot),
        "source": str(good),
        "version": 1,
        "state": "ready",
        "chunks": ready["chunk_count"],
        "error": None,
        "indexed_at": None,
        "_id": None,
    }
    assert final[str(good)]["indexed_at"].startswith(ready["indexed_at"].date().isoformat())
    assert final[str(bad)]["state"] == "failed" and final[str(bad)]["version"] == 3
    assert "empty" in final[str(bad)]["error"]
    assert odoo.rejected == 0
    # Earlier states may have been collapsed, but order is preserved for each source.
    states = [s["state"] for s in odoo.statuses if s["source"] == str(good)]
    assert states[-1] == "ready" and set(states) <= {"queued", "processing", "ready"}


async def test_a_failing_odoo_gets_the_status_again_with_backoff(app_factory, db_url, db):
    odoo = Odoo(fail_first=2)
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
