from app.embedding.service import EmbeddingService
from tests.conftest import make_settings, with_lifespan_state
from tests.support.server import free_port


async def test_ready_when_database_migrations_and_model_are_there(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"] == {"database": "ok", "migrations": "ok", "embedding_model": "ok"}


async def test_readiness_names_an_unreachable_database(app_factory):
    settings = make_settings(database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/rag")
    import asyncio

    import httpx

    from app.main import create_app

    app = create_app(settings, embedder=EmbeddingService("sentence-transformers/all-MiniLM-L6-v2"))
    async with app.router.lifespan_context(app) as state:
        served = with_lifespan_state(app, state)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=served), base_url="http://t") as c:
            assert (await c.get("/healthz")).status_code == 200  # alive even without a database
            await asyncio.sleep(0.5)
            r = await c.get("/readyz")
            assert r.status_code == 503
            body = r.json()
            assert body["error"] == "not_ready"
            assert body["checks"]["database"].startswith("unreachable")
            assert "database" in body["detail"]


async def test_readiness_names_a_missing_embedding_model(app_factory, db_url, tmp_path):
    import asyncio

    import httpx

    from app.main import create_app

    broken = EmbeddingService(str(tmp_path / "no-such-model-dir"))
    app = create_app(make_settings(database_url=db_url), embedder=broken)
    async with app.router.lifespan_context(app) as state:
        await asyncio.wait_for(asyncio.shield(state["engine"].startup), 60)
        served = with_lifespan_state(app, state)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=served), base_url="http://t") as c:
            r = await c.get("/readyz")
            assert r.status_code == 503
            checks = r.json()["checks"]
            assert checks["database"] == "ok" and checks["migrations"] == "ok"
            assert checks["embedding_model"].startswith("failed")


async def test_unknown_route_uses_the_error_format(client):
    r = await client.get("/nope")
    assert r.status_code == 404
    assert r.json() == {"error": "not_found", "detail": "Not Found"}
