"""`/docs`: Swagger UI served by the engine itself, so it works offline (no CDN).

The assets are the swagger-ui dist bundled by the `swagger-ui-bundle-v2` wheel (Swagger UI 5, which
renders the OpenAPI 3.1 document FastAPI generates), mounted under /docs/assets. ReDoc is not
offered: it has no offline bundle on PyPI, and FastAPI's page for it loads from a CDN.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS_PATH = "/docs/assets"

router = APIRouter(include_in_schema=False)
assets = StaticFiles(directory=str(swagger_ui_path))


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    return get_swagger_ui_html(
        openapi_url=root + request.app.openapi_url,
        title=f"{request.app.title} - API docs",
        swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon-32x32.png",
        oauth2_redirect_url=None,
    )
