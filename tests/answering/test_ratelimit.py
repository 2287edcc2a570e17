"""Rate limits: per key, per client IP, per-chatbot overrides, Retry-After, X-Forwarded-For trust, Redis."""

import asyncio
import shutil
import socket
import subprocess
import threading

import httpx
import pytest

from app.errors import RateLimited
from app.ratelimit.client_ip import client_ip, parse_networks
from app.ratelimit.service import Budget, RateLimiter
from tests.answering.helpers import answering_settings as make_settings
from tests.answering.helpers import create_bot


def transport_client(app, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://engine.test")


def test_forwarded_for_is_only_trusted_from_trusted_peers():
    trusted = parse_networks(["10.0.0.0/8", "127.0.0.1"])
    assert client_ip("203.0.113.9", "1.2.3.4", trusted) == "203.0.113.9"  # spoofed by the client
    assert client_ip("10.1.2.3", "198.51.100.7", trusted) == "198.51.100.7"
    assert client_ip("10.1.2.3", "1.2.3.4, 198.51.100.7, 10.9.9.9", trusted) == "198.51.100.7"
    assert client_ip("10.1.2.3", "not-an-ip", trusted) == "10.1.2.3"
    assert client_ip("127.0.0.1", None, trusted) == "127.0.0.1"


async def test_key_budget_gives_429_with_retry_after(client, db):
    bot = await create_bot(client, rate_limits={"key_per_minute": 3, "ip_per_minute": None})
    codes = []
    for _ in range(5):
        r = await client.post("/v1/search", json={"query": "returns"}, headers=bot.sk_headers())
        codes.append(r.status_code)
    assert codes == [200, 200, 200, 429, 429]
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert r.json()["error"] == "rate_limited"
    other = await create_bot(client)  # budgets are per key: another chatbot is unaffected
    r = await client.post("/v1/search", json={"query": "returns"}, headers=other.sk_headers())
    assert r.status_code == 200


async def test_ip_budget_cannot_be_dodged_with_a_spoofed_forwarded_for(app_factory, db_url):
    app_client = await app_factory(make_settings(database_url=db_url, trusted_proxies=["10.0.0.1"]))
    bot = await create_bot(app_client, rate_limits={"key_per_minute": 1000, "ip_per_minute": 2})
    async with transport_client(app_client.app, "203.0.113.50") as attacker:
        codes = []
        for n in range(4):
            r = await attacker.post(
                "/v1/search", json={"query": "q"}, headers=bot.sk_headers(**{"X-Forwarded-For": f"198.51.100.{n}"})
            )
            codes.append(r.status_code)
    assert codes == [200, 200, 429, 429]


async def test_ip_budget_uses_forwarded_for_behind_a_trusted_proxy(app_factory, db_url):
    app_client = await app_factory(make_settings(database_url=db_url, trusted_proxies=["10.0.0.1"]))
    bot = await create_bot(app_client, rate_limits={"key_per_minute": 1000, "ip_per_minute": 2})
    async with transport_client(app_client.app, "10.0.0.1") as proxy:
        for n in range(4):  # four different visitors behind the proxy: each has its own budget
            r = await proxy.post(
                "/v1/search", json={"query": "q"}, headers=bot.sk_headers(**{"X-Forwarded-For": f"198.51.100.{n}"})
            )
            assert r.status_code == 200
        codes = []
        for _ in range(3):  # one visitor hammering
            r = await proxy.post(
                "/v1/search", json={"query": "q"}, headers=bot.sk_headers(**{"X-Forwarded-For": "198.51.100.77"})
            )
            codes.append(r.status_code)
    assert codes == [200, 200, 429]


async def test_failed_authentication_is_budgeted_per_ip(app_factory, db_url):
    app_client = await app_factory(make_settings(database_url=db_url, rate_limit_auth_failures="3/minute"))
    codes = []
    for _ in range(5):
        r = await app_client.post("/v1/search", json={"query": "q"}, headers={"Authorization": "Bearer guess"})
        codes.append(r.status_code)
    assert codes == [401, 401, 401, 429, 429]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; see tests/apt-packages.txt)")
    port = _free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                import time

                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


async def test_limits_hold_across_processes_with_redis(app_factory, db_url, redis_url):
    settings = make_settings(database_url=db_url, rate_limit_storage_url=redis_url)
    first = await app_factory(settings)
    second = await app_factory(settings)
    bot = await create_bot(first, rate_limits={"key_per_minute": 4, "ip_per_minute": None})
    codes = []
    for n in range(6):  # alternate between the two "processes"
        app = (first, second)[n % 2]
        r = await app.post("/v1/search", json={"query": "returns"}, headers=bot.sk_headers())
        codes.append(r.status_code)
    assert codes == [200, 200, 200, 200, 429, 429]
    assert int(r.headers["retry-after"]) >= 1


async def test_memory_storage_is_per_process(app_factory, db_url):
    settings = make_settings(database_url=db_url)
    first = await app_factory(settings)
    second = await app_factory(settings)
    bot = await create_bot(first, rate_limits={"key_per_minute": 2, "ip_per_minute": None})
    codes = [
        (await app.post("/v1/search", json={"query": "q"}, headers=bot.sk_headers())).status_code
        for app in (first, first, second, second)
    ]
    assert codes == [200, 200, 200, 200]
    await asyncio.sleep(0)


async def test_in_process_limits_take_no_thread_per_request():
    """The in-process storage is limits' async one: counting a request starts no thread (the
    synchronous MemoryStorage starts a threading.Timer every 10 ms while it holds a counter, a
    thread per request or so under load), and the budget still holds."""
    limiter = RateLimiter("memory://", "5/minute", "100/minute")
    await asyncio.sleep(0.05)  # past anything the constructor may have started
    before = set(threading.enumerate())
    started: set[threading.Thread] = set()
    budget = Budget("key", "k", limiter.default_key)
    for _ in range(5):
        await limiter.check([budget])
        started |= set(threading.enumerate()) - before  # Thread objects, not idents: idents are reused
        await asyncio.sleep(0.02)  # past the synchronous storage's 10 ms expiry timer
    with pytest.raises(RateLimited) as refused:
        await limiter.check([budget])
    assert started == set()
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 60
