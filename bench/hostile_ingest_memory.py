"""Engine memory while it ingests a large document inside the limits (issue #13).

    .venv/bin/python bench/hostile_ingest_memory.py [--words 999999] [--port 8013]

Starts `python -m app` on 127.0.0.1 with an embedded database in a temporary state directory,
PUTs one TXT document of `"word " * --words` (5 M characters by default, the MAX_EXTRACTED_CHARS
limit) through the signed internal API, and polls the source list every second until the source
is ready or failed, printing its progress (chunks done / total). Reports the engine's resident
memory before the PUT, its peak (VmHWM) and after; the bound is 1 GiB.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fastapi_service"))

from bench._common import signed, wait_ready
from tests.support.rss import GIB, peak_rss_bytes, rss_bytes

SECRET = "whsec_" + base64.b64encode(b"bench-secret-bench-secret-bench!").decode()
MIB = 2**20


async def run(args: argparse.Namespace) -> int:
    state = tempfile.mkdtemp(prefix="cbp-bench-mem-")
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(args.port),
        "WEBHOOK_SECRET": SECRET,
        "ENVIRONMENT": "test",
        "LLM_BACKEND": "none",
        "STATE_DIR": state,
        "HF_HUB_OFFLINE": "1",
        "LOG_LEVEL": "WARNING",
    }
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-m", "app"], cwd=root / "fastapi_service", env=env)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{args.port}", timeout=60) as client:
            await wait_ready(client)
            bot, src = uuid.uuid4(), uuid.uuid4()
            data = b"word " * args.words
            before = rss_bytes(proc.pid)
            payload = {
                "version": 1,
                "kind": "document",
                "name": "big.txt",
                "document": {
                    "filename": "big.txt",
                    "mimetype": "text/plain",
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "content_base64": base64.b64encode(data).decode(),
                },
            }
            started = time.monotonic()
            r = await signed(client, SECRET, "PUT", f"/internal/v1/chatbots/{bot}/sources/{src}", payload)
            assert r.status_code == 202, r.text
            peak_during = 0
            while True:
                await asyncio.sleep(1)
                peak_during = max(peak_during, rss_bytes(proc.pid))
                listing = (await signed(client, SECRET, "GET", f"/internal/v1/chatbots/{bot}/sources", None)).json()
                row = listing[0]
                if row["state"] in ("ready", "failed"):
                    break
                if row.get("progress"):
                    p = row["progress"]
                    print(
                        f"{time.monotonic() - started:7.1f} s  {p['done']:>6}/{p['total']} chunks  "
                        f"rss {rss_bytes(proc.pid) / MIB:.0f} MiB",
                        flush=True,
                    )
            elapsed = time.monotonic() - started
            await asyncio.sleep(2)
            after = rss_bytes(proc.pid)
            peak = peak_rss_bytes(proc.pid)
        print(f"state {row['state']} ({row['error'] or ''}), {row['chunks']} chunks in {elapsed:.0f} s")
        print(f"rss before {before / MIB:.0f} MiB, peak {peak / MIB:.0f} MiB (VmHWM), after {after / MIB:.0f} MiB")
        ok = row["state"] == "ready" and peak < GIB
        print("PASS: peak under 1 GiB" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        proc.terminate()
        proc.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--words", type=int, default=999_999)
    parser.add_argument("--port", type=int, default=8013)
    raise SystemExit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
