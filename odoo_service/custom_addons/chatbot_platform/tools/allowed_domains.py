"""Checks on a chatbot's allowed domains (the widget's origins), without a database.

An entry is `host`, `host:port` or `*.host` (any subdomain); host is a DNS name, `localhost` or an
IPv4 address (`127.0.0.1:8170`). A wildcard over a public suffix (`*.com`, `*.co.uk`,
`*.github.io`) would let every site under it embed the chatbot, so it is refused; the suffixes come
from the Public Suffix List bundled with `publicsuffixlist`. The rules are the contract's
(docs/contract.md#allowed-domains): the engine's `app/chatbots/domains.py` applies the same steps in
the same order, and both test suites run the golden cases of contract/allowed_domains.json.
"""

import ipaddress
import re
from functools import lru_cache

HOST_RE = re.compile(r"(localhost|([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?)")
LABELS_RE = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*")
PORT_RE = re.compile(r"[0-9]{1,5}")
MAX_HOST_CHARS = 253  # a DNS name

URL = "url"  # a URL or a path, not a host
INVALID = "invalid"
IP_WILDCARD = "ip_wildcard"  # *.127.0.0.1
PUBLIC_SUFFIX = "public_suffix"  # *.com


@lru_cache(maxsize=1)
def _suffixes():
    from publicsuffixlist import PublicSuffixList

    # unknown top-level names (localhost, .test) are not public: *.localhost stays possible
    return PublicSuffixList(accept_unknown=False)


def is_ipv4(host):
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def problem(entry):
    """None when `entry` is a valid allowed domain, else one of the codes above."""
    value = (entry or "").strip().lower()
    if "://" in value or "/" in value:
        return URL
    wildcard = value.startswith("*.")
    host = value[2:] if wildcard else value
    if ":" in host:
        host, _, port = host.rpartition(":")
        if not PORT_RE.fullmatch(port) or not 1 <= int(port) <= 65535:
            return INVALID
    if is_ipv4(host):
        return IP_WILDCARD if wildcard else None
    if wildcard and LABELS_RE.fullmatch(host) and _suffixes().is_public(host):
        return PUBLIC_SUFFIX  # before the host check: `com` alone is no host name
    if len(host) > MAX_HOST_CHARS or not HOST_RE.fullmatch(host):
        return INVALID
    return None
