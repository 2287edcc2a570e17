"""Ingestion job outcomes are a closed set (`JobOutcome`), and one helper decides whether a job
still works for its version (`lock_version`), at claim, commit and failure alike."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from app.ingestion.service import IngestionContext, JobOutcome, lock_version, run_job
from app.links.fetcher import SafeFetcher
from tests.conftest import make_settings


@pytest.fixture
async def ctx(db_url, embedder):
    settings = make_settings(database_url=db_url)
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    fetcher = SafeFetcher(settings)
    yield IngestionContext(settings, pool, embedder, fetcher)
    await fetcher.aclose()
    await pool.close()


async def add_source(db, version: int, *, deleted: bool = False, state: str = "queued", indexed: int | None = None):
    source = uuid.uuid4()
    await db.execute(
        "INSERT INTO sources (id, chatbot_id, version, deleted, kind, name, content, state, indexed_version)"
        " VALUES ($1, $2, $3, $4, 'document', 'a.txt', $5, $6, $7)",
        source,
        uuid.uuid4(),
        version,
        deleted,
        b"Some text to index.",
        state,
        indexed,
    )
    return source


async def test_lock_version_returns_the_row_only_while_the_source_wants_that_version(db):
    current = await add_source(db, 3)
    deleted = await add_source(db, 3, deleted=True)
    async with db.transaction():
        assert (await lock_version(db, current, 3))["id"] == current
        assert await lock_version(db, current, 2) is None  # a newer version arrived
        assert await lock_version(db, deleted, 3) is None
        assert await lock_version(db, uuid.uuid4(), 1) is None


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ({"version": 2}, JobOutcome.SUPERSEDED),
        ({"version": 1, "deleted": True}, JobOutcome.SUPERSEDED),
        ({"version": 1, "state": "ready", "indexed": 1}, JobOutcome.UNCHANGED),
    ],
)
async def test_a_job_that_has_nothing_to_do_says_why_as_a_job_outcome(ctx, db, setup, expected):
    source = await add_source(db, **setup)
    outcome = await run_job(ctx, source, 1, refresh=False, last_try=True)
    assert outcome is expected
    assert await db.fetchval("SELECT count(*) FROM source_status_outbox WHERE source_id = $1", source) == 0


def test_the_outcomes_are_the_metric_labels_and_log_values():
    assert [o.value for o in JobOutcome] == ["ready", "failed", "superseded", "unchanged", "retried"]
