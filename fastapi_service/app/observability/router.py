"""`GET /metrics` in the Prometheus text format, behind `METRICS_TOKEN`.

With a token set, a scrape must send `Authorization: Bearer <token>`; without one, metrics are served
only in local and test mode, so a production engine never exposes them to the public.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.config import Environment
from app.deps import SettingsDep
from app.errors import NotFound, Unauthorized

router = APIRouter(tags=["health"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, settings: SettingsDep) -> Response:
    token = settings.metrics_token
    if token:
        presented = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(presented.encode(), token.encode()):
            raise Unauthorized(
                "metrics need `Authorization: Bearer <METRICS_TOKEN>`", headers={"WWW-Authenticate": "Bearer"}
            )
    elif settings.environment not in (Environment.LOCAL, Environment.TEST):
        raise NotFound("metrics are disabled: set METRICS_TOKEN to serve them")
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
