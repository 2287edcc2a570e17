"""Key format: `cbp_pk_`/`cbp_sk_` + 32 base62 chars + 6-char base62 CRC-32 checksum.

The format is the contract's (docs/contract.md#api-keys; golden keys in contract/api_keys.json,
which the addon's tests load too): Odoo mints the keys the engine parses.

The checksum lets the engine reject typos and random garbage before any database lookup, and lets
secret scanners recognise leaked keys.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import zlib

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PREFIXES = {"cbp_pk_": "publishable", "cbp_sk_": "secret"}
RANDOM_LEN = 32
CHECKSUM_LEN = 6
KEY_RE = re.compile(r"(cbp_pk_|cbp_sk_)([0-9A-Za-z]{32})([0-9A-Za-z]{6})")
# What the widget accepts as its data-key before any request (widget.js checks the same shape).
PUBLISHABLE_SHAPE = re.compile(r"cbp_pk_[0-9A-Za-z]{38}")


def base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, rem = divmod(number, 62)
        digits.append(BASE62[rem])
    return "".join(reversed(digits)).rjust(width, "0")


def checksum(prefix: str, random_part: str) -> str:
    return base62(zlib.crc32((prefix + random_part).encode()), CHECKSUM_LEN)


def generate_key(kind: str) -> str:
    """A new key of `kind` ('publishable' or 'secret'); Odoo mints them the same way."""
    prefix = "cbp_pk_" if kind == "publishable" else "cbp_sk_"
    random_part = "".join(secrets.choice(BASE62) for _ in range(RANDOM_LEN))
    return prefix + random_part + checksum(prefix, random_part)


def parse_key(key: str) -> str | None:
    """The kind of a well-formed key with a valid checksum, else None."""
    match = KEY_RE.fullmatch(key)  # not match(): `$` would accept a trailing newline
    if match is None:
        return None
    prefix, random_part, check = match.groups()
    if not secrets.compare_digest(check, checksum(prefix, random_part)):
        return None
    return PREFIXES[prefix]


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
