"""`SafeFetcher`: GET one URL with the SSRF guard, capped redirects, size and time.

Every hop is checked (scheme, credentials, host), and the guarded network backend validates the
resolved addresses of every connection. Proxies from the environment are ignored (trust_env=False)
so they cannot route around the guard.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from app.config import Settings
from app.extraction.charsets import split_content_type
from app.links.ssrf import AddressPolicy, FetchRefused, forbidden_reason, literal_address
from app.links.transport import GuardedTransport

REDIRECT_CODES = {301, 302, 303, 307, 308}


class FetchFailed(Exception):
    """The fetch failed; `transient` says whether trying again later may help."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass
class Fetched:
    url: str  # final URL after redirects
    status: int
    content_type: str  # media type only, lower case
    body: bytes
    charset: str | None = None  # from the Content-Type header, when it names a known one

    @property
    def mimetype(self) -> str:
        """The Content-Type to extract with: media type plus the header's charset."""
        return f"{self.content_type}; charset={self.charset}" if self.charset else self.content_type


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchRefused(f"only http and https URLs may be fetched, not {parts.scheme or 'no scheme'!r}")
    if not parts.hostname:
        raise FetchRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise FetchRefused("URLs with credentials (user:password@) are not fetched")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise FetchRefused("the URL has an invalid port") from exc
    return parts._replace(fragment="").geturl()


class SafeFetcher:
    def __init__(self, settings: Settings, policy: AddressPolicy | None = None) -> None:
        self.settings = settings
        self.policy = policy or AddressPolicy(allow_private=settings.fetch_allow_private_networks)
        self.client = httpx.AsyncClient(
            transport=GuardedTransport(self.policy),  # the only place sockets are opened
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(settings.fetch_timeout_seconds),
            headers={"User-Agent": settings.fetch_user_agent},
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def fetch(self, url: str, max_bytes: int | None = None) -> Fetched:
        """GET `url`; raises FetchRefused (policy) or FetchFailed (network/HTTP)."""
        cap = max_bytes or self.settings.fetch_max_bytes
        try:
            async with asyncio.timeout(self.settings.fetch_timeout_seconds):
                return await self._fetch(url, cap)
        except TimeoutError as exc:
            raise FetchFailed(
                f"{url} took longer than {self.settings.fetch_timeout_seconds:g} s", transient=True
            ) from exc

    def _check(self, url: str) -> str:
        """Scheme/credentials/host checks, and literal IPs in any notation, before httpx parses them."""
        checked = check_url(url)
        host = urlsplit(checked).hostname or ""
        literal = literal_address(host)
        if literal is not None and not self.policy.allow_private and host not in self.policy.exempt_hosts:
            reason = forbidden_reason(literal)
            if reason:
                raise FetchRefused(f"{host} is {literal}, {reason}; only public addresses may be fetched")
        try:
            httpx.URL(checked)
        except httpx.InvalidURL as exc:
            raise FetchRefused(f"invalid URL ({exc})") from exc
        return checked

    @staticmethod
    def _redirect_target(current: str, location: str) -> str:
        try:
            return urljoin(current, location)
        except ValueError as exc:  # e.g. a malformed IPv6 literal
            raise FetchFailed(f"{current} redirects to an invalid URL", transient=False) from exc

    async def _fetch(self, url: str, cap: int) -> Fetched:
        current = self._check(url)
        for _ in range(self.settings.fetch_max_redirects + 1):
            try:
                async with self.client.stream("GET", current) as response:
                    if response.status_code in REDIRECT_CODES and "location" in response.headers:
                        current = self._check(self._redirect_target(current, response.headers["location"]))
                        continue
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > cap:
                        raise FetchFailed(
                            f"{current} is {int(declared):,} bytes; the limit is {cap:,}", transient=False
                        )
                    body = bytearray()
                    async for piece in response.aiter_bytes():
                        body.extend(piece)
                        if len(body) > cap:
                            raise FetchFailed(f"{current} is larger than {cap:,} bytes (the limit)", transient=False)
                    if response.status_code >= 400:
                        raise FetchFailed(
                            f"{current} answered HTTP {response.status_code}", transient=response.status_code >= 500
                        )
                    content_type, charset = split_content_type(response.headers.get("content-type", ""))
                    return Fetched(str(response.url), response.status_code, content_type, bytes(body), charset)
            except httpx.InvalidURL as exc:  # not an HTTPError: a URL httpx cannot use is one failed page
                raise FetchFailed(f"{current} could not be fetched (invalid URL: {exc})", transient=False) from exc
            except httpx.HTTPError as exc:
                raise FetchFailed(
                    f"{current} could not be fetched ({type(exc).__name__}: {exc})", transient=True
                ) from exc
        raise FetchFailed(f"{url} redirects more than {self.settings.fetch_max_redirects} times", transient=False)
