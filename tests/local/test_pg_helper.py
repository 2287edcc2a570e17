"""odoo_service/local/pg.py stop: a PostgreSQL whose owner exited without stopping it is stopped
(what start.sh --local does after the engine, so that Ctrl-C leaves no database behind)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil

from tests.support.server import REPO

PG = REPO / "odoo_service" / "local" / "pg.py"


def postgres_on(pgdata: Path) -> list[int]:
    return [p.pid for p in psutil.process_iter(["cmdline"]) if str(pgdata) in " ".join(p.info["cmdline"] or [])]


def test_stop_ends_an_orphaned_server_and_is_a_no_op_after(pg_state_dir: Path) -> None:
    pgdata = pg_state_dir / "pgdata"
    # an owner that leaves its server running, as a killed engine would
    subprocess.run(
        [sys.executable, "-c", f"import pgserver; pgserver.get_server({str(pgdata)!r}, cleanup_mode=None)"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert postgres_on(pgdata)
    first = subprocess.run([sys.executable, str(PG), "stop", str(pgdata)], capture_output=True, text=True, timeout=60)
    assert first.returncode == 0 and "was still running; stopping it" in first.stderr
    assert postgres_on(pgdata) == []
    again = subprocess.run([sys.executable, str(PG), "stop", str(pgdata)], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "stopping" not in again.stderr
