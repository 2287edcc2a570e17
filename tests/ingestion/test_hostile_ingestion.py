"""Hostile documents and sites (issue #13, ingestion): each ends as one clear state, never a crash."""

import uuid

import pytest

from app.extraction.extractors import Limits, extract
from tests.conftest import make_settings
from tests.ingestion.files import html_page
from tests.ingestion.helpers import document, link, prose, put_source, wait_settled
from tests.ingestion.http_server import LocalServer, html, redirect, text


@pytest.fixture
async def ingest_client(app_factory, db_url):
    settings = make_settings(database_url=db_url, fetch_allow_private_networks=True, worker_poll_seconds=0.1)
    return await app_factory(settings)


def test_the_markdown_heading_pattern_is_linear():
    # "# a" + 3,000 spaces + "b" took 60 s with the old pattern; 300,000 spaces would take hours.
    line = "# a" + " " * 300_000 + "b"
    limits = Limits(max_bytes=10_000_000, max_pages=10, max_chars=10_000_000, max_unzipped_bytes=10_000_000)
    result = extract((line + "\nbody text\n").encode(), "x.md", "", limits)
    assert result.title == "a" + " " * 300_000 + "b"
    closing = extract(b"# Title ##\ntext\n## C#\nmore\n", "y.md", "", limits)
    assert closing.title == "Title"
    assert [b.heading for b in closing.blocks] == ["Title", "C#"]


async def test_nul_in_a_markdown_heading_is_cleaned_and_the_document_indexed(ingest_client, db):
    bot, src = uuid.uuid4(), uuid.uuid4()
    # past the first 8 KiB, where a NUL no longer marks the file as binary
    data = ("# Title\n" + prose(1500) + "\n## Sec\u0000tion " + " " * 3000 + "x\n" + prose(80)).encode()
    assert data.index(b"\x00") > 8192
    await put_source(ingest_client, bot, src, document(1, data, filename="nul.md"))
    row = await wait_settled(db, src, 1)
    assert row["state"] == "ready", row["error"]
    metadata = [r["metadata"] for r in await db.fetch("SELECT metadata FROM chunks WHERE source_id = $1", src)]
    assert metadata and all("\u0000" not in str(m) for m in metadata)
    assert {m.get("title") for m in metadata} == {"Title"}
    assert any(str(m.get("heading", "")).startswith("Sec tion") for m in metadata), metadata[-1]


async def test_a_redirect_to_an_unusable_url_is_one_failed_page_not_an_aborted_crawl(ingest_client, db):
    server = LocalServer().start()
    try:
        server.routes.update(
            {
                "/": html(html_page("Home", f"<p>Welcome. {prose(60, seed=1)}</p>", ["/bad-v6", "/bad-host", "/a"])),
                "/bad-v6": redirect("http://[::1"),
                "/bad-host": redirect("http:x"),
                "/a": html(html_page("Page A", f"<p>Alpha content. {prose(60, seed=2)}</p>")),
            }
        )
        bot, src = uuid.uuid4(), uuid.uuid4()
        await put_source(ingest_client, bot, src, link(1, server.url + "/", max_depth=1, max_pages=10))
        row = await wait_settled(db, src, 1)
    finally:
        server.stop()
    assert row["state"] == "ready", row["error"]
    urls = {r["metadata"]["url"] for r in await db.fetch("SELECT metadata FROM chunks WHERE source_id = $1", src)}
    assert {server.url + "/", server.url + "/a"} <= urls


DISH = "Café crème brûlée — 30 €"


async def chunk_text(db, src) -> str:
    return " ".join(r["content"] for r in await db.fetch("SELECT content FROM chunks WHERE source_id = $1", src))


@pytest.mark.parametrize(
    ("data", "filename", "mimetype"),
    [
        (f"<p>{DISH}</p>".encode(), "menu.html", ""),  # UTF-8, no <meta charset>
        (f"<html><head><meta charset='windows-1252'></head><p>{DISH}</p>".encode("cp1252"), "menu.html", ""),
        (DISH.encode("cp1252"), "menu.txt", "text/plain; charset=windows-1252"),
        (DISH.encode("utf-16"), "menu.txt", ""),  # BOM
    ],
    ids=["utf8-no-meta", "meta", "mimetype-charset", "bom"],
)
async def test_documents_are_decoded_with_their_declared_or_detected_charset(
    ingest_client, db, data, filename, mimetype
):
    bot, src = uuid.uuid4(), uuid.uuid4()
    await put_source(ingest_client, bot, src, document(1, data, filename=filename, mimetype=mimetype))
    row = await wait_settled(db, src, 1)
    assert row["state"] == "ready", row["error"]
    assert DISH in await chunk_text(db, src)


async def test_crawled_pages_keep_the_charset_of_their_content_type(ingest_client, db):
    server = LocalServer().start()
    try:
        latin = f"<html><body><p>{DISH.replace('—', '-').replace('€', 'EUR')}</p>".encode("latin-1")
        server.routes.update(
            {
                "/": text(
                    latin + b'<a href="/utf8">more</a></body></html>', content_type="text/html; charset=ISO-8859-1"
                ),
                "/utf8": text(f"<html><body><p>{DISH}</p></body></html>".encode(), content_type="text/html"),
            }
        )
        bot, src = uuid.uuid4(), uuid.uuid4()
        await put_source(ingest_client, bot, src, link(1, server.url + "/", max_depth=1, max_pages=5))
        row = await wait_settled(db, src, 1)
    finally:
        server.stop()
    assert row["state"] == "ready", row["error"]
    content = await chunk_text(db, src)
    assert "Café crème brûlée - 30 EUR" in content and DISH in content


def test_undeclared_legacy_text_is_detected():
    from app.extraction.charsets import decode

    russian = "Привет, как дела? Это тест кодировки."
    assert decode(russian.encode("cp1251")) == russian
    assert decode("Café crème brûlée".encode("cp1252")) == "Café crème brûlée"


@pytest.fixture
async def small_batches(app_factory, db_url):
    return await app_factory(make_settings(database_url=db_url, ingest_batch_chunks=2, max_chunks_per_document=40))


async def test_chunks_are_embedded_and_staged_in_batches_then_swapped_whole(small_batches, db):
    bot, src = uuid.uuid4(), uuid.uuid4()
    await put_source(small_batches, bot, src, document(1, prose(1500).encode()))
    row = await wait_settled(db, src, 1)
    assert row["state"] == "ready", row["error"]
    ordinals = [r["ordinal"] for r in await db.fetch("SELECT ordinal FROM chunks WHERE source_id = $1 ORDER BY 1", src)]
    assert len(ordinals) > 4 and ordinals == list(range(len(ordinals))) and row["chunk_count"] == len(ordinals)
    assert await db.fetchval("SELECT count(*) FROM chunk_staging") == 0
    assert (row["chunks_done"], row["chunks_total"]) == (None, None)


async def test_a_document_over_the_chunk_cap_fails_with_the_count(small_batches, db):
    bot, src = uuid.uuid4(), uuid.uuid4()
    await put_source(small_batches, bot, src, document(1, b"word " * 20_000))
    row = await wait_settled(db, src, 1)
    assert row["state"] == "failed" and "the limit is 40" in row["error"], row["error"]
    assert await db.fetchval("SELECT count(*) FROM chunk_staging") == 0


async def test_progress_of_a_running_job_is_in_the_source_status(small_batches, db):
    from tests.ingestion.helpers import list_sources

    bot, src = uuid.uuid4(), uuid.uuid4()
    await put_source(small_batches, bot, src, document(1, prose(200).encode()))
    await wait_settled(db, src, 1)
    await db.execute(
        "UPDATE sources SET state = 'processing', chunks_done = 128, chunks_total = 4546 WHERE id = $1", src
    )
    [status] = (await list_sources(small_batches, bot)).json()
    assert status["progress"] == {"done": 128, "total": 4546}


async def test_one_chatbots_backlog_does_not_queue_ahead_of_another_chatbots_first_job(app_factory, db_url, db):
    """procrastinate fetches by priority, then age: B's first upload must come before A's backlog."""
    client = await app_factory(make_settings(database_url=db_url, workers_in_process=False))
    a, b = uuid.uuid4(), uuid.uuid4()
    a_sources = [uuid.uuid4() for _ in range(4)]
    for src in a_sources:
        assert (await put_source(client, a, src, document(1, prose(50).encode()))).status_code == 202
    b_source = uuid.uuid4()
    assert (await put_source(client, b, b_source, document(1, b"one second of work"))).status_code == 202
    order = await db.fetch(
        "SELECT args->>'source' AS source FROM procrastinate_jobs WHERE status = 'todo' ORDER BY priority DESC, id"
    )
    sources = [r["source"] for r in order]
    assert sources.index(str(b_source)) == 1, sources  # after A's first job only
    assert sources[0] == str(a_sources[0])
