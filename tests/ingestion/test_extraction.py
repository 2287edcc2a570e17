"""Every supported file type, ingested from real files through the API; the sandbox's limits."""

import asyncio
import uuid

import pytest

from app.extraction.extractors import Limits
from app.extraction.sandbox import DocumentIn, SandboxLimits, extract_in_sandbox
from tests.ingestion import files
from tests.ingestion.helpers import document, prose, put_source, wait_settled

MB = 1024 * 1024


async def ingest_all(client, db, docs: dict[str, tuple[bytes, str, str]]) -> dict[str, dict]:
    bot = uuid.uuid4()
    ids = {key: uuid.uuid4() for key in docs}
    for key, (data, filename, mimetype) in docs.items():
        r = await put_source(client, bot, ids[key], document(1, data, filename, mimetype, name=key))
        assert r.status_code == 202, r.text
    out = {}
    for key, src in ids.items():
        row = await wait_settled(db, src, 1)
        chunks = await db.fetch("SELECT content, metadata FROM chunks WHERE source_id = $1 ORDER BY ordinal", src)
        out[key] = {"row": row, "chunks": chunks, "text": "\n".join(c["content"] for c in chunks)}
    return out


async def test_every_file_type_is_ingested_with_citation_metadata(client, db):
    page_one, page_two = prose(250, seed=1), "Warranty claims need the original receipt. " + prose(120, seed=2)
    csv_data = b"city,country,office hours\nParis,France,9-17\nLyon,France,8-16\n\nOslo,Norway,10-15\n"
    markdown = b"# Setup guide\n\nIntro text about the router.\n\n## Resetting\n\nHold the reset button ten seconds.\n"
    html = files.html_page(
        "Shipping FAQ", "<h2>Delivery times</h2><p>Orders ship within two days.</p><p>Second &amp; para.</p>"
    )
    docs = {
        "pdf": (files.pdf([page_one, page_two]), "handbook.pdf", "application/pdf"),
        "docx": (
            files.docx(
                {"Installation": "Plug the charger in.\n\nWait for the green light.", "Support": "Call us."},
                table=[["Model", "Price"], ["X100", "199"]],
            ),
            "manual.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        "txt": (prose(400, seed=3).encode(), "notes.txt", "text/plain"),
        "md": (markdown, "setup.md", "text/markdown"),
        "html": (html, "faq.html", "text/html"),
        "csv": (csv_data, "offices.csv", "text/csv"),
        # The name and mimetype lie; the bytes are a PDF and are read as one.
        "pdf_named_txt": (files.pdf(["Sniffed from the bytes, not the name."]), "notes.txt", "text/plain"),
        "latin1_txt": ("Café crème brûlée".encode("cp1252"), "menu.txt", ""),
    }
    got = await ingest_all(client, db, docs)
    for key, result in got.items():
        assert result["row"]["state"] == "ready", (key, result["row"]["error"])
        assert result["chunks"], key

    pdf = got["pdf"]
    assert {c["metadata"]["page"] for c in pdf["chunks"]} == {1, 2}
    assert {c["metadata"]["title"] for c in pdf["chunks"]} == {"Handbook"}
    assert any("Warranty claims" in c["content"] and c["metadata"]["page"] == 2 for c in pdf["chunks"])

    docx = got["docx"]
    by_heading = {c["metadata"]["heading"]: c["content"] for c in docx["chunks"]}
    assert "Plug the charger in." in by_heading["Installation"]
    assert "X100 | 199" in by_heading["Support"]
    assert {c["metadata"]["title"] for c in docx["chunks"]} == {"Product manual"}

    md = {c["metadata"]["heading"]: c["content"] for c in got["md"]["chunks"]}
    assert md == {"Setup guide": "Intro text about the router.", "Resetting": "Hold the reset button ten seconds."}

    page = got["html"]
    assert "Orders ship within two days." in page["text"] and "Second & para." in page["text"]
    for chrome in ("script-text-must-not-appear", "navigation-text", "footer-text", "color:red"):
        assert chrome not in page["text"]
    assert {c["metadata"]["heading"] for c in page["chunks"]} == {"Delivery times"}
    assert page["chunks"][0]["metadata"]["title"] == "Shipping FAQ"

    assert "city: Lyon; country: France; office hours: 8-16" in got["csv"]["text"]
    assert "Sniffed from the bytes" in got["pdf_named_txt"]["text"]
    assert got["pdf_named_txt"]["chunks"][0]["metadata"]["page"] == 1
    assert got["latin1_txt"]["text"] == "Café crème brûlée"


HOSTILE = {
    "empty": (b"", "empty.txt", "the file is empty"),
    "png_named_pdf": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "report.pdf", "PNG image"),
    "zip_named_docx": (None, "archive.docx", "not a Word document"),
    "encrypted_pdf": (None, "secret.pdf", "password-protected"),
    "corrupt_pdf": (b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage", "broken.pdf", "PDF"),
    "pdf_bomb": (None, "bomb.pdf", "decompression bomb"),
    "docx_bomb": (None, "bomb.docx", "zip bomb"),
    "nested_html": (None, "deep.html", "levels deep"),
    "binary": (bytes(range(256)) * 20, "data.txt", "binary"),
}


def hostile_bytes(key: str) -> bytes:
    import io
    import zipfile

    makers = {
        "encrypted_pdf": lambda: files.pdf(["top secret"], password="hunter2"),
        "pdf_bomb": files.pdf_bomb,
        "docx_bomb": files.docx_zip_bomb,
        "nested_html": files.nested_html,
    }
    if key == "zip_named_docx":
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as z:
            z.writestr("readme.txt", "just a zip")
        return out.getvalue()
    data = HOSTILE[key][0]
    return data if data is not None else makers[key]()


@pytest.mark.slow
async def test_hostile_files_fail_with_reasons_while_the_engine_stays_small(tmp_path, db_url, db):
    """A real engine process ingests bombs and broken files next to good ones; its RSS stays < 1 GiB."""
    import httpx
    import psutil

    from tests.support.server import EngineProcess
    from tests.support.signing import TEST_SECRET

    engine = EngineProcess(
        {
            "DATABASE_URL": db_url,
            "WEBHOOK_SECRET": TEST_SECRET,
            "ENVIRONMENT": "test",
            "LLM_BACKEND": "none",
            "LOG_FORMAT": "text",
            "WORKER_CONCURRENCY": "2",
        },
        tmp_path / "engine.log",
    ).start()
    peak = 0
    sampling = True

    async def sample() -> None:
        nonlocal peak
        process = psutil.Process(engine.proc.pid)
        while sampling:
            peak = max(peak, process.memory_info().rss)
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    try:
        async with httpx.AsyncClient(base_url=engine.url, timeout=60) as client:
            bot = uuid.uuid4()
            ids = {}
            for key, (_, filename, _) in HOSTILE.items():
                ids[key] = uuid.uuid4()
                r = await put_source(client, bot, ids[key], document(1, hostile_bytes(key), filename))
                assert r.status_code == 202, r.text
                good = uuid.uuid4()  # good documents interleaved with the hostile ones keep ingesting
                ids[f"good_{key}"] = good
                await put_source(client, bot, good, document(1, prose(300, seed=len(ids)).encode(), "ok.txt"))
            for key, src in ids.items():
                row = await wait_settled(db, src, 1, timeout=180)
                if key.startswith("good_"):
                    assert row["state"] == "ready", (key, row["error"])
                else:
                    assert row["state"] == "failed", key
                    assert HOSTILE[key][2].lower() in row["error"].lower(), (key, row["error"])
                    assert await db.fetchval("SELECT count(*) FROM chunks WHERE source_id = $1", src) == 0
            assert (await client.get("/healthz")).status_code == 200
    finally:
        sampling = False
        await sampler
        print(f"engine RSS peak: {peak / MB:.0f} MB")
        children = psutil.Process(engine.proc.pid).children(recursive=True)
        engine.stop()
    assert peak < 1024 * MB, f"engine RSS peaked at {peak / MB:.0f} MB"
    assert not [c for c in children if c.is_running() and "sandbox" in " ".join(c.cmdline())]


LIMITS = Limits(max_bytes=50 * MB, max_pages=3, max_chars=10_000, max_unzipped_bytes=100 * MB)


async def test_the_sandbox_kills_a_parser_that_runs_past_its_wall_time():
    # 120 pages of text take pypdf ~0.4 s here: a genuinely slow parse, 8x the budget.
    slow = files.pdf([prose(300, seed=i) for i in range(120)])
    roomy = Limits(max_bytes=50 * MB, max_pages=1000, max_chars=10_000_000, max_unzipped_bytes=100 * MB)
    limits = SandboxLimits(roomy, timeout_seconds=0.05, memory_mb=512)
    [outcome] = await extract_in_sandbox([DocumentIn(slow, "slow.pdf")], limits)
    assert outcome.extracted is None and "longer than 0.05 s" in outcome.error
    [same] = await extract_in_sandbox([DocumentIn(slow, "slow.pdf")], SandboxLimits(roomy, 60, 512))
    assert same.extracted is not None and len({b.page for b in same.extracted.blocks}) == 120


async def test_the_sandbox_caps_memory():
    limits = SandboxLimits(Limits(200 * MB, 3, 100 * MB, 100 * MB), timeout_seconds=30, memory_mb=160)
    [outcome] = await extract_in_sandbox([DocumentIn(b"word " * (20 * MB), "big.txt")], limits)
    assert outcome.extracted is None and "memory" in outcome.error


async def test_page_and_character_caps_are_reasons_not_truncation():
    limits = SandboxLimits(LIMITS, timeout_seconds=30, memory_mb=512)
    many_pages, long_text = await extract_in_sandbox(
        [DocumentIn(files.pdf(["a", "b", "c", "d"]), "p.pdf"), DocumentIn(b"x " * 6000, "t.txt")], limits
    )
    assert many_pages.error == "the PDF has 4 pages; the limit is 3"
    assert long_text.error == "the document has more than 10,000 characters of text (the limit)"


def test_pdf_running_headers_and_footers_are_dropped_and_body_lines_kept():
    from app.extraction.extractors import extract
    from tests.answering.qa_set import handbook_pdf

    limits = Limits(max_bytes=10**7, max_pages=50, max_chars=10**7, max_unzipped_bytes=10**8)
    blocks = extract(handbook_pdf(), "handbook.pdf", "application/pdf", limits).blocks
    assert [b.page for b in blocks] == [1, 2, 3, 4]
    text = "\n".join(b.text for b in blocks)
    assert "Tenant Handbook 2026" not in text and "Page 2 of 4" not in text and "Confidential" not in text
    assert blocks[0].text.startswith("Welcome") and "No more than 60 vehicles" in blocks[0].text
    assert blocks[3].text.rstrip().endswith("assistance dogs.")
    # Two pages are too few to tell a running line from a repeated one: both keep everything.
    two = extract(files.pdf(["Same first line\nBody one.", "Same first line\nBody two."]), "t.pdf", "", limits).blocks
    assert all(b.text.startswith("Same first line") for b in two)
