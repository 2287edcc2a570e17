"""SSRF: forbidden URL forms are refused before any connection; a loopback listener sees nothing."""

import uuid

import pytest

from app.links.fetcher import FetchFailed, SafeFetcher
from app.links.ssrf import AddressPolicy, FetchRefused, forbidden_reason, literal_address
from tests.conftest import make_settings
from tests.ingestion.helpers import link, put_source, wait_settled
from tests.ingestion.http_server import LocalServer, redirect, text

# Names a test resolver knows; everything else does not resolve (there is no DNS here anyway).
NAMES = {
    "db": ["172.18.0.2"],  # Compose service names resolve to private addresses
    "redis": ["172.18.0.3"],
    "ollama": ["172.18.0.4"],
    "odoo": ["172.18.0.6"],
    "api": ["172.18.0.5"],
    "public-looking.example": ["127.0.0.1"],
    "rebind.example": ["93.184.216.34", "127.0.0.1"],  # one public, one loopback: refused
    "metadata.example": ["169.254.169.254"],
    "v6only.example": ["::1"],
    "mapped.example": ["::ffff:10.0.0.1"],
    "redirector.test": ["127.0.0.1"],  # exempted below: stands in for a public site
}


async def fake_resolver(host: str, port: int) -> list[str]:
    if host in NAMES:
        return NAMES[host]
    raise OSError(f"test resolver: unknown host {host}")


@pytest.fixture
def listener():
    server = LocalServer({"/": text(b"internal secret"), "/secret": text(b"internal secret")}).start()
    yield server
    server.stop()


def forbidden_urls(port: int) -> list[str]:
    p = port
    return [
        f"http://127.0.0.1:{p}/",
        f"http://localhost:{p}/",
        f"http://LOCALHOST:{p}/",
        f"http://localhost.:{p}/",
        f"http://app.localhost:{p}/",
        f"http://127.1:{p}/",
        f"http://127.0.1:{p}/",
        f"http://0177.0.0.1:{p}/",
        f"http://0x7f.0.0.1:{p}/",
        f"http://0x7f000001:{p}/",
        f"http://2130706433:{p}/",
        f"http://017700000001:{p}/",
        f"http://[::1]:{p}/",
        f"http://[0:0:0:0:0:0:0:1]:{p}/",
        f"http://[::ffff:127.0.0.1]:{p}/",
        f"http://[::ffff:7f00:1]:{p}/",
        f"http://0.0.0.0:{p}/",
        f"http://0:{p}/",
        f"http://[::]:{p}/",
        f"http://[64:ff9b::7f00:1]:{p}/",
        f"http://[2002:7f00:1::1]:{p}/",
        f"http://public-looking.example:{p}/",
        f"http://rebind.example:{p}/",
        f"http://v6only.example:{p}/",
        f"gopher://127.0.0.1:{p}/",
        f"http://user:pass@127.0.0.1:{p}/",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://metadata.example/computeMetadata/v1/",
        "http://100.64.0.1/",
        "http://198.18.0.1/",
        "http://[fc00::1]/",
        "http://[fd12:3456::1]/",
        "http://[fe80::1%25eth0]/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",
        "http://mapped.example/",
        "http://db:5432/",
        "http://redis:6379/",
        "http://ollama:11434/api/tags",
        "http://odoo:8069/web",
        "http://api:8000/internal/v1/chatbots",
        "ftp://example.com/file",
        "file:///etc/passwd",
        "data:text/plain,hello",
        "javascript:alert(1)",
        "//127.0.0.1/",
        "http:///nohost",
    ]


@pytest.fixture
async def fetcher():
    policy = AddressPolicy(resolver=fake_resolver, exempt_hosts=frozenset({"redirector.test"}))
    client = SafeFetcher(make_settings(fetch_timeout_seconds=5), policy)
    yield client
    await client.aclose()


async def test_forbidden_url_forms_are_refused_and_the_listener_sees_nothing(fetcher, listener):
    urls = forbidden_urls(listener.port)
    assert len(urls) >= 25
    for url in urls:
        with pytest.raises(FetchRefused):
            await fetcher.fetch(url)
    assert listener.requests == []


async def test_redirects_to_internal_addresses_are_refused_at_every_hop(fetcher, listener):
    p = listener.port
    targets = [
        f"http://127.0.0.1:{p}/secret",
        f"http://2130706433:{p}/secret",
        f"http://public-looking.example:{p}/secret",
        f"http://[::ffff:127.0.0.1]:{p}/secret",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
    ]
    redirector = LocalServer({f"/r{i}": redirect(t, 301 + i % 3) for i, t in enumerate(targets)}).start()
    try:
        for i, _ in enumerate(targets):
            with pytest.raises(FetchRefused):
                await fetcher.fetch(f"http://redirector.test:{redirector.port}/r{i}")
        assert len(redirector.requests) == len(targets)  # the first hop was made...
    finally:
        redirector.stop()
    assert listener.requests == []  # ...the internal one never


async def test_redirect_loops_and_oversize_bodies_are_capped(fetcher):
    big = b"x" * (64 * 1024)
    server = LocalServer({"/loop": redirect("/loop"), "/big": text(big)}).start()
    try:
        with pytest.raises(FetchFailed, match="redirects more than 5 times"):
            await fetcher.fetch(f"http://redirector.test:{server.port}/loop")
        assert len(server.requests) == 6
        with pytest.raises(FetchFailed, match="limit"):
            await fetcher.fetch(f"http://redirector.test:{server.port}/big", max_bytes=10_000)
    finally:
        server.stop()


async def test_the_validated_address_is_connected_and_the_host_name_is_sent(listener):
    """Resolve once, connect to that IP, keep the name in the Host header (no DNS rebinding)."""
    calls = []

    async def counting(host, port):
        calls.append(host)
        return ["127.0.0.1"]

    client = SafeFetcher(make_settings(), AddressPolicy(resolver=counting, allow_private=True))
    try:
        page = await client.fetch(f"http://site.example:{listener.port}/")
    finally:
        await client.aclose()
    assert page.body == b"internal secret"
    assert calls == ["site.example"]
    assert listener.requests[0].headers["host"] == f"site.example:{listener.port}"


@pytest.mark.parametrize(
    ("address", "allowed"),
    [("93.184.216.34", True), ("2606:4700::1111", True), ("8.8.8.8", True), ("100.63.255.255", True)]
    + [(a, False) for a in ("100.127.255.255", "169.254.169.254", "::ffff:8.8.8.8", "192.0.0.8", "240.0.0.1")],
)
def test_address_classification(address, allowed):
    assert (forbidden_reason(literal_address(address)) is None) is allowed


async def test_a_link_source_to_loopback_fails_with_a_reason_and_fetches_nothing(client, db, listener):
    bot, src = uuid.uuid4(), uuid.uuid4()
    await put_source(client, bot, src, link(1, f"http://127.0.0.1:{listener.port}/", max_depth=2, max_pages=5))
    row = await wait_settled(db, src, 1)
    assert row["state"] == "failed" and "loopback" in row["error"]
    assert listener.requests == []
