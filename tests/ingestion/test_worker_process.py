"""`python -m app.worker` as a real process: a SIGKILL mid-job, and a SIGTERM with no grace time."""

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from tests.conftest import make_settings
from tests.ingestion.helpers import document, prose, put_source, wait_jobs_idle, wait_settled
from tests.support.server import REPO
from tests.support.signing import TEST_SECRET

BIG = prose(15_000, seed=11).encode()  # a few hundred chunks: several seconds of embedding


class WorkerProcess:
    def __init__(self, db_url: str | None, log_path, **env: str) -> None:
        """`db_url=None`: no DATABASE_URL, so the worker starts the embedded database (local mode)."""
        self.env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "WEBHOOK_SECRET": TEST_SECRET,
            "ENVIRONMENT": "test",
            "LOG_FORMAT": "text",
            "HF_HUB_OFFLINE": "1",
            "WORKER_CONCURRENCY": "1",
            "WORKER_HEARTBEAT_SECONDS": "0.5",
            "WORKER_STALLED_SECONDS": "3",
            "WORKER_POLL_SECONDS": "0.2",
            **env,
        }
        if db_url is None:
            del self.env["DATABASE_URL"]
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.worker"],
            cwd=REPO / "fastapi_service",
            env=self.env,
            stdout=self.log,
            stderr=self.log,
        )

    def stop(self, sig=signal.SIGTERM, timeout=60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


async def wait_until(predicate, timeout=90.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


async def source_state(db, src):
    return await db.fetchval("SELECT state FROM sources WHERE id = $1", src)


@pytest.fixture
async def api(app_factory, db_url):
    """The API without in-process workers: only the worker processes run jobs."""
    return await app_factory(make_settings(database_url=db_url, workers_in_process=False))


@pytest.mark.slow
async def test_a_worker_killed_mid_job_is_recovered_and_the_job_completes_once(api, db, db_url, tmp_path):
    bot, src, clean = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    first = WorkerProcess(db_url, tmp_path / "w1.log")
    try:
        await put_source(api, bot, src, document(1, BIG, "big.txt"))
        await wait_until(lambda: _is(db, src, "processing"), what="the worker to start the job")
        await asyncio.sleep(1.0)  # well inside extraction/embedding
        assert await source_state(db, src) == "processing"
        first.stop(signal.SIGKILL)
        assert first.proc.returncode == -signal.SIGKILL
        assert await db.fetchval("SELECT status::text FROM procrastinate_jobs") == "doing"
    finally:
        first.stop(signal.SIGKILL)
    second = WorkerProcess(db_url, tmp_path / "w2.log")
    try:
        row = await wait_settled(db, src, 1, timeout=120)
        assert row["state"] == "ready", row["error"]
        # A clean run of the same document gives the same chunks.
        await put_source(api, bot, clean, document(1, BIG, "big.txt"))
        clean_row = await wait_settled(db, clean, 1, timeout=120)
        await wait_jobs_idle(db)
    finally:
        assert second.stop() == 0
    assert row["chunk_count"] == clean_row["chunk_count"] > 50
    recovered = [
        r["content"] for r in await db.fetch("SELECT content FROM chunks WHERE source_id = $1 ORDER BY ordinal", src)
    ]
    fresh = [
        r["content"] for r in await db.fetch("SELECT content FROM chunks WHERE source_id = $1 ORDER BY ordinal", clean)
    ]
    assert recovered == fresh
    jobs = await db.fetch("SELECT id, status::text, attempts, args FROM procrastinate_jobs ORDER BY id")
    job = next(j for j in jobs if j["args"]["source"] == str(src))
    assert [j["status"] for j in jobs] == ["succeeded", "succeeded"]
    events = await db.fetch("SELECT type::text, at FROM procrastinate_events WHERE job_id = $1 ORDER BY id", job["id"])
    # Two runs (the killed one, then the retry); re-queued once; finished once. Only state
    # transitions count: procrastinate records a "scheduled" event (not a transition) for every
    # write to a waiting job's row with a schedule, so how many there are depends on timing (a
    # loaded CI machine saw two).
    transitions = [e["type"] for e in events if e["type"] != "scheduled"]
    assert transitions == ["deferred", "started", "deferred_for_retry", "started", "succeeded"]
    assert "scheduled" in [e["type"] for e in events]  # the re-queue set a time
    assert job["attempts"] == 2
    finished = await db.fetchval(
        "SELECT count(*) FROM procrastinate_events WHERE job_id = $1 AND type = 'succeeded'", job["id"]
    )
    assert finished == 1


async def _is(db, src, state):
    return await source_state(db, src) == state


@pytest.mark.slow
async def test_sigterm_without_grace_requeues_the_running_job(api, db, db_url, tmp_path):
    bot, src = uuid.uuid4(), uuid.uuid4()
    first = WorkerProcess(db_url, tmp_path / "w1.log", WORKER_SHUTDOWN_GRACE_SECONDS="0")
    try:
        await put_source(api, bot, src, document(1, BIG, "big.txt"))
        await wait_until(lambda: _is(db, src, "processing"), what="the worker to start the job")
        await asyncio.sleep(0.5)
    finally:
        code = first.stop(signal.SIGTERM)
    assert code == 0
    job = await db.fetchrow("SELECT status::text, attempts FROM procrastinate_jobs")
    assert (job["status"], job["attempts"]) == ("todo", 1)  # aborted by the shutdown, queued again
    assert await db.fetchval("SELECT count(*) FROM chunks") == 0
    second = WorkerProcess(db_url, tmp_path / "w2.log")
    try:
        row = await wait_settled(db, src, 1, timeout=120)
    finally:
        second.stop()
    assert row["state"] == "ready" and row["chunk_count"] > 50
