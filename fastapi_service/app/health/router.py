"""Liveness (`/healthz`) and readiness (`/readyz`, names each missing dependency)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.db.migrations import pending_migrations
from app.deps import EngineDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(engine: EngineDep) -> JSONResponse:
    checks: dict[str, str] = {}
    pool = engine.database.pool
    if pool is None:
        checks["database"] = engine.database.startup_error or "not connected"
        checks["migrations"] = "unknown (no database)"
    else:
        try:
            async with asyncio.timeout(2):
                async with pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")
                    pending = await pending_migrations(conn)
            checks["database"] = "ok"
            checks["migrations"] = "ok" if not pending else "pending: " + ", ".join(pending)
        except (TimeoutError, OSError, Exception) as exc:  # any failure means "not ready"
            checks["database"] = f"unreachable: {type(exc).__name__}"
            checks["migrations"] = "unknown (no database)"
    embedder = engine.embedder
    if embedder.loaded:
        checks["embedding_model"] = "ok"
    else:
        checks["embedding_model"] = f"failed: {embedder.load_error}" if embedder.load_error else "loading"
    failing = [f"{name}: {state}" for name, state in checks.items() if state != "ok"]
    if failing:
        return JSONResponse(
            {"status": "not_ready", "checks": checks, "error": "not_ready", "detail": "; ".join(failing)},
            status_code=503,
        )
    return JSONResponse({"status": "ready", "checks": checks})
