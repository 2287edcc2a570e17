"""Metrics and structured logs, observed on a real engine process."""

import json
import uuid

import httpx

from tests.engine.test_internal_chatbots import chatbot_payload
from tests.support.server import EngineProcess
from tests.support.signing import TEST_SECRET, signed


def test_request_ids_metrics_and_json_logs_without_secrets(tmp_path, pg_cluster):
    import asyncio

    db_url = pg_cluster.uri(asyncio.run(pg_cluster.create_database()))
    engine = EngineProcess(
        {
            "DATABASE_URL": db_url,
            "WEBHOOK_SECRET": TEST_SECRET,
            "ENVIRONMENT": "test",
            "LOG_FORMAT": "json",
            "LLM_BACKEND": "none",
        },
        tmp_path / "engine.log",
    )
    try:
        engine.start(timeout=180)
        bot = uuid.uuid4()
        payload = chatbot_payload(1)
        secret_hash = payload["api_keys"][0]["sha256"]
        with httpx.Client(base_url=engine.url, timeout=10) as http:
            r = http.send(signed("PUT", f"{engine.url}/internal/v1/chatbots/{bot}", payload))
            assert r.status_code == 200
            request_id = r.headers["x-request-id"]
            assert len(request_id) == 32
            echoed = http.get("/healthz", headers={"x-request-id": "trace-abc.123"})
            assert echoed.headers["x-request-id"] == "trace-abc.123"
            hostile = http.get("/healthz", headers={"x-request-id": "bad id <script>" + "x" * 80})
            assert len(hostile.headers["x-request-id"]) == 32  # replaced, not echoed
            metrics = http.get("/metrics").text
        assert (
            'http_request_duration_seconds_count{method="PUT",route="/internal/v1/chatbots/{chatbot_id}",status="200"} 1.0'
            in metrics
        )
        assert "embedding_texts_total" in metrics
    finally:
        engine.stop()
    lines = [json.loads(line) for line in engine.log_path.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("message") == "request" and line.get("request_id") == request_id]
    assert access, lines[-5:]
    assert access[0]["chatbot_id"] == str(bot)
    assert access[0]["route"] == "/internal/v1/chatbots/{chatbot_id}"
    assert access[0]["level"] == "INFO" and "time" in access[0]
    text = engine.log_path.read_text()
    assert secret_hash not in text and TEST_SECRET not in text


async def test_a_response_is_counted_before_the_client_has_it():
    # The app may still await after its response is out (a yield dependency releasing its database
    # connection); a client that has the response and reads /metrics at once must see it counted.
    import asyncio
    from types import SimpleNamespace

    from prometheus_client import REGISTRY

    from app.observability.middleware import RequestContextMiddleware

    route = f"/test/{uuid.uuid4().hex}"
    labels = {"method": "POST", "route": route, "status": "201"}
    released = asyncio.Event()

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})
        await released.wait()

    counted_when_sent = []

    async def client(message):
        if message["type"] == "http.response.body":
            counted_when_sent.append(REGISTRY.get_sample_value("http_request_duration_seconds_count", labels))

    scope = {"type": "http", "method": "POST", "path": route, "headers": [], "route": SimpleNamespace(path=route)}
    request = asyncio.create_task(RequestContextMiddleware(app)(scope, None, client))
    while not counted_when_sent:
        assert not request.done(), "the response was never sent"
        await asyncio.sleep(0)
    assert counted_when_sent == [1.0]
    released.set()
    await request
    assert REGISTRY.get_sample_value("http_request_duration_seconds_count", labels) == 1.0, "counted once"
