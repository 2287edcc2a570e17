"""A database as an earlier release left it: the engine's migrations before a version only."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import asyncpg

from app.db.migrations import apply_migrations, available_migrations


async def database_before(pg_cluster: Any, version: str, directory: Path) -> str:
    """The URI of a new database holding the migrations before `version` (copied into `directory`
    and applied there); `apply_migrations(conn)` then applies the rest, as an upgrade would."""
    for migration in available_migrations():
        if migration.version < version:
            shutil.copy(migration.path, directory / migration.path.name)
    uri: str = pg_cluster.uri(await pg_cluster.create_database(template=None))
    conn = await asyncpg.connect(uri)
    try:
        applied = await apply_migrations(conn, directory)
    finally:
        await conn.close()
    assert applied and all(name < version for name in applied), applied
    return uri
