"""Same-site crawl of a link source: BFS to `max_depth`/`max_pages`, robots.txt, sitemap.xml.

Pages are fetched through `SafeFetcher` and parsed in the sandbox one BFS level at a time (one
child process per level); the parser also returns each HTML page's links for the next level.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

from app.extraction.extractors import PageText
from app.extraction.sandbox import DocumentIn, Outcome
from app.links.fetcher import Fetched, FetchFailed, SafeFetcher, check_url
from app.links.ssrf import FetchRefused

logger = logging.getLogger(__name__)

Extractor = Callable[[list[DocumentIn]], Awaitable[list[Outcome]]]
PARSEABLE_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "text/markdown", "text/csv", "application/pdf")
SKIPPED_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".zip", ".gz", ".mp4", ".mp3", ".css", ".js")


class CrawlFailed(Exception):
    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass
class CrawlResult:
    pages: list[PageText] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "url: reason", for the logs


def normalize(url: str) -> str:
    parts = urlsplit(url)
    path = parts.path or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def same_site(url: str, origin: tuple[str, str]) -> bool:
    parts = urlsplit(url)
    return (parts.scheme.lower(), parts.netloc.lower()) == origin


async def load_robots(fetcher: SafeFetcher, origin: tuple[str, str]) -> RobotFileParser:
    robots = RobotFileParser()
    try:
        fetched = await fetcher.fetch(f"{origin[0]}://{origin[1]}/robots.txt", max_bytes=512 * 1024)
        robots.parse(fetched.body.decode("utf-8", errors="replace").splitlines())
    except (FetchFailed, FetchRefused):
        robots.parse([])  # no (reachable) robots.txt: no restrictions
    return robots


async def sitemap_urls(fetcher: SafeFetcher, robots: RobotFileParser, origin: tuple[str, str], cap: int) -> list[str]:
    from defusedxml import ElementTree

    candidates = list(robots.site_maps() or []) or [f"{origin[0]}://{origin[1]}/sitemap.xml"]
    found: list[str] = []
    for sitemap in candidates[:5]:
        if not same_site(sitemap, origin):
            continue
        try:
            fetched = await fetcher.fetch(sitemap, max_bytes=5 * 1024 * 1024)
            root = ElementTree.fromstring(fetched.body)
        except (FetchFailed, FetchRefused, ElementTree.ParseError, ValueError) as exc:
            logger.debug("no usable sitemap", extra={"sitemap": sitemap, "error": str(exc)})
            continue
        except Exception as exc:  # defusedxml refuses entity tricks with its own exceptions
            logger.info("sitemap refused", extra={"sitemap": sitemap, "error": str(exc)})
            continue
        for el in root.iter():
            if el.tag.endswith("loc") and el.text and len(found) < cap:
                found.append(el.text.strip())
    return found


async def crawl(
    fetcher: SafeFetcher, spec: dict[str, Any], extract: Extractor, *, user_agent: str, sitemap_cap: int
) -> CrawlResult:
    start = normalize(check_url(spec["url"]))
    max_depth = int(spec.get("max_depth") or 0)
    max_pages = int(spec.get("max_pages") or 1)
    origin = (urlsplit(start).scheme, urlsplit(start).netloc)
    robots = await load_robots(fetcher, origin)
    if not robots.can_fetch(user_agent, start):
        raise CrawlFailed(f"robots.txt of {origin[1]} does not allow fetching {start}", transient=False)

    result = CrawlResult()
    seen = {start}
    level = [start]
    from_sitemap: list[str] = []  # crawled as depth 1, like the start page's own links
    if max_depth > 0:
        extra = [normalize(u) for u in await sitemap_urls(fetcher, robots, origin, sitemap_cap)]
        from_sitemap = [u for u in dict.fromkeys(extra) if same_site(u, origin) and u not in seen]
        seen.update(from_sitemap)
    depth = 0
    while level and len(result.pages) < max_pages:
        fetched: list[Fetched] = []
        for url in level:
            if len(result.pages) + len(fetched) >= max_pages:
                break
            if not robots.can_fetch(user_agent, url):
                result.skipped.append(f"{url}: disallowed by robots.txt")
                continue
            try:
                page = await fetcher.fetch(url)
            except (FetchFailed, FetchRefused) as exc:
                if url == start:
                    raise CrawlFailed(str(exc), transient=isinstance(exc, FetchFailed) and exc.transient) from exc
                result.skipped.append(f"{url}: {exc}")
                continue
            if page.content_type and not page.content_type.startswith(PARSEABLE_TYPES) and url != start:
                result.skipped.append(f"{url}: content type {page.content_type}")
                continue
            if not same_site(page.url, origin) and url != start:
                result.skipped.append(f"{url}: redirected off-site to {page.url}")
                continue
            fetched.append(page)
        outcomes = await extract([DocumentIn(p.body, urlsplit(p.url).path, p.mimetype) for p in fetched])
        next_level: list[str] = []
        for page, outcome in zip(fetched, outcomes, strict=True):
            if outcome.extracted is None:
                if page.url == start or normalize(page.url) == start:
                    raise CrawlFailed(f"{page.url}: {outcome.error}", transient=False)
                result.skipped.append(f"{page.url}: {outcome.error}")
                continue
            extracted = outcome.extracted
            result.pages.append(PageText(extracted.blocks, extracted.title, page.url))
            if depth < max_depth:
                for href in extracted.links:
                    target = normalize(urljoin(page.url, href))
                    if target in seen or not same_site(target, origin):
                        continue
                    if urlsplit(target).path.lower().endswith(SKIPPED_SUFFIXES):
                        continue
                    seen.add(target)
                    next_level.append(target)
        level = next_level + (from_sitemap if depth == 0 else [])
        depth += 1
    return result
