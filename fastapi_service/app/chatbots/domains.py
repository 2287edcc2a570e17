"""Checks on a chatbot's allowed domains: `host`, `host:port` or `*.host`, where host is `localhost`,
an IPv4 address or a DNS name of two or more labels whose last label starts with a letter; a
wildcard over a public suffix (`*.com`, `*.co.uk`, `*.github.io`) is refused — it would let every
site under it use the chatbot's publishable keys, and preflights answer for the union of all
chatbots' domains. The suffixes are the Public Suffix List bundled with `publicsuffixlist`.

The rules are the contract's (docs/contract.md#allowed-domains): the addon's
`tools/allowed_domains.py` applies the same steps in the same order, and both test suites run the
golden cases of contract/allowed_domains.json.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from publicsuffixlist import PublicSuffixList

HOST_RE = re.compile(r"(localhost|([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?)")
LABELS_RE = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*")
PORT_RE = re.compile(r"[0-9]{1,5}")
MAX_HOST_CHARS = 253  # a DNS name

INVALID = "not a host name or *.wildcard"
IP_WILDCARD = "an IP address has no subdomains"
PUBLIC_SUFFIX = "a wildcard over a public suffix"


@lru_cache(maxsize=1)
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList(accept_unknown=False)  # localhost, .test: not public, *.localhost allowed


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def domain_problem(entry: str) -> str | None:
    """Why `entry` (lower-cased, stripped) is not an allowed domain, or None when it is one."""
    wildcard = entry.startswith("*.")
    host = entry[2:] if wildcard else entry
    if ":" in host:
        host, _, port = host.rpartition(":")
        if not PORT_RE.fullmatch(port) or not 1 <= int(port) <= 65535:
            return INVALID
    if _is_ipv4(host):
        return IP_WILDCARD if wildcard else None
    if wildcard and LABELS_RE.fullmatch(host) and _suffixes().is_public(host):
        return PUBLIC_SUFFIX  # before the host check: `com` alone is no host name
    if len(host) > MAX_HOST_CHARS or not HOST_RE.fullmatch(host):
        return INVALID
    return None
