"""A separate `python -m app.worker` process exports its ingestion metrics over HTTP."""

import asyncio
import os
import subprocess
import sys
import time

import httpx

from tests.support.server import REPO, free_port
from tests.support.signing import TEST_SECRET


def test_worker_process_serves_prometheus_metrics(pg_cluster, tmp_path):
    db_url = pg_cluster.uri(asyncio.run(pg_cluster.create_database()))
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "WEBHOOK_SECRET": TEST_SECRET,
        "ENVIRONMENT": "test",
        "HOST": "127.0.0.1",
        "WORKER_METRICS_PORT": str(port),
        "HF_HUB_OFFLINE": "1",
    }
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.worker"], cwd=REPO / "fastapi_service", env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, (tmp_path / "worker.log").read_text()[-2000:]
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "worker metrics never came up"
                time.sleep(0.5)
        assert "ingestion_queue_depth" in body
        assert 'embedding_texts_total{purpose="warmup"} 1.0' in body  # the start-up warm-up encode
    finally:
        proc.terminate()
        proc.wait(60)
