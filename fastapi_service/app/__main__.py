"""`python -m app`: serve the engine with uvicorn using the configured host and port."""

from __future__ import annotations

import uvicorn

from app.config import get_settings
from app.logging_setup import configure_logging


def main() -> None:
    settings = get_settings()
    configure_logging(settings)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_config=None,
        proxy_headers=False,  # client IPs come from X-Forwarded-For only via TRUSTED_PROXIES
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
