"""Origin allow-lists: exact hosts (optionally with a port) and `*.example.com` wildcards.

`example.com` matches that host on any port over http(s); `example.com:8443` only that port;
`*.example.com` any subdomain at any depth, not the apex itself.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit


def origin_host_port(origin: str) -> tuple[str, int | None] | None:
    """(host, port) of a browser Origin header, or None when it is not an http(s) origin."""
    if not origin or origin == "null" or len(origin) > 300:
        return None
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        return None
    return parts.hostname.lower().rstrip("."), port


def pattern_matches(pattern: str, host: str, port: int | None) -> bool:
    want_port: int | None = None
    if ":" in pattern:
        pattern, _, port_text = pattern.rpartition(":")
        want_port = int(port_text)
        if port != want_port:
            return False
    if pattern.startswith("*."):
        suffix = pattern[1:]  # ".example.com"
        return host.endswith(suffix) and len(host) > len(suffix)
    return host == pattern


def origin_allowed(origin: str | None, patterns: Iterable[str]) -> bool:
    if origin is None:
        return False
    parsed = origin_host_port(origin)
    if parsed is None:
        return False
    host, port = parsed
    return any(pattern_matches(p, host, port) for p in patterns)


class OriginRegistry:
    """The union of every active chatbot's allow-list, for CORS preflights.

    A preflight carries no key, so it cannot be tied to a chatbot; it is answered for any Origin
    some chatbot allows, and the real request is then checked against the key's own chatbot.
    """

    def __init__(self, load: Callable[[], Awaitable[list[str]]], ttl: float) -> None:
        self._load = load
        self._ttl = ttl
        self._patterns: list[str] = []
        self._expires = 0.0

    def invalidate(self) -> None:
        """Reload the allow-lists on the next preflight (a chatbot changed)."""
        self._expires = 0.0

    async def allows(self, origin: str | None) -> bool:
        now = time.monotonic()
        if now >= self._expires:
            self._patterns = await self._load()
            self._expires = now + self._ttl
        return origin_allowed(origin, self._patterns)
