"""Checks on a chatbot's allowed domains: `host`, `host:port` or `*.host`, where host is a DNS name,
`localhost` or an IPv4 address; a wildcard over a public suffix (`*.com`, `*.co.uk`, `*.github.io`)
is refused — it would let every site under it use the chatbot's publishable keys, and preflights
answer for the union of all chatbots' domains. The suffixes are the Public Suffix List bundled with
`publicsuffixlist`. The addon's `tools/allowed_domains.py` applies the same rules before sending.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from publicsuffixlist import PublicSuffixList

HOST_RE = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@lru_cache(maxsize=1)
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList(accept_unknown=False)  # localhost, .test: not public, *.localhost allowed


def domain_problem(entry: str) -> str | None:
    """Why `entry` (lower-cased, stripped) is not an allowed domain, or None when it is one."""
    wildcard = entry.startswith("*.")
    host = entry[2:] if wildcard else entry
    if ":" in host:
        host, _, port = host.rpartition(":")
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            return "not a host name or *.wildcard"
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        pass
    else:
        return "an IP address has no subdomains" if wildcard else None
    if not HOST_RE.match(host):
        return "not a host name or *.wildcard"
    if wildcard and _suffixes().is_public(host):
        return "a wildcard over a public suffix"
    return None
