"""PostgreSQL for Odoo outside Docker, from the engine's `pgserver` wheel (run with the engine's .venv).

  python odoo_service/local/pg.py role PGDATA ROLE PASSWORD [OWNER_PID [TIMEOUT]]
      Join the server running on PGDATA (local mode: the engine's embedded PostgreSQL; with
      OWNER_PID, first wait until the server that process starts is ready, failing if it exits), make sure
      ROLE exists (LOGIN CREATEDB, never superuser, so Odoo creates and owns its own database) and
      print `HOST PORT BINDIR`: the Unix socket directory, the port and the client tools' directory.

  python odoo_service/local/pg.py stop PGDATA [TIMEOUT]
      Stop the server on PGDATA if it still runs (start.sh --local, after the engine has exited).

  python odoo_service/local/pg.py serve DIR ROLE PASSWORD ENV_FILE
      A throw-away server for the tests: start one in DIR, create ROLE, write ODOO_DB_HOST,
      ODOO_DB_PORT, ODOO_DB_USER, ODOO_DB_PASSWORD and PG_BIN as shell assignments to ENV_FILE,
      then wait for SIGTERM/SIGINT (or the caller's death) and stop the server, deleting its data.

pgserver runs postgres as the unprivileged user `pgserver` when started as root, listens on a
Unix socket only and trusts local connections; the role's password is still set, so the same
Odoo configuration works against a server that checks passwords.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROLE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _server(pgdata: Path, cleanup_mode: str | None):
    import pgserver

    return pgserver.get_server(pgdata, cleanup_mode=cleanup_mode)


def _endpoint(server) -> tuple[str, str]:
    """(socket directory or host, port) of a pgserver, read from its connection URI."""
    uri = urlsplit(str(server.get_uri("postgres")))
    host = parse_qs(uri.query).get("host", [uri.hostname or ""])[0]
    return host, str(uri.port or 5432)


def _bindir() -> str:
    import pgserver

    return str(Path(pgserver.__file__).parent / "pginstall" / "bin")


def ensure_role(server, role: str, password: str) -> None:
    if not ROLE_RE.match(role):
        raise SystemExit(f"pg.py: invalid role name {role!r}")
    quoted = password.replace("'", "''")
    server.psql(
        "DO $$ BEGIN "
        f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
        f"CREATE ROLE {role} LOGIN CREATEDB PASSWORD '{quoted}'; "
        f"ELSE ALTER ROLE {role} LOGIN CREATEDB PASSWORD '{quoted}'; END IF; END $$;"
    )


def _wait_running(path: Path, owner_pid: int, timeout: float) -> None:
    """Wait until the server that OWNER_PID (the engine) starts on PATH accepts connections."""
    from pgserver.utils import PostmasterInfo

    deadline = time.monotonic() + timeout
    while True:
        try:
            info = PostmasterInfo.read_from_pgdata(path) if (path / "PG_VERSION").exists() else None
        except (OSError, ValueError, IndexError, AssertionError):  # postmaster.pid partly written, or initdb
            info = None
        if info is not None and info.is_running() and info.status == "ready":
            return
        try:
            os.kill(owner_pid, 0)
        except ProcessLookupError:
            raise SystemExit(f"pg.py: process {owner_pid} exited before PostgreSQL in {path} was ready") from None
        if time.monotonic() > deadline:
            raise SystemExit(f"pg.py: PostgreSQL in {path} was not ready after {timeout:.0f}s")
        time.sleep(0.2)


def cmd_role(pgdata: str, role: str, password: str, owner_pid: str = "", timeout: str = "600") -> None:
    path = Path(pgdata).expanduser().resolve()
    if owner_pid:
        # started next to the engine: join its server once it runs, never start one ourselves
        _wait_running(path, int(owner_pid), float(timeout))
    elif not (path / "PG_VERSION").exists():
        raise SystemExit(f"pg.py: no PostgreSQL data directory at {path}")
    server = _server(path, "stop")  # joins the running server; the engine's handle keeps it up
    ensure_role(server, role, password)
    host, port = _endpoint(server)
    print(host, port, _bindir())


def cmd_stop(pgdata: str, timeout: str = "30") -> None:
    """Stop the server on PGDATA if one still runs (fast shutdown, then immediate), e.g. after
    its owner was killed before it could stop it: local mode leaves no PostgreSQL behind."""
    from pgserver.utils import PostmasterInfo

    path = Path(pgdata).expanduser().resolve()
    try:
        info = PostmasterInfo.read_from_pgdata(path)
    except (OSError, ValueError, IndexError, AssertionError):
        info = None
    if info is None or not info.is_running():
        return
    print(f"pg.py: PostgreSQL in {path} was still running; stopping it", file=sys.stderr)
    for signum, wait in ((signal.SIGINT, float(timeout)), (signal.SIGQUIT, 10.0)):
        try:
            os.kill(info.pid, signum)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not info.is_running():
                return
            time.sleep(0.2)
    raise SystemExit(f"pg.py: PostgreSQL (pid {info.pid}) in {path} did not stop")


def cmd_serve(directory: str, role: str, password: str, env_file: str) -> None:
    root = Path(directory).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    server = _server(root / "pgdata", "delete")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        ensure_role(server, role, password)
        host, port = _endpoint(server)
        values = {
            "ODOO_DB_HOST": host,
            "ODOO_DB_PORT": port,
            "ODOO_DB_USER": role,
            "ODOO_DB_PASSWORD": password,
            "PG_BIN": _bindir(),
        }
        tmp = Path(env_file + ".tmp")
        tmp.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in values.items()))
        tmp.rename(env_file)  # appears complete or not at all
        parent = os.getppid()
        while not stop.wait(1.0):
            if os.getppid() != parent:  # the caller died without stopping us
                break
    finally:
        server.cleanup()


def main(argv: list[str]) -> None:
    if len(argv) in (4, 5, 6) and argv[0] == "role":
        cmd_role(*argv[1:])
    elif len(argv) in (2, 3) and argv[0] == "stop":
        cmd_stop(*argv[1:])
    elif len(argv) == 5 and argv[0] == "serve":
        cmd_serve(*argv[1:])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
