"""postgres_service/init-databases.sh against a real PostgreSQL with pgvector (the pgserver wheel).

The Compose image runs it with psql as the superuser on an empty cluster; so does this test, on a
cluster of its own (roles are cluster-wide, so the session's shared test cluster is left alone).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.deploy.conftest import REPO

SCRIPT = REPO / "postgres_service/init-databases.sh"
# A quote, a semicolon and a backslash: spliced into SQL they would break the script; passed as
# psql variables they are data.
ODOO_PASSWORD = "o'dd; DROP ROLE x; \\ pass"
RAG_PASSWORD = "rag-password-0123456789"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    pgserver = pytest.importorskip("pgserver")
    server = pgserver.get_server(tmp_path_factory.mktemp("pginit"), cleanup_mode="stop")
    yield server
    server._cleanup()


def _script_env(server: Any, **overrides: str) -> dict[str, str]:
    import pgserver

    uri = urlparse(str(server.get_uri("postgres")))
    bin_dir = Path(pgserver.__file__).parent / "pginstall" / "bin"  # psql of the wheel
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PGHOST": parse_qs(uri.query)["host"][0],
        "POSTGRES_USER": uri.username or "postgres",
        "ODOO_DB_PASSWORD": ODOO_PASSWORD,
        "RAG_DB_PASSWORD": RAG_PASSWORD,
    }
    if uri.port:
        env["PGPORT"] = str(uri.port)
    env.update(overrides)
    return env


def _query(server: Any, database: str, sql: str) -> list[Any]:
    import asyncpg

    async def run() -> list[Any]:
        conn = await asyncpg.connect(str(server.get_uri(database)))
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    return asyncio.run(run())


def test_a_missing_password_stops_the_script_before_any_change(cluster: Any) -> None:
    env = _script_env(cluster)
    del env["RAG_DB_PASSWORD"]
    result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "RAG_DB_PASSWORD must be set" in result.stderr
    assert _query(cluster, "postgres", "SELECT 1 FROM pg_roles WHERE rolname IN ('odoo', 'rag')") == []


def test_creates_roles_databases_and_the_vector_extension(cluster: Any) -> None:
    result = subprocess.run(
        ["bash", str(SCRIPT)], env=_script_env(cluster), capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr

    roles = {
        r["rolname"]: r
        for r in _query(cluster, "postgres", "SELECT rolname, rolcanlogin, rolsuper, rolpassword FROM pg_authid")
    }
    for name in ("odoo", "rag"):
        assert roles[name]["rolcanlogin"] and not roles[name]["rolsuper"]
        assert roles[name]["rolpassword"].startswith("SCRAM-SHA-256$")

    databases = {
        r["datname"]: r
        for r in _query(
            cluster,
            "postgres",
            "SELECT datname, pg_get_userbyid(datdba) AS owner, datcollate FROM pg_database",
        )
    }
    assert databases["odoo"]["owner"] == "odoo" and databases["odoo"]["datcollate"] == "C"
    assert databases["rag"]["owner"] == "rag"
    assert _query(cluster, "rag", "SELECT extname FROM pg_extension WHERE extname = 'vector'")
    assert not _query(cluster, "odoo", "SELECT extname FROM pg_extension WHERE extname = 'vector'")
