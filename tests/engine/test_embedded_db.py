import asyncpg
import psutil

from app.db.embedded import EmbeddedPostgres
from tests.support.server import EngineProcess


def postgres_running(pgdata) -> bool:
    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        if proc.info["name"] == "postgres" and str(pgdata) in " ".join(proc.info["cmdline"] or []):
            return True
    return False


async def test_start_stop_restart_keeps_data(pg_state_dir):
    db = EmbeddedPostgres(pg_state_dir / "state")
    dsn = db.start()
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
    await conn.close()
    db.stop()
    assert not postgres_running(db.pgdata)

    again = EmbeddedPostgres(pg_state_dir / "state")
    conn = await asyncpg.connect(again.start())
    assert await conn.fetchval("SELECT v FROM kept") == "still here"
    assert await conn.fetchval("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'") is not None
    await conn.close()
    again.stop()
    assert not postgres_running(again.pgdata)


def test_engine_process_starts_embedded_database_and_stops_it_on_sigterm(tmp_path, pg_state_dir):
    state = pg_state_dir / "state"
    engine = EngineProcess(
        {"STATE_DIR": str(state), "ENVIRONMENT": "local", "LOG_FORMAT": "text"}, tmp_path / "engine.log"
    )
    engine.env.pop("DATABASE_URL", None)
    try:
        engine.start(timeout=180)
        ready = engine.wait("/readyz", 10).json()
        assert ready["status"] == "ready"
        assert postgres_running(state / "pgdata")
    finally:
        code = engine.stop()
    assert code in (0, -15), engine.tail()  # uvicorn re-raises SIGTERM after a clean shutdown
    assert not postgres_running(state / "pgdata")
