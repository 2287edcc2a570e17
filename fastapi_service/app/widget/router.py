"""GET /widget.js, GET /demo (an embedding example) and GET /v1/widget/config."""

from __future__ import annotations

import html
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from app.chatbots.schemas import DEFAULT_WIDGET_COLOR
from app.deps import SettingsDep
from app.errors import error_responses
from app.keys.format import PUBLISHABLE_SHAPE
from app.public.deps import PublicKeyDep
from app.widget.schemas import WidgetConfig

STATIC = Path(__file__).parent / "static"

router = APIRouter(tags=["widget"])
config_router = APIRouter(prefix="/v1", tags=["widget"], responses=error_responses(401, 403, 429, 503))


@lru_cache
def widget_source() -> bytes:
    return (STATIC / "widget.js").read_bytes()


@router.get("/widget.js", include_in_schema=False)
async def widget_js() -> Response:
    return Response(
        widget_source(),
        media_type="application/javascript; charset=utf-8",
        headers={
            "Cache-Control": "public, max-age=300",
            "X-Content-Type-Options": "nosniff",
            "Cross-Origin-Resource-Policy": "cross-origin",
        },
    )


@router.get("/demo", include_in_schema=False, response_class=HTMLResponse)
async def demo(settings: SettingsDep, key: str = Query("", max_length=64)) -> HTMLResponse:
    page = (STATIC / "demo.html").read_text(encoding="utf-8")
    safe_key = key if PUBLISHABLE_SHAPE.fullmatch(key) else ""
    page = page.replace("{{KEY}}", html.escape(safe_key, quote=True))
    page = page.replace("{{ENGINE}}", html.escape(settings.base_url, quote=True))
    page = page.replace(
        "{{MISSING}}",
        ""
        if safe_key
        else "<p class=warn>Add <code>?key=cbp_pk_…</code> (a publishable key whose chatbot allows this host) to the URL.</p>",
    )
    return HTMLResponse(
        page,
        headers={
            "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff",
        },
    )


@config_router.get("/widget/config", response_model=WidgetConfig)
async def widget_config(key: PublicKeyDep) -> dict[str, Any]:
    look = key.chatbot.widget
    return {
        "name": key.chatbot.name,
        "title": look.get("title") or key.chatbot.name or "Ask us anything",
        "color": look.get("color") or DEFAULT_WIDGET_COLOR,
        "welcome": look.get("welcome") or "",
        "suggestions": list(look.get("suggestions") or [])[:10],
        "language": key.chatbot.language,
        "handoff": bool(look.get("handoff_enabled")),  # show the "talk to a person" button
    }
