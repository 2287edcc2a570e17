"""`python -m app.worker` attaches the database like the API (app/db/bootstrap.py): it waits for
a database that is not there yet, and stops the embedded database it started."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import asyncpg
import pytest

from tests.engine.test_embedded_db import postgres_running
from tests.ingestion.test_worker_process import WorkerProcess


def wait_for(predicate, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}; worker log:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)


def logged(log: Path, text: str) -> bool:
    return log.exists() and text in log.read_text(errors="replace")


@pytest.mark.slow
async def test_the_worker_waits_for_its_database_then_migrates_it_and_runs(pg_cluster, tmp_path):
    name = f"late_{time.monotonic_ns()}"
    log = tmp_path / "worker.log"
    worker = WorkerProcess(pg_cluster.uri(name), log)  # this database does not exist yet
    try:
        wait_for(lambda: logged(log, "database not reachable yet; retrying"), 120, "no retry was logged", log)
        time.sleep(1.0)
        assert worker.proc.poll() is None, f"the worker gave up: {log.read_text(errors='replace')[-3000:]}"
        conn = await asyncpg.connect(pg_cluster.admin_uri)
        try:
            await conn.execute(f"CREATE DATABASE {name}")
        finally:
            await conn.close()
        wait_for(lambda: logged(log, "worker process ready"), 180, "the worker never became ready", log)
        conn = await asyncpg.connect(pg_cluster.uri(name))
        try:
            assert await conn.fetchval("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
            assert await conn.fetchval("SELECT to_regclass('webhook_receipts') IS NOT NULL")
        finally:
            await conn.close()
    finally:
        code = worker.stop(signal.SIGTERM)
    assert code == 0, log.read_text(errors="replace")[-3000:]


@pytest.mark.slow
def test_the_worker_stops_the_embedded_database_it_started(tmp_path, pg_state_dir):
    state = pg_state_dir / "state"
    log = tmp_path / "worker.log"
    worker = WorkerProcess(None, log, STATE_DIR=str(state), ENVIRONMENT="local")
    try:
        wait_for(lambda: logged(log, "worker process ready"), 240, "the worker never became ready", log)
        assert postgres_running(state / "pgdata")
    finally:
        code = worker.stop(signal.SIGTERM)
    assert code == 0, log.read_text(errors="replace")[-3000:]
    assert not postgres_running(state / "pgdata")
