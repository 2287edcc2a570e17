"""Local mode: an embedded PostgreSQL 16 + pgvector from the `pgserver` wheel.

Started only when DATABASE_URL is unset. The data directory survives restarts; the server is
stopped when the last process using it calls `stop()` (or exits).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DATABASE_NAME = "rag"


class EmbeddedPostgres:
    def __init__(self, state_dir: Path) -> None:
        self.pgdata = Path(state_dir).expanduser().resolve() / "pgdata"
        self._server: Any = None

    def start(self) -> str:
        """Start (or join) the server and return a DSN for the engine's database."""
        import pgserver  # imported lazily: only local mode needs the wheel

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        logger.info("starting embedded postgres", extra={"pgdata": str(self.pgdata)})
        self._server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
        exists = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
        if "(1 row)" not in exists:
            self._server.psql(f"CREATE DATABASE {DATABASE_NAME};")
        return str(self._server.get_uri(DATABASE_NAME))

    def stop(self) -> None:
        """Release this process's handle; the last handle stops the server."""
        if self._server is not None:
            self._server.cleanup()  # pgserver's reference-counted stop: the last handle stops it
            self._server = None
