"""Cold start of `./start.sh --local` (after install) and the engine's resident memory at idle.

    .venv/bin/python bench/startup.py [--runs 3] [--port 8011]

Each run starts ./start.sh --local in a fresh state directory (a new embedded database: initdb
included, the worst case) or, with --reuse-state, in one kept between runs; it measures the time
until /readyz answers 200, waits --idle seconds, reads the RSS of the engine process and of the
embedded PostgreSQL processes, then stops everything with Ctrl-C (SIGINT) as a user would.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]


def one_run(port: int, state_dir: Path, idle: float) -> tuple[float, float, float]:
    env = {**os.environ, "PORT": str(port), "STATE_DIR": str(state_dir), "LOG_LEVEL": "WARNING"}
    started = time.perf_counter()
    proc = subprocess.Popen(
        ["./start.sh", "--local", "--no-demo"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}/readyz"
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"start.sh exited with {proc.returncode}")
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        ready = time.perf_counter() - started
        time.sleep(idle)
        engine = [p for p in psutil.Process(proc.pid).children(recursive=True) if "app" in " ".join(p.cmdline())]
        engine_rss = sum(p.memory_info().rss for p in engine) / 2**20
        pg_rss = 0.0
        for p in psutil.process_iter(attrs=["name", "cmdline"]):
            if p.info["name"] == "postgres" and str(state_dir) in " ".join(p.info["cmdline"] or []):
                for q in [p, *p.children(recursive=True)]:
                    pg_rss += q.memory_info().rss / 2**20
        return ready, engine_rss, pg_rss
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds idle before reading RSS")
    parser.add_argument("--reuse-state", action="store_true", help="keep one state dir (warm database)")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            state = Path(tmp) / ("state" if args.reuse_state else f"state{i}")
            results.append(one_run(args.port, state, args.idle))
            r = results[-1]
            print(f"run {i + 1}: ready after {r[0]:.2f}s; idle RSS engine {r[1]:.0f} MiB, postgres {r[2]:.0f} MiB")
    ready = [r[0] for r in results]
    print(
        f"cold start to /readyz: median {statistics.median(ready):.2f}s (min {min(ready):.2f}, max {max(ready):.2f});"
        f" idle RSS engine median {statistics.median(r[1] for r in results):.0f} MiB,"
        f" embedded postgres {statistics.median(r[2] for r in results):.0f} MiB"
    )


if __name__ == "__main__":
    main()
