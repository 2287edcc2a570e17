"""SSRF guard: which addresses a link may reach, enforced where the socket is opened.

A URL's host is resolved once, every resolved address must be public, and the connection is made
to one of those validated addresses (never re-resolved), so DNS rebinding cannot swap in a private
address between the check and the connect. TLS SNI and the Host header still carry the name,
because httpcore asks the backend for a TCP stream by name and does TLS on top itself.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]


class FetchRefused(Exception):
    """The URL is not allowed (scheme, host or address); the message says why."""


EXTRA_FORBIDDEN_NETWORKS = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host on Linux
        "100.64.0.0/10",  # carrier-grade NAT
        "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
        "192.0.0.0/24",
        "198.18.0.0/15",  # benchmarking
        "fc00::/7",  # unique local
        "fe80::/10",
        "64:ff9b::/96",  # NAT64 maps IPv4 (incl. private) into IPv6
        "64:ff9b:1::/48",
        "2002::/16",  # 6to4 embeds IPv4
        "2001::/32",  # Teredo
        "::/128",
        "::1/128",
    )
]
LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.I)


def literal_address(host: str) -> IPAddress | None:
    """The IP a host string denotes by itself, including inet_aton forms (2130706433, 0x7f.1, 0177.0.0.1)."""
    bare = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if LEGACY_IPV4.match(bare):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why an address may not be fetched, or None when it is a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return "an IPv4-mapped IPv6 address"
    checks = [
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
    ]
    for hit, reason in checks:
        if hit:
            return reason
    for network in EXTRA_FORBIDDEN_NETWORKS:
        if ip.version == network.version and ip in network:
            return f"in the non-public range {network}"
    if not ip.is_global:
        return "not a public address"
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass
class AddressPolicy:
    """Resolves a host and decides if its addresses may be used.

    `resolver` is injectable for tests. `allow_private` (FETCH_ALLOW_PRIVATE_NETWORKS) and
    `exempt_hosts` are TEST-ONLY seams that let a local server stand in for the internet.
    """

    resolver: Resolver = system_resolver
    allow_private: bool = False
    exempt_hosts: frozenset[str] = field(default_factory=frozenset)

    async def resolve(self, host: str, port: int) -> list[str]:
        name = host.strip("[]").lower().rstrip(".")
        if not name:
            raise FetchRefused("the URL has no host")
        literal = literal_address(name)
        if literal is not None:
            candidates: list[IPAddress] = [literal]
        else:
            if name == "localhost" or name.endswith(".localhost"):
                if not self.allow_private:
                    raise FetchRefused(f"{host} is a local host name")
            try:
                resolved = await self.resolver(name, port)
            except OSError as exc:
                raise FetchRefused(f"{host} does not resolve ({exc})") from exc
            candidates = [ip for a in resolved if (ip := literal_address(a)) is not None]
            if not candidates:
                raise FetchRefused(f"{host} does not resolve to any address")
        if not (self.allow_private or name in self.exempt_hosts):
            for ip in candidates:
                reason = forbidden_reason(ip)
                if reason:
                    shown = f"{host} resolves to {ip}" if literal is None else f"{ip}"
                    raise FetchRefused(f"{shown}, {reason}; only public addresses may be fetched")
        return [str(ip) for ip in candidates]


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """An httpcore backend that connects only to addresses the policy validated for this host."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.policy.resolve(host, port)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise FetchRefused("unix sockets may not be fetched")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
