"""Clean clone -> `./start.sh --local` -> first demo answer, cold (installs included) and warm.

    ODOO_SRC=/work/shared/odoo-18 python3 bench/local_start.py [--port 8021] [--odoo-port 8079]

1. `git clone` of this repository (its committed HEAD) into a temporary directory;
2. cold: `./start.sh --local` there with a new HOME and STATE_DIR, so the engine's .venv, Odoo's
   .venv-odoo, the embedded database, Odoo's database and the demo are all made from nothing;
   measured until the printed /demo?key=... URL, then until the first /v1/chat answer with that
   key (what a newcomer's first question in the widget does);
3. Ctrl-C (SIGINT to the process group), then warm: the same start again in the same clone and
   state, measured the same way.
Without ODOO_SRC it measures the engine-only local mode. Prints one JSON object. Runs with any
Python 3.11+ (standard library only), since nothing is installed before it starts.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KEY_RE = re.compile(r"(http://127\.0\.0\.1:\d+)/demo\?key=(cbp_pk_[A-Za-z0-9]+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _default_signals() -> None:
    for signum in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


def first_answer(engine: str, key: str) -> dict:
    body = json.dumps({"message": "How do I start the platform without Docker?"}).encode()
    request = urllib.request.Request(
        engine + "/v1/chat",
        data=body,
        headers={"Authorization": "Bearer " + key, "Origin": engine, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.load(response)


def one_start(clone: Path, env: dict[str, str], log: Path, timeout: float) -> dict:
    began = time.perf_counter()
    marks: dict[str, float] = {}
    found: dict[str, str] = {}
    with log.open("a") as sink:
        proc = subprocess.Popen(
            ["./start.sh", "--local"],
            cwd=clone,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=_default_signals,
        )

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                sink.write(line)
                now = time.perf_counter() - began
                if "Starting the engine" in line:
                    marks.setdefault("installs_done_s", now)
                if "The platform is up" in line:
                    marks.setdefault("services_up_s", now)
                match = KEY_RE.search(line)
                if match:
                    found.update(engine=match.group(1), key=match.group(2))
                    marks.setdefault("demo_ready_s", now)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + timeout
            while "key" not in found:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"start.sh gave no demo URL (exit {proc.poll()}); see {log}")
                time.sleep(0.2)
            answer = first_answer(found["engine"], found["key"])
            marks["first_answer_s"] = time.perf_counter() - began
            marks["answer_sources"] = len(answer.get("sources", []))
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(120)
            reader.join(10)
    return {k: round(v, 1) if isinstance(v, float) else v for k, v in marks.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="engine port (default: a free one)")
    parser.add_argument("--odoo-port", type=int, default=0, help="Odoo port (default: a free one)")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cbp-bench-local-"))
    os.chmod(work, 0o755)  # the embedded PostgreSQL runs as its own user when started as root
    clone = work / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    (work / "home").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("VENV", "ODOO_VENV", "STATE_DIR", "DATABASE_URL")}
    env.update(
        HOME=str(work / "home"),
        STATE_DIR=str(work / "state"),
        PORT=str(args.port or free_port()),
        ODOO_PORT=str(args.odoo_port or free_port()),
        LOG_LEVEL="WARNING",
    )
    log = work / "start.log"
    cold = one_start(clone, env, log, args.timeout)
    warm = one_start(clone, env, log, args.timeout)
    result = {
        "commit": subprocess.run(
            ["git", "-C", str(clone), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip(),
        "odoo": bool(os.environ.get("ODOO_SRC")),
        "cold": cold,
        "warm": warm,
        "log": str(log),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(main())
